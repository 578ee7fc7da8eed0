#include "passlab/data/prepare.hpp"

#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <mutex>
#ifndef PASSLAB_WITHOUT_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif
#include <thread>

#include "passlab/core/check.hpp"
#include "passlab/core/error.hpp"
#include "passlab/core/log.hpp"
#include "passlab/data/augment.hpp"

namespace fs = std::filesystem;

namespace passlab::data {

namespace {

std::atomic<bool> g_cancel{false};

void check_cancel() {
  if (g_cancel.load()) throw DataError("prepare interrupted; no store written");
}

// Runs f(i) for i in [0, n) on `threads` threads; rethrows the failure of the lowest index.
template <class F>
void parallel_for(int64_t n, int64_t threads, F&& f) {
  threads = std::max<int64_t>(1, std::min(threads, n));
  std::atomic<int64_t> next{0};
  std::mutex mu;
  int64_t failed_at = n;
  std::exception_ptr err;
  auto body = [&] {
    while (true) {
      const int64_t i = next.fetch_add(1);
      if (i >= n) return;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (i > failed_at) return;
      }
      try {
        f(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (i < failed_at) {
          failed_at = i;
          err = std::current_exception();
        }
      }
    }
  };
  if (threads == 1) {
    body();
  } else {
    std::vector<std::thread> pool;
    for (int64_t t = 0; t < threads; ++t) pool.emplace_back(body);
    for (auto& t : pool) t.join();
  }
  if (err) std::rethrow_exception(err);
}

std::vector<uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path.string() + ": cannot open file");
  in.seekg(0, std::ios::end);
  const auto size = static_cast<size_t>(in.tellg());
  in.seekg(0);
  std::vector<uint8_t> buf(size);
  if (size > 0 && !in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(size)))
    throw DataError(path.string() + ": read failed");
  return buf;
}

// Whole file, gunzipped when it starts with the gzip magic bytes.
std::vector<uint8_t> read_maybe_gzip(const fs::path& path) {
  std::vector<uint8_t> raw = read_bytes(path);
  if (raw.size() < 2 || raw[0] != 0x1f || raw[1] != 0x8b) return raw;
  std::vector<uint8_t> out;
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) throw InternalError("zlib inflateInit2 failed");
  zs.next_in = raw.data();
  zs.avail_in = static_cast<uInt>(raw.size());
  std::vector<uint8_t> chunk(1 << 20);
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    zs.next_out = chunk.data();
    zs.avail_out = static_cast<uInt>(chunk.size());
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      const std::string msg = zs.msg ? zs.msg : (rc == Z_BUF_ERROR ? "unexpected end of compressed data" : "inflate error");
      inflateEnd(&zs);
      throw DataError(path.string() + ": corrupt or truncated gzip data (" + msg + ")");
    }
    out.insert(out.end(), chunk.data(), chunk.data() + (chunk.size() - zs.avail_out));
    if (rc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) {
      inflateEnd(&zs);
      throw DataError(path.string() + ": truncated gzip data (the stream ends before its end marker)");
    }
  }
  inflateEnd(&zs);
  return out;
}

void require_dir(const fs::path& dir, const std::string& what) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) throw DataError(what + " " + dir.string() + " does not exist");
  if (!fs::is_directory(dir, ec)) throw DataError(what + " " + dir.string() + " is not a directory");
}

// First of `names` present in dir.
fs::path find_one(const fs::path& dir, const std::vector<std::string>& names) {
  for (auto& n : names) {
    std::error_code ec;
    if (fs::is_regular_file(dir / n, ec)) return dir / n;
  }
  std::string all;
  for (auto& n : names) all += (all.empty() ? "" : " or ") + n;
  throw DataError(dir.string() + ": missing " + all);
}

std::string source_text(const std::string& format, const fs::path& source) {
  std::error_code ec;
  fs::path abs = fs::weakly_canonical(source, ec);
  return format + ":" + (ec ? source.string() : abs.string());
}

// One split held in memory (IDX, CIFAR).
struct MemSplit {
  int64_t n = 0, h = 0, w = 0, c = 0;
  std::vector<uint8_t> images;  // HWC
  std::vector<int64_t> labels;
};

// Resizes every image of `s` to size x size (shorter side, centre crop) when size differs.
void resize_split(MemSplit& s, int64_t size, int64_t threads) {
  if (size <= 0 || (size == s.h && size == s.w)) return;
  const int64_t in_b = s.h * s.w * s.c, out_b = size * size * s.c;
  std::vector<uint8_t> out(static_cast<size_t>(s.n * out_b));
  parallel_for(s.n, threads, [&](int64_t i) {
    auto r = resize_center_crop(s.images.data() + i * in_b, s.h, s.w, s.c, size);
    std::memcpy(out.data() + i * out_b, r.data(), r.size());
  });
  s.images = std::move(out);
  s.h = s.w = size;
}

// Keeps, in order, the records for which label_of(old label) is >= 0, relabelled to it, and
// drops the others (the images move down in place).
template <class LabelOf>
void keep_records(MemSplit& s, LabelOf&& label_of) {
  const int64_t rb = s.h * s.w * s.c;
  int64_t n = 0;
  for (int64_t i = 0; i < s.n; ++i) {
    const int64_t now = label_of(s.labels[static_cast<size_t>(i)]);
    if (now < 0) continue;
    std::memmove(s.images.data() + n * rb, s.images.data() + i * rb, static_cast<size_t>(rb));
    s.labels[static_cast<size_t>(n++)] = now;
  }
  s.n = n;
  s.images.resize(static_cast<size_t>(n * rb));
  s.labels.resize(static_cast<size_t>(n));
}

// Keeps the records of `kept` classes, relabelled by their position in `kept` (0..k-1).
void select_classes(MemSplit& s, const std::vector<int64_t>& kept) {
  std::vector<int64_t> new_label(static_cast<size_t>(*std::max_element(kept.begin(), kept.end()) + 1), -1);
  for (size_t i = 0; i < kept.size(); ++i) new_label[static_cast<size_t>(kept[i])] = static_cast<int64_t>(i);
  keep_records(s, [&](int64_t old) {
    return old < static_cast<int64_t>(new_label.size()) ? new_label[static_cast<size_t>(old)] : int64_t{-1};
  });
}

// Keeps the first `per_class` records of every class, in order; each class must have that many.
void limit_per_class(MemSplit& s, int64_t per_class, const std::vector<std::string>& classes) {
  std::vector<int64_t> seen(classes.size(), 0);
  for (int64_t l : s.labels) ++seen[static_cast<size_t>(l)];
  for (size_t c = 0; c < classes.size(); ++c)
    PASSLAB_CHECK(seen[c] >= per_class, ConfigError,
                  "prepare: --train-per-class " + std::to_string(per_class) + ": class '" + classes[c] + "' has only " +
                      std::to_string(seen[c]) + " training images");
  std::fill(seen.begin(), seen.end(), 0);
  keep_records(s, [&](int64_t l) { return seen[static_cast<size_t>(l)]++ < per_class ? l : int64_t{-1}; });
}

// --shift invert: v -> 255 - v (docs/transfer.md: why a border prompt has a job on it).
void apply_shift(MemSplit& s, const std::string& shift) {
  if (shift == "invert")
    for (auto& v : s.images) v = static_cast<uint8_t>(255 - v);
}

// The class subset and the domain shift of PrepareOptions, applied to both splits, and the
// few-shot training split; `classes` and `source` (the store's provenance) say what was done.
void derive_splits(MemSplit& train, MemSplit& test, std::vector<std::string>& classes, std::string& source,
                   const PrepareOptions& opt) {
  if (!opt.classes.empty()) {
    std::vector<std::string> names;
    std::string list;
    for (size_t i = 0; i < opt.classes.size(); ++i) {
      const int64_t c = opt.classes[i];
      PASSLAB_CHECK(c >= 0 && c < static_cast<int64_t>(classes.size()), ConfigError,
                    "prepare: --classes lists " + std::to_string(c) + ", outside [0, " + std::to_string(classes.size()) + ")");
      PASSLAB_CHECK(std::count(opt.classes.begin(), opt.classes.end(), c) == 1, ConfigError,
                    "prepare: --classes lists " + std::to_string(c) + " twice");
      names.push_back(classes[static_cast<size_t>(c)]);
      list += (i ? "," : "") + std::to_string(c);
    }
    select_classes(train, opt.classes);
    select_classes(test, opt.classes);
    classes = std::move(names);
    source += "; classes " + list + " relabelled 0.." + std::to_string(opt.classes.size() - 1);
  }
  if (opt.train_per_class > 0) {
    limit_per_class(train, opt.train_per_class, classes);
    source += "; first " + std::to_string(opt.train_per_class) + " training images per class";
  }
  if (opt.shift != "none") {
    apply_shift(train, opt.shift);
    apply_shift(test, opt.shift);
    source += "; shift " + opt.shift;
  }
}

StoreInfo write_mem_store(const fs::path& out, const std::string& format, std::string source, std::vector<std::string> classes,
                          MemSplit& train, MemSplit& test, const PrepareOptions& opt) {
  derive_splits(train, test, classes, source, opt);
  StoreWriter::Meta meta;
  meta.format = format;
  meta.source = source;
  meta.classes = classes;
  meta.height = train.h;
  meta.width = train.w;
  meta.channels = train.c;
  meta.gzip = opt.gzip;
  StoreWriter w(out, meta);
  for (auto* s : {&train, &test}) {
    w.begin_split(s == &train ? "train" : "test", s->n);
    const int64_t rb = s->h * s->w * s->c, block = 4096;
    for (int64_t i = 0; i < s->n; i += block) {
      check_cancel();
      const int64_t cnt = std::min(block, s->n - i);
      w.write(cnt, s->images.data() + i * rb, s->labels.data() + i);
    }
  }
  return w.commit();
}

void check_labels(const fs::path& file, const std::vector<int64_t>& labels, int64_t ncls, int64_t first_record = 0) {
  for (size_t i = 0; i < labels.size(); ++i)
    if (labels[i] < 0 || labels[i] >= ncls)
      throw DataError(file.string() + ": record " + std::to_string(first_record + static_cast<int64_t>(i)) + " has label " +
                      std::to_string(labels[i]) + ", outside [0, " + std::to_string(ncls) + ")");
}

// ---- IDX (MNIST, Fashion-MNIST) ---------------------------------------------------------------

const std::vector<std::string> kFashionClasses = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                  "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

MemSplit read_idx_split(const fs::path& dir, const std::string& prefix, int64_t ncls) {
  const fs::path img_path = find_one(dir, {prefix + "-images-idx3-ubyte.gz", prefix + "-images-idx3-ubyte",
                                           prefix + "-images.idx3-ubyte"});
  const fs::path lab_path = find_one(dir, {prefix + "-labels-idx1-ubyte.gz", prefix + "-labels-idx1-ubyte",
                                           prefix + "-labels.idx1-ubyte"});
  IdxArray im = read_idx(img_path), lb = read_idx(lab_path);
  if (im.dims.size() != 3) throw DataError(img_path.string() + ": expected 3 dimensions (N, rows, cols), found " + std::to_string(im.dims.size()));
  if (lb.dims.size() != 1) throw DataError(lab_path.string() + ": expected 1 dimension (N), found " + std::to_string(lb.dims.size()));
  if (im.dims[0] != lb.dims[0])
    throw DataError("image/label count mismatch: " + img_path.string() + " has " + std::to_string(im.dims[0]) + " images, " +
                    lab_path.string() + " has " + std::to_string(lb.dims[0]) + " labels");
  if (im.dims[0] == 0) throw DataError(img_path.string() + ": no images");
  MemSplit s;
  s.n = im.dims[0];
  s.h = im.dims[1];
  s.w = im.dims[2];
  s.c = 1;
  s.images = std::move(im.data);
  s.labels.assign(lb.data.begin(), lb.data.end());
  check_labels(lab_path, s.labels, ncls);
  return s;
}

StoreInfo prepare_idx(const std::string& format, const fs::path& src, const fs::path& out, const PrepareOptions& opt) {
  require_dir(src, "source directory");
  std::vector<std::string> classes = kFashionClasses;
  if (format == "mnist") classes = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
  MemSplit train = read_idx_split(src, "train", 10), test = read_idx_split(src, "t10k", 10);
  if (train.h != test.h || train.w != test.w)
    throw DataError(src.string() + ": train images are " + std::to_string(train.h) + "x" + std::to_string(train.w) +
                    ", test images " + std::to_string(test.h) + "x" + std::to_string(test.w));
  resize_split(train, opt.size, opt.threads);
  resize_split(test, opt.size, opt.threads);
  return write_mem_store(out, format, source_text(format, src), classes, train, test, opt);
}

// ---- CIFAR (binary version) -------------------------------------------------------------------

const std::vector<std::string> kCifar10Classes = {"airplane", "automobile", "bird", "cat", "deer",
                                                  "dog",      "frog",       "horse", "ship", "truck"};
const std::vector<std::string> kCifar100Classes = {
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle", "bowl", "boy",
    "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle", "chair", "chimpanzee", "clock",
    "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest",
    "fox", "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion", "lizard",
    "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange", "orchid",
    "otter", "palm_tree", "pear", "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine", "possum",
    "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper",
    "snail", "snake", "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone",
    "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf",
    "woman", "worm"};

// Appends the records of one CIFAR binary file: [label bytes][3072 bytes R,G,B planes of 32x32].
void read_cifar_file(const fs::path& path, int label_bytes, int64_t ncls, MemSplit& s) {
  const std::vector<uint8_t> raw = read_bytes(path);
  const size_t rec = static_cast<size_t>(label_bytes) + 3072;
  if (raw.empty()) throw DataError(path.string() + ": empty file");
  if (raw.size() % rec != 0)
    throw DataError(path.string() + ": size " + std::to_string(raw.size()) + " is not a multiple of the " +
                    std::to_string(rec) + "-byte record (truncated, or not the CIFAR binary version)");
  const int64_t n = static_cast<int64_t>(raw.size() / rec);
  const size_t base = s.images.size();
  s.images.resize(base + static_cast<size_t>(n) * 3072);
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* r = raw.data() + static_cast<size_t>(i) * rec;
    labels[static_cast<size_t>(i)] = r[label_bytes - 1];  // CIFAR-100: <coarse><fine>; the fine label
    const uint8_t* px = r + label_bytes;
    uint8_t* dst = s.images.data() + base + static_cast<size_t>(i) * 3072;
    for (int p = 0; p < 1024; ++p)
      for (int c = 0; c < 3; ++c) dst[p * 3 + c] = px[c * 1024 + p];
  }
  check_labels(path, labels, ncls);
  s.labels.insert(s.labels.end(), labels.begin(), labels.end());
  s.n += n;
  s.h = s.w = 32;
  s.c = 3;
}

std::vector<std::string> read_class_names(const fs::path& dir, const std::string& file, const std::vector<std::string>& fallback) {
  std::error_code ec;
  if (!fs::is_regular_file(dir / file, ec)) return fallback;
  std::ifstream in(dir / file);
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  if (names.size() != fallback.size())
    throw DataError((dir / file).string() + ": " + std::to_string(names.size()) + " class names, expected " +
                    std::to_string(fallback.size()));
  return names;
}

StoreInfo prepare_cifar(const std::string& format, fs::path src, const fs::path& out, const PrepareOptions& opt) {
  const bool c100 = format == "cifar100";
  require_dir(src, "source directory");
  const std::string sub = c100 ? "cifar-100-binary" : "cifar-10-batches-bin";
  std::error_code ec;
  if (fs::is_directory(src / sub, ec)) src /= sub;
  const int64_t ncls = c100 ? 100 : 10;
  MemSplit train, test;
  if (c100) {
    read_cifar_file(find_one(src, {"train.bin"}), 2, ncls, train);
    read_cifar_file(find_one(src, {"test.bin"}), 2, ncls, test);
  } else {
    for (int i = 1; i <= 5; ++i) read_cifar_file(find_one(src, {"data_batch_" + std::to_string(i) + ".bin"}), 1, ncls, train);
    read_cifar_file(find_one(src, {"test_batch.bin"}), 1, ncls, test);
  }
  const auto classes = c100 ? read_class_names(src, "fine_label_names.txt", kCifar100Classes)
                            : read_class_names(src, "batches.meta.txt", kCifar10Classes);
  resize_split(train, opt.size, opt.threads);
  resize_split(test, opt.size, opt.threads);
  return write_mem_store(out, format, source_text(format, src), classes, train, test, opt);
}

// ---- image folders ----------------------------------------------------------------------------

bool is_image_file(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  static const std::vector<std::string> exts = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".pbm",
                                                ".tif", ".tiff", ".webp"};
  return std::find(exts.begin(), exts.end(), ext) != exts.end();
}

#ifndef PASSLAB_WITHOUT_OPENCV
// Walks a JPEG's marker structure (SOI, segments, entropy-coded scans) up to its end-of-image
// marker. libjpeg only warns about a truncated JPEG and fills the missing part with gray, so
// prepare checks the structure itself; bytes after EOI (camera padding) are allowed.
bool jpeg_complete(const std::vector<uint8_t>& b) {
  const size_t n = b.size();
  size_t i = 2;
  while (i + 1 < n) {
    if (b[i] != 0xFF) return false;
    while (i + 1 < n && b[i + 1] == 0xFF) ++i;  // fill bytes
    if (i + 1 >= n) return false;
    const uint8_t m = b[i + 1];
    i += 2;
    if (m == 0xD9) return true;                          // EOI
    if ((m >= 0xD0 && m <= 0xD7) || m == 0x01) continue;  // RSTn, TEM: no length
    if (i + 1 >= n) return false;
    const size_t len = (size_t{b[i]} << 8) | b[i + 1];
    if (len < 2) return false;
    i += len;
    if (m == 0xDA) {  // SOS: entropy-coded data up to the next marker that is not RSTn or a stuffed 0xFF00
      while (i + 1 < n && !(b[i] == 0xFF && b[i + 1] != 0x00 && !(b[i + 1] >= 0xD0 && b[i + 1] <= 0xD7))) ++i;
    }
  }
  return false;
}
#endif

struct FolderItem {
  fs::path path;
  int64_t label;
};

std::vector<std::string> sorted_subdirs(const fs::path& dir) {
  std::vector<std::string> out;
  for (auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (!name.empty() && name[0] != '.' && e.is_directory()) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<FolderItem> list_split(const fs::path& dir, const std::vector<std::string>& classes) {
  require_dir(dir, "split directory");
  std::vector<FolderItem> items;
  for (const std::string& cls : sorted_subdirs(dir)) {
    auto it = std::find(classes.begin(), classes.end(), cls);
    if (it == classes.end()) throw DataError((dir / cls).string() + ": class '" + cls + "' does not exist in the train split");
    std::vector<fs::path> files;
    for (auto& e : fs::directory_iterator(dir / cls))
      if (e.is_regular_file() && is_image_file(e.path())) files.push_back(e.path());
    if (files.empty()) throw DataError((dir / cls).string() + ": empty class (no image files)");
    std::sort(files.begin(), files.end());
    for (auto& f : files) items.push_back({f, it - classes.begin()});
  }
  if (items.empty()) throw DataError(dir.string() + ": no class directories");
  return items;
}

#ifdef PASSLAB_WITHOUT_OPENCV

// Name of an image file's format, from its first bytes (else its extension).
std::string image_format(const std::vector<uint8_t>& b, const fs::path& path) {
  auto starts = [&](std::initializer_list<uint8_t> m) {
    return b.size() >= m.size() && std::equal(m.begin(), m.end(), b.begin());
  };
  if (starts({0xFF, 0xD8})) return "JPEG";
  if (starts({0x89, 'P', 'N', 'G'})) return "PNG";
  if (starts({'B', 'M'})) return "BMP";
  if (starts({'R', 'I', 'F', 'F'})) return "WebP";
  if (starts({'I', 'I', 42, 0}) || starts({'M', 'M', 0, 42})) return "TIFF";
  return path.extension().string() + " files";
}

// Without OpenCV, only the message: what it cannot decode.
struct Image {
  int rows = 0, cols = 0;
  uint8_t* data = nullptr;
};
[[noreturn]] Image decode_image(const fs::path& path, int64_t) {
  const std::vector<uint8_t> bytes = read_bytes(path);
  throw NotImplementedError(path.string() + ": built without OpenCV: cannot decode " + image_format(bytes, path) +
                            "; rebuild with OpenCV (PASSLAB_WITH_OPENCV=ON)");
}

#else

using Image = cv::Mat;

// Decodes an image file to HWC uint8 RGB (channels 3) or gray (channels 1).
Image decode_image(const fs::path& path, int64_t channels) {
  const std::vector<uint8_t> bytes = read_bytes(path);
  if (bytes.empty()) throw DataError(path.string() + ": empty image file");
  // Decided by content, not extension (some datasets hold PNGs named .jpg).
  if (bytes.size() >= 2 && bytes[0] == 0xFF && bytes[1] == 0xD8 && !jpeg_complete(bytes))
    throw DataError(path.string() + ": truncated JPEG (the data ends before its end-of-image marker)");
  cv::Mat img;
  try {
    img = cv::imdecode(cv::Mat(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<uint8_t*>(bytes.data())),
                       channels == 1 ? cv::IMREAD_GRAYSCALE : cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    throw DataError(path.string() + ": cannot decode image (" + e.what() + ")");
  }
  if (img.empty() || img.depth() != CV_8U)
    throw DataError(path.string() + ": cannot decode image (corrupt, truncated or unsupported format)");
  if (channels == 3) cv::cvtColor(img, img, cv::COLOR_BGR2RGB);
  if (!img.isContinuous()) img = img.clone();
  return img;
}

#endif  // PASSLAB_WITHOUT_OPENCV

StoreInfo prepare_imagefolder(const fs::path& src, const fs::path& out, const PrepareOptions& opt) {
  require_dir(src, "source directory");
  require_dir(src / "train", "split directory");
  require_dir(src / "test", "split directory");
  const int64_t channels = opt.channels == 0 ? 3 : opt.channels;
  PASSLAB_CHECK(channels == 1 || channels == 3, ConfigError, "prepare: --channels must be 1 or 3");
  const std::vector<std::string> classes = sorted_subdirs(src / "train");
  if (classes.empty()) throw DataError((src / "train").string() + ": no class directories");
  const auto train = list_split(src / "train", classes);
  const auto test = list_split(src / "test", classes);
#ifdef PASSLAB_WITHOUT_OPENCV
  decode_image(train.front().path, channels);  // throws: says what this build cannot decode
#endif
  // Classes of train without images were caught by list_split; check every class is in train.
  int64_t h = opt.size, w = opt.size;
  if (opt.size == 0) {
    Image first = decode_image(train.front().path, channels);
    h = first.rows;
    w = first.cols;
  }
  PL_INFO("prepare imagefolder {}: {} classes, {} train and {} test images -> {}x{}x{}", src.string(), classes.size(),
          train.size(), test.size(), h, w, channels);

  StoreWriter::Meta meta;
  meta.format = "imagefolder";
  meta.source = source_text("imagefolder", src);
  meta.classes = classes;
  meta.height = h;
  meta.width = w;
  meta.channels = channels;
  meta.gzip = opt.gzip;
  StoreWriter writer(out, meta);
  const int64_t rb = h * w * channels;
  const int64_t block = std::max<int64_t>(64, std::min<int64_t>(4096, (64 << 20) / rb));
  std::vector<uint8_t> buf(static_cast<size_t>(block * rb));
  std::vector<int64_t> labels(static_cast<size_t>(block));
  for (auto* items : {&train, &test}) {
    const int64_t n = static_cast<int64_t>(items->size());
    writer.begin_split(items == &train ? "train" : "test", n);
    for (int64_t s = 0; s < n; s += block) {
      check_cancel();
      const int64_t cnt = std::min(block, n - s);
      parallel_for(cnt, opt.threads, [&](int64_t i) {
        const FolderItem& it = (*items)[static_cast<size_t>(s + i)];
        Image img = decode_image(it.path, channels);
        uint8_t* dst = buf.data() + i * rb;
        if (opt.size > 0) {
          auto r = resize_center_crop(img.data, img.rows, img.cols, channels, opt.size);
          std::memcpy(dst, r.data(), r.size());
        } else {
          if (img.rows != h || img.cols != w)
            throw DataError(it.path.string() + ": image is " + std::to_string(img.cols) + "x" + std::to_string(img.rows) +
                            ", the first train image " + std::to_string(w) + "x" + std::to_string(h) +
                            "; give --size to resize all images");
          std::memcpy(dst, img.data, static_cast<size_t>(rb));
        }
        labels[static_cast<size_t>(i)] = it.label;
      });
      writer.write(cnt, buf.data(), labels.data());
      PL_DEBUG("{}: {}/{}", items == &train ? "train" : "test", s + cnt, n);
    }
  }
  return writer.commit();
}

}  // namespace

void request_prepare_cancel() { g_cancel.store(true); }

const std::vector<std::string>& prepare_formats() {
  static const std::vector<std::string> f = {"fashion-mnist", "mnist", "cifar10", "cifar100", "imagefolder"};
  return f;
}

const std::vector<std::string>& prepare_shifts() {
  static const std::vector<std::string> s = {"none", "invert"};
  return s;
}

fs::path default_source(const std::string& format) {
  if (format == "fashion-mnist") return "/usr/share/datasets/fashion-mnist";
  return {};
}

IdxArray read_idx(const fs::path& path) {
  const std::vector<uint8_t> b = read_maybe_gzip(path);
  if (b.size() < 4) throw DataError(path.string() + ": truncated IDX file (" + std::to_string(b.size()) + " bytes, no header)");
  if (b[0] != 0 || b[1] != 0) throw DataError(path.string() + ": not an IDX file (bad magic number)");
  if (b[2] != 0x08) throw DataError(path.string() + ": IDX element type 0x" + hex_digest(uint64_t{b[2]} << 56, 2) + " is not unsigned byte");
  const int nd = b[3];
  if (nd < 1 || nd > 4) throw DataError(path.string() + ": IDX file with " + std::to_string(nd) + " dimensions");
  const size_t header = 4 + 4 * static_cast<size_t>(nd);
  if (b.size() < header) throw DataError(path.string() + ": truncated IDX header");
  IdxArray a;
  uint64_t total = 1;
  for (int d = 0; d < nd; ++d) {
    const uint8_t* p = b.data() + 4 + 4 * d;
    const int64_t v = (int64_t{p[0]} << 24) | (int64_t{p[1]} << 16) | (int64_t{p[2]} << 8) | int64_t{p[3]};
    a.dims.push_back(v);
    total *= static_cast<uint64_t>(v);
  }
  const uint64_t have = b.size() - header;
  if (have < total)
    throw DataError(path.string() + ": truncated IDX file: header announces " + std::to_string(total) + " bytes of data, found " +
                    std::to_string(have));
  if (have > total)
    throw DataError(path.string() + ": corrupt IDX file: " + std::to_string(have - total) + " bytes beyond the announced data");
  a.data.assign(b.begin() + static_cast<std::ptrdiff_t>(header), b.end());
  return a;
}

StoreInfo prepare(const std::string& format, const fs::path& source_in, const fs::path& out, const PrepareOptions& opt) {
  const auto& formats = prepare_formats();
  if (std::find(formats.begin(), formats.end(), format) == formats.end()) {
    std::string all;
    for (auto& f : formats) all += (all.empty() ? "" : ", ") + f;
    throw ConfigError("prepare: unknown format '" + format + "' (expected one of: " + all + ")");
  }
  PASSLAB_CHECK(!out.empty(), ConfigError, "prepare: give the output store (--out)");
  PASSLAB_CHECK(opt.size >= 0 && opt.size <= 4096, ConfigError, "prepare: --size must be in [0, 4096]");
  PASSLAB_CHECK(opt.threads >= 1, ConfigError, "prepare: --threads must be >= 1");
  PASSLAB_CHECK(opt.gzip >= 0 && opt.gzip <= 9, ConfigError, "prepare: --gzip must be in [0, 9]");
  const auto& shifts = prepare_shifts();
  PASSLAB_CHECK(std::find(shifts.begin(), shifts.end(), opt.shift) != shifts.end(), ConfigError,
                "prepare: unknown --shift '" + opt.shift + "' (expected none or invert)");
  PASSLAB_CHECK(format != "imagefolder" || (opt.classes.empty() && opt.shift == "none" && opt.train_per_class == 0), ConfigError,
                "prepare imagefolder: --classes, --shift and --train-per-class apply to fashion-mnist, mnist, cifar10 and cifar100");
  fs::path source = source_in.empty() ? default_source(format) : source_in;
  if (source.empty()) throw ConfigError("prepare " + format + ": give the source directory");
  std::error_code ec;
  if (fs::exists(out, ec) && !opt.force)
    throw IOError(out.string() + " already exists; pass --force to replace it");
  g_cancel.store(false);
#ifndef PASSLAB_WITHOUT_OPENCV
  cv::setNumThreads(1);  // --threads is the parallelism; OpenCV's own pool would oversubscribe
#endif
  const auto t0 = std::chrono::steady_clock::now();
  PL_INFO("prepare {} from {} -> {}", format, source.string(), out.string());
  StoreInfo info;
  if (format == "fashion-mnist" || format == "mnist")
    info = prepare_idx(format, source, out, opt);
  else if (format == "cifar10" || format == "cifar100")
    info = prepare_cifar(format, source, out, opt);
  else
    info = prepare_imagefolder(source, out, opt);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  PL_INFO("wrote {}: {} train + {} test images of {}x{}x{}, {} classes, {} ({:.1f} s)", out.string(), info.train_size,
          info.test_size, info.height, info.width, info.channels, info.num_classes(), info.checksum, secs);
  return info;
}

}  // namespace passlab::data
