#include "passlab/data/store.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>

#include "passlab/core/error.hpp"
#include "passlab/core/log.hpp"
#include "passlab/core/rng.hpp"
#include "passlab/io/digest.hpp"

namespace passlab::data {

// ---- array attributes -----------------------------------------------------------------------

namespace {
io::TypeId vlen_string_type() {
  io::TypeId t(H5_CHECK(H5Tcopy(H5T_C_S1)));
  H5_CHECK(H5Tset_size(t.get(), H5T_VARIABLE));
  H5_CHECK(H5Tset_cset(t.get(), H5T_CSET_UTF8));
  return t;
}

void delete_attr_if_exists(hid_t loc, const std::string& name) {
  if (H5_CHECK(H5Aexists(loc, name.c_str())) > 0) H5_CHECK(H5Adelete(loc, name.c_str()));
}

io::AttrId open_attr_1d(const io::Group& g, const std::string& name, hsize_t* n) {
  if (!g.has_attr(name)) throw DataError(g.file() + ": missing attribute '" + name + "'");
  io::AttrId a(H5_CHECK(H5Aopen(g.id(), name.c_str(), H5P_DEFAULT)));
  io::SpaceId space(H5_CHECK(H5Aget_space(a.get())));
  int nd = H5_CHECK(H5Sget_simple_extent_ndims(space.get()));
  if (nd != 1) throw DataError(g.file() + ": attribute '" + name + "' is not a 1-d array");
  H5_CHECK(H5Sget_simple_extent_dims(space.get(), n, nullptr));
  return a;
}
}  // namespace

void set_string_array_attr(io::Group& g, const std::string& name, const std::vector<std::string>& values) {
  delete_attr_if_exists(g.id(), name);
  io::TypeId t = vlen_string_type();
  hsize_t n = values.size();
  io::SpaceId space(H5_CHECK(H5Screate_simple(1, &n, nullptr)));
  io::AttrId a(H5_CHECK(H5Acreate2(g.id(), name.c_str(), t.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT)));
  std::vector<const char*> ptrs;
  for (auto& v : values) ptrs.push_back(v.c_str());
  if (n > 0) H5_CHECK(H5Awrite(a.get(), t.get(), ptrs.data()));
}

std::vector<std::string> get_string_array_attr(const io::Group& g, const std::string& name) {
  hsize_t n = 0;
  open_attr_1d(g, name, &n);  // a 1-d attribute, as the store schema requires
  try {
    return g.attr_strings(name);  // fixed- or variable-length, any character set
  } catch (const IOError&) {
    throw DataError(g.file() + ": attribute '" + name + "' is not a string array");
  }
}

void set_double_array_attr(io::Group& g, const std::string& name, const std::vector<double>& values) {
  delete_attr_if_exists(g.id(), name);
  hsize_t n = values.size();
  io::SpaceId space(H5_CHECK(H5Screate_simple(1, &n, nullptr)));
  io::AttrId a(H5_CHECK(H5Acreate2(g.id(), name.c_str(), H5T_NATIVE_DOUBLE, space.get(), H5P_DEFAULT, H5P_DEFAULT)));
  if (n > 0) H5_CHECK(H5Awrite(a.get(), H5T_NATIVE_DOUBLE, values.data()));
}

std::vector<double> get_double_array_attr(const io::Group& g, const std::string& name) {
  hsize_t n = 0;
  io::AttrId a = open_attr_1d(g, name, &n);
  io::TypeId ft(H5_CHECK(H5Aget_type(a.get())));
  if (H5Tget_class(ft.get()) != H5T_FLOAT) throw DataError(g.file() + ": attribute '" + name + "' is not a float array");
  return g.attr_doubles(name);
}

// ---- writer ---------------------------------------------------------------------------------

struct StoreWriter::Impl {
  Meta meta;
  io::AtomicWriter writer;
  io::ContentHash hash;
  // Current split.
  std::string split;
  int64_t rows = 0, written = 0;
  std::optional<io::Dataset> images;
  std::vector<int64_t> labels;
  std::vector<std::string> done;
  // Train statistics per channel.
  std::vector<double> sum, sumsq;
  uint64_t train_pixels = 0;
  StoreInfo info;

  Impl(const std::filesystem::path& out, Meta m) : meta(std::move(m)), writer(out) {}
};

StoreWriter::StoreWriter(const std::filesystem::path& out, Meta meta) {
  PASSLAB_CHECK(meta.height > 0 && meta.width > 0 && (meta.channels == 1 || meta.channels == 3), DataError,
                out.string() + ": image shape " + std::to_string(meta.height) + "x" + std::to_string(meta.width) + "x" +
                    std::to_string(meta.channels) + " is not a valid store shape");
  PASSLAB_CHECK(!meta.classes.empty(), DataError, out.string() + ": no classes");
  impl_ = std::make_unique<Impl>(out, std::move(meta));
  impl_->sum.assign(static_cast<size_t>(impl_->meta.channels), 0.0);
  impl_->sumsq = impl_->sum;
}

StoreWriter::~StoreWriter() = default;

void StoreWriter::begin_split(const std::string& name, int64_t rows) {
  auto& m = *impl_;
  if (!m.split.empty()) end_split();
  PASSLAB_CHECK(name == "train" || name == "test", InternalError, "unknown split " + name);
  PASSLAB_CHECK(std::find(m.done.begin(), m.done.end(), name) == m.done.end(), InternalError, "split written twice: " + name);
  PASSLAB_CHECK(name == "train" || !m.done.empty(), InternalError, "train must be written before test");
  PASSLAB_CHECK(rows > 0, DataError, m.meta.source + ": split '" + name + "' has no images");
  const uint64_t row_bytes = static_cast<uint64_t>(m.meta.height * m.meta.width * m.meta.channels);
  io::WriteOptions wo;
  // One chunk ~ 512 KiB of images: small stores read in large sequential pieces, 224 px stores
  // in a few images at a time (random access of single images stays cheap).
  wo.chunk_rows = std::clamp<uint64_t>((512u << 10) / row_bytes, 1, 1024);
  wo.chunk_rows = std::min<uint64_t>(wo.chunk_rows, static_cast<uint64_t>(rows));
  wo.gzip = m.meta.gzip;
  io::Group g = m.writer.root().create_group(name);
  m.images.emplace(g.create_dataset("images", io::DType::u8,
                                    io::Shape{static_cast<uint64_t>(rows), static_cast<uint64_t>(m.meta.height),
                                              static_cast<uint64_t>(m.meta.width), static_cast<uint64_t>(m.meta.channels)},
                                    wo));
  m.split = name;
  m.rows = rows;
  m.written = 0;
  m.labels.clear();
  m.labels.reserve(static_cast<size_t>(rows));
}

void StoreWriter::write(int64_t count, const uint8_t* images, const int64_t* labels) {
  auto& m = *impl_;
  PASSLAB_CHECK(!m.split.empty(), InternalError, "StoreWriter::write before begin_split");
  PASSLAB_CHECK(m.written + count <= m.rows, InternalError,
                "StoreWriter: more rows than announced for split " + m.split);
  const int64_t ncls = static_cast<int64_t>(m.meta.classes.size());
  for (int64_t i = 0; i < count; ++i) {
    if (labels[i] < 0 || labels[i] >= ncls)
      throw DataError(m.meta.source + ": " + m.split + " sample " + std::to_string(m.written + i) + " has label " +
                      std::to_string(labels[i]) + ", outside [0, " + std::to_string(ncls) + ")");
  }
  if (count == 0) return;
  const int64_t row_bytes = m.meta.height * m.meta.width * m.meta.channels;
  m.images->write_rows<uint8_t>(static_cast<uint64_t>(m.written), static_cast<uint64_t>(count), images);
  m.hash.update(images, static_cast<size_t>(count * row_bytes));
  m.labels.insert(m.labels.end(), labels, labels + count);
  if (m.split == "train") {
    const int64_t c = m.meta.channels;
    const int64_t px = count * m.meta.height * m.meta.width;
    // Integer sums per block (exact), folded into doubles.
    std::vector<uint64_t> s(static_cast<size_t>(c), 0), sq(static_cast<size_t>(c), 0);
    for (int64_t p = 0; p < px; ++p)
      for (int64_t ch = 0; ch < c; ++ch) {
        const uint64_t v = images[p * c + ch];
        s[static_cast<size_t>(ch)] += v;
        sq[static_cast<size_t>(ch)] += v * v;
      }
    for (int64_t ch = 0; ch < c; ++ch) {
      m.sum[static_cast<size_t>(ch)] += static_cast<double>(s[static_cast<size_t>(ch)]);
      m.sumsq[static_cast<size_t>(ch)] += static_cast<double>(sq[static_cast<size_t>(ch)]);
    }
    m.train_pixels += static_cast<uint64_t>(px);
  }
  m.written += count;
}

void StoreWriter::end_split() {
  auto& m = *impl_;
  PASSLAB_CHECK(m.written == m.rows, InternalError,
                "StoreWriter: split " + m.split + " got " + std::to_string(m.written) + " of " + std::to_string(m.rows) + " rows");
  io::Group g = m.writer.root().open_group(m.split);
  g.write<int64_t>("labels", m.labels);
  m.hash.update(m.labels.data(), m.labels.size() * sizeof(int64_t));
  (m.split == "train" ? m.info.train_size : m.info.test_size) = m.rows;
  m.done.push_back(m.split);
  m.split.clear();
  m.images.reset();
  m.labels.clear();
}

StoreInfo StoreWriter::commit() {
  auto& m = *impl_;
  if (!m.split.empty()) end_split();
  PASSLAB_CHECK(m.done.size() == 2, InternalError, "StoreWriter::commit needs train and test splits");
  auto& info = m.info;
  info.path = m.writer.final_path();
  info.format = m.meta.format;
  info.source = m.meta.source;
  info.classes = m.meta.classes;
  info.height = m.meta.height;
  info.width = m.meta.width;
  info.channels = m.meta.channels;
  const double n = static_cast<double>(m.train_pixels);
  for (size_t ch = 0; ch < m.sum.size(); ++ch) {
    const double mean = m.sum[ch] / n / 255.0;
    const double var = std::max(0.0, m.sumsq[ch] / n / (255.0 * 255.0) - mean * mean);
    info.mean.push_back(mean);
    if (var <= 0.0) PL_WARN("{}: channel {} of the train images is constant; std stored as 1", info.path.string(), ch);
    info.std.push_back(var > 0.0 ? std::sqrt(var) : 1.0);
  }
  info.checksum = m.hash.hex();
  io::Group& root = m.writer.root();
  root.set_attr("format_version", kStoreFormatVersion);
  root.set_attr("format", info.format);
  root.set_attr("source", info.source);
  set_string_array_attr(root, "classes", info.classes);
  set_double_array_attr(root, "mean", info.mean);
  set_double_array_attr(root, "std", info.std);
  root.set_attr("height", info.height);
  root.set_attr("width", info.width);
  root.set_attr("channels", info.channels);
  root.set_attr("num_classes", info.num_classes());
  root.set_attr("checksum", info.checksum);
  io::AtomicWriter::Checks checks;
  checks.before_close = [](io::File& f) { io::write_digest(f); };
  m.writer.commit("complete", checks);
  return info;
}

// ---- reader ---------------------------------------------------------------------------------

namespace {
[[noreturn]] void bad(const std::filesystem::path& p, const std::string& problem) {
  throw DataError("invalid image store " + p.string() + ": " + problem);
}

// Stores up to kVerifyOnOpenBytes are verified the first time this process opens them (every
// task opens its store; a file replaced or rewritten since is verified again).
void verify_on_open(const Store& st) {
  const auto& info = st.info();
  const int64_t bytes = (info.train_size + info.test_size) * info.image_bytes();
  if (bytes > kVerifyOnOpenBytes) {
    PL_DEBUG("store {}: {} MiB of images, not verified on open (passlab inspect --check verifies it)",
             info.path.string(), bytes >> 20);
    return;
  }
  std::error_code ec;
  const auto mtime = std::filesystem::last_write_time(info.path, ec).time_since_epoch().count();
  const std::string key = std::filesystem::absolute(info.path, ec).string() + "|" +
                          std::to_string(std::filesystem::file_size(info.path, ec)) + "|" + std::to_string(mtime);
  static std::mutex mutex;
  static std::set<std::string> verified;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (verified.count(key)) return;
  }
  auto problems = st.verify();
  if (!problems.empty()) bad(info.path, problems.front());
  std::lock_guard<std::mutex> lock(mutex);
  verified.insert(key);
}

std::string shape_str(const io::Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}
}  // namespace

std::shared_ptr<Store> Store::open(const std::filesystem::path& path) {
  std::shared_ptr<Store> st(new Store());
  st->file_ = std::make_unique<io::File>(io::open_complete(path));
  const io::Group& root = st->file_->root();
  StoreInfo& info = st->info_;
  info.path = path;
  try {
    for (const char* a : {"format_version", "height", "width", "channels"})
      if (!root.has_attr(a)) bad(path, std::string("missing attribute '") + a + "'");
    const int64_t version = root.attr_int("format_version");
    if (version != kStoreFormatVersion)
      bad(path, "format_version " + std::to_string(version) + ", this passlab reads " + std::to_string(kStoreFormatVersion));
    info.format = root.has_attr("format") ? root.attr_string("format") : "";
    info.source = root.has_attr("source") ? root.attr_string("source") : "";
    info.checksum = root.has_attr("checksum") ? root.attr_string("checksum") : "";
    info.height = root.attr_int("height");
    info.width = root.attr_int("width");
    info.channels = root.attr_int("channels");
    info.classes = get_string_array_attr(root, "classes");
    info.mean = get_double_array_attr(root, "mean");
    info.std = get_double_array_attr(root, "std");
  } catch (const IOError& e) {
    bad(path, e.what());
  }
  if (info.height <= 0 || info.width <= 0 || (info.channels != 1 && info.channels != 3))
    bad(path, "image shape " + std::to_string(info.height) + "x" + std::to_string(info.width) + "x" +
                  std::to_string(info.channels) + " is not valid");
  if (info.classes.empty()) bad(path, "no classes");
  if (static_cast<int64_t>(info.mean.size()) != info.channels || static_cast<int64_t>(info.std.size()) != info.channels)
    bad(path, "mean/std have " + std::to_string(info.mean.size()) + "/" + std::to_string(info.std.size()) +
                  " entries for " + std::to_string(info.channels) + " channels");
  // The statistics normalise every image: a bad one would surface as a diverged loss.
  for (double m : info.mean)
    if (!(m >= 0.0 && m <= 1.0))
      bad(path, "mean " + std::to_string(m) + " is not in [0, 1] (pixel statistics damaged; run passlab prepare again)");
  for (double s : info.std)
    if (!(s > 0.0 && s <= 1.0))
      bad(path, "std " + std::to_string(s) + " is not in (0, 1] (pixel statistics damaged; run passlab prepare again)");

  const int64_t ncls = info.num_classes();
  for (const char* name : {"train", "test"}) {
    SplitData& sd = std::string(name) == "train" ? st->train_ : st->test_;
    const std::string img = std::string(name) + "/images", lab = std::string(name) + "/labels";
    if (!root.has(img)) bad(path, "missing dataset /" + img);
    if (!root.has(lab)) bad(path, "missing dataset /" + lab);
    sd.images = std::make_unique<io::Dataset>(root.open_dataset(img));
    io::Dataset labels = root.open_dataset(lab);
    io::DType it, lt;
    try {
      it = sd.images->dtype();
      lt = labels.dtype();
    } catch (const IOError& e) {
      bad(path, e.what());
    }
    if (it != io::DType::u8) bad(path, "/" + img + " holds " + io::to_string(it) + ", expected uint8");
    if (lt != io::DType::i64) bad(path, "/" + lab + " holds " + io::to_string(lt) + ", expected int64");
    const io::Shape is = sd.images->shape(), ls = labels.shape();
    const io::Shape want_tail{static_cast<uint64_t>(info.height), static_cast<uint64_t>(info.width),
                              static_cast<uint64_t>(info.channels)};
    if (is.size() != 4 || io::Shape(is.begin() + 1, is.end()) != want_tail)
      bad(path, "/" + img + " has shape " + shape_str(is) + ", expected [N," + std::to_string(info.height) + "," +
                    std::to_string(info.width) + "," + std::to_string(info.channels) + "]");
    if (ls.size() != 1 || ls[0] != is[0])
      bad(path, "/" + lab + " has shape " + shape_str(ls) + " for " + std::to_string(is[0]) + " images");
    if (is[0] == 0) bad(path, "/" + img + " is empty");
    sd.labels.resize(ls[0]);
    labels.read_rows<int64_t>(0, ls[0], sd.labels.data());
    for (size_t i = 0; i < sd.labels.size(); ++i)
      if (sd.labels[i] < 0 || sd.labels[i] >= ncls)
        bad(path, "/" + lab + "[" + std::to_string(i) + "] = " + std::to_string(sd.labels[i]) + " is outside [0, " +
                      std::to_string(ncls) + ")");
  }
  info.train_size = static_cast<int64_t>(st->train_.labels.size());
  info.test_size = static_cast<int64_t>(st->test_.labels.size());
  PL_DEBUG("opened store {}: {} train, {} test, {}x{}x{}, {} classes", path.string(), info.train_size, info.test_size,
           info.height, info.width, info.channels, ncls);
  verify_on_open(*st);
  return st;
}

std::vector<std::string> Store::verify() const {
  std::vector<std::string> out;
  const io::Group& root = file_->root();
  if (root.has_attr(io::kDigestAttr)) {
    const std::string stored = root.attr_string(io::kDigestAttr);
    const io::ContentScan scan = io::scan_content(*file_);
    if (scan.digest != stored)
      out.push_back("content digest mismatch: the store says " + stored + ", its content gives " + scan.digest +
                    " (changed after passlab prepare wrote it)");
    return out;
  }
  if (info_.checksum.empty()) {
    out.push_back("no checksum attribute: its images cannot be verified");
    return out;
  }
  const std::string now = compute_checksum();
  if (now != info_.checksum)
    out.push_back("checksum mismatch: the store says " + info_.checksum + ", its images and labels give " + now +
                  " (changed after passlab prepare wrote it)");
  return out;
}

bool is_store(const io::File& f) {
  const io::Group& r = f.root();
  return r.has_attr("format_version") && r.has("train") && r.has("test");
}

std::vector<std::string> check_store(const std::filesystem::path& path) {
  std::vector<std::string> out;
  std::shared_ptr<Store> st;
  try {
    st = Store::open(path);
  } catch (const std::exception& e) {
    out.push_back(e.what());
    return out;
  }
  // Store::open verified a small store already (a mismatch threw above).
  const auto& info = st->info();
  if ((info.train_size + info.test_size) * info.image_bytes() > kVerifyOnOpenBytes) out = st->verify();
  // The checksum too when the digest was verified (a store written since digests has both).
  const bool has_digest = io::File::open(path).root().has_attr(io::kDigestAttr);
  if (out.empty() && has_digest && !info.checksum.empty() && st->compute_checksum() != info.checksum)
    out.push_back("checksum mismatch: images or labels changed after passlab prepare wrote them");
  return out;
}

const Store::SplitData& Store::split(const std::string& name) const {
  if (name == "train") return train_;
  if (name == "test") return test_;
  throw InternalError("store " + info_.path.string() + " has no split '" + name + "'");
}

int64_t Store::rows(const std::string& name) const { return static_cast<int64_t>(split(name).labels.size()); }

const std::vector<int64_t>& Store::labels(const std::string& name) const { return split(name).labels; }

void Store::read_images(const std::string& name, int64_t start, int64_t count, uint8_t* out) const {
  const SplitData& sd = split(name);
  std::lock_guard<std::mutex> lock(mutex_);
  sd.images->read_rows<uint8_t>(static_cast<uint64_t>(start), static_cast<uint64_t>(count), out);
}

std::string Store::compute_checksum() const {
  io::ContentHash h;
  const int64_t rb = info_.image_bytes();
  const int64_t block = std::max<int64_t>(1, (8 << 20) / rb);
  std::vector<uint8_t> buf(static_cast<size_t>(block * rb));
  for (const char* name : {"train", "test"}) {
    const int64_t n = rows(name);
    for (int64_t s = 0; s < n; s += block) {
      const int64_t c = std::min(block, n - s);
      read_images(name, s, c, buf.data());
      h.update(buf.data(), static_cast<size_t>(c * rb));
    }
    const auto& l = labels(name);
    h.update(l.data(), l.size() * sizeof(int64_t));
  }
  return h.hex();
}

}  // namespace passlab::data
