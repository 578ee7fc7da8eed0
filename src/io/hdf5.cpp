#include "passlab/io/hdf5.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>

namespace passlab::io {
namespace detail {

void ensure_h5_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Errors are collected from the stack in throw_h5 instead of being printed.
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  });
}

namespace {
herr_t collect(unsigned n, const H5E_error2_t* e, void* data) {
  auto* out = static_cast<std::string*>(data);
  if (!out->empty()) *out += "; ";
  *out += e->desc ? e->desc : "?";
  if (e->func_name) *out += std::string(" (") + e->func_name + ")";
  return n < 4 ? 0 : 1;  // the innermost few frames say what happened
}
}  // namespace

void throw_h5(const char* expr, const char* file, int line) {
  std::string stack;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect, &stack);
  H5Eclear2(H5E_DEFAULT);
  passlab::detail::throw_check(ErrorKind::IO, "HDF5", expr, stack.empty() ? "HDF5 error" : stack, file, line);
}
}  // namespace detail

const char* to_string(DType t) {
  switch (t) {
    case DType::u8: return "uint8";
    case DType::i32: return "int32";
    case DType::i64: return "int64";
    case DType::f32: return "float32";
    case DType::f64: return "float64";
  }
  return "?";
}

hid_t native_type(DType t) {
  switch (t) {
    case DType::u8: return H5T_NATIVE_UINT8;
    case DType::i32: return H5T_NATIVE_INT32;
    case DType::i64: return H5T_NATIVE_INT64;
    case DType::f32: return H5T_NATIVE_FLOAT;
    case DType::f64: return H5T_NATIVE_DOUBLE;
  }
  throw InternalError("unknown dtype");
}

uint64_t numel(const Shape& s) {
  uint64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

namespace {
std::vector<hsize_t> to_h(const Shape& s) { return std::vector<hsize_t>(s.begin(), s.end()); }

std::string join(const std::string& a, const std::string& b) {
  if (a.empty() || a == "/") return "/" + b;
  return a + "/" + b;
}

// Link existence for a path "a/b/c": each prefix must exist (H5Lexists requires that).
bool path_exists(hid_t loc, const std::string& name) {
  size_t pos = 0;
  while (true) {
    size_t next = name.find('/', pos);
    std::string prefix = name.substr(0, next);
    if (!prefix.empty() && H5_CHECK(H5Lexists(loc, prefix.c_str(), H5P_DEFAULT)) <= 0) return false;
    if (next == std::string::npos) return true;
    pos = next + 1;
  }
}

TypeId string_type() {
  TypeId t(H5_CHECK(H5Tcopy(H5T_C_S1)));
  H5_CHECK(H5Tset_size(t.get(), H5T_VARIABLE));
  H5_CHECK(H5Tset_cset(t.get(), H5T_CSET_UTF8));
  return t;
}

std::optional<DType> dtype_from(hid_t type) {
  H5T_class_t cls = H5Tget_class(type);
  size_t size = H5Tget_size(type);
  if (cls == H5T_INTEGER) {
    H5T_sign_t sign = H5Tget_sign(type);
    if (size == 1 && sign == H5T_SGN_NONE) return DType::u8;
    if (size == 4 && sign == H5T_SGN_2) return DType::i32;
    if (size == 8 && sign == H5T_SGN_2) return DType::i64;
  } else if (cls == H5T_FLOAT) {
    if (size == 4) return DType::f32;
    if (size == 8) return DType::f64;
  }
  return std::nullopt;
}
}  // namespace

// ---- Dataset ---------------------------------------------------------------------------------

Shape Dataset::shape() const {
  SpaceId space(H5_CHECK(H5Dget_space(id_.get())));
  int nd = H5_CHECK(H5Sget_simple_extent_ndims(space.get()));
  std::vector<hsize_t> dims(static_cast<size_t>(nd));
  H5_CHECK(H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr));
  return Shape(dims.begin(), dims.end());
}

DType Dataset::dtype() const {
  TypeId t(H5_CHECK(H5Dget_type(id_.get())));
  auto d = dtype_from(t.get());
  if (!d) throw IOError("dataset " + path_ + " has an element type passlab does not read");
  return *d;
}

void Dataset::extend(uint64_t rows) {
  Shape s = shape();
  PASSLAB_CHECK(!s.empty(), IOError, "cannot extend scalar dataset " + path_);
  s[0] = rows;
  auto h = to_h(s);
  H5_CHECK(H5Dset_extent(id_.get(), h.data()));
}

void Dataset::io_rows(uint64_t start, uint64_t count, DType t, void* buf, bool write) const {
  Shape s = shape();
  SpaceId file_space(H5_CHECK(H5Dget_space(id_.get())));
  if (s.empty()) {  // scalar
    PASSLAB_CHECK(start == 0 && count == 1, IOError, "scalar dataset " + path_ + " has one element");
    if (write)
      H5_CHECK(H5Dwrite(id_.get(), native_type(t), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf));
    else
      H5_CHECK(H5Dread(id_.get(), native_type(t), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf));
    return;
  }
  if (start + count > s[0]) {
    throw IOError("rows [" + std::to_string(start) + ", " + std::to_string(start + count) + ") out of range for " +
                  path_ + " with " + std::to_string(s[0]) + " rows");
  }
  if (count == 0) return;
  std::vector<hsize_t> off(s.size(), 0), cnt = to_h(s);
  off[0] = start;
  cnt[0] = count;
  H5_CHECK(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, off.data(), nullptr, cnt.data(), nullptr));
  SpaceId mem_space(H5_CHECK(H5Screate_simple(static_cast<int>(cnt.size()), cnt.data(), nullptr)));
  if (write)
    H5_CHECK(H5Dwrite(id_.get(), native_type(t), mem_space.get(), file_space.get(), H5P_DEFAULT, buf));
  else
    H5_CHECK(H5Dread(id_.get(), native_type(t), mem_space.get(), file_space.get(), H5P_DEFAULT, buf));
}

// ---- Group -----------------------------------------------------------------------------------

std::string Group::child_path(const std::string& name) const { return file_ + ":" + join(path_, name); }

bool Group::has(const std::string& name) const { return path_exists(id(), name); }

bool Group::has_attr(const std::string& name) const { return H5_CHECK(H5Aexists(id(), name.c_str())) > 0; }

std::vector<std::string> Group::children() const {
  std::vector<std::string> names;
  auto cb = [](hid_t, const char* n, const H5L_info_t*, void* data) -> herr_t {
    static_cast<std::vector<std::string>*>(data)->emplace_back(n);
    return 0;
  };
  H5_CHECK(H5Literate(id(), H5_INDEX_NAME, H5_ITER_INC, nullptr, cb, &names));
  std::sort(names.begin(), names.end());
  return names;
}

bool Group::is_group(const std::string& name) const {
  if (!has(name)) return false;
  H5O_info_t info;
  H5_CHECK(H5Oget_info_by_name2(id(), name.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT));
  return info.type == H5O_TYPE_GROUP;
}

Group Group::create_group(const std::string& name) {
  PlistId lcpl(H5_CHECK(H5Pcreate(H5P_LINK_CREATE)));
  H5_CHECK(H5Pset_create_intermediate_group(lcpl.get(), 1));
  GroupId g(H5_CHECK(H5Gcreate2(id(), name.c_str(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT)));
  return Group(std::move(g), join(path_, name), file_);
}

Group Group::open_group(const std::string& name) const {
  if (!has(name)) throw IOError(file_ + ": missing group " + join(path_, name));
  GroupId g(H5_CHECK(H5Gopen2(id(), name.c_str(), H5P_DEFAULT)));
  return Group(std::move(g), join(path_, name), file_);
}

Group Group::require_group(const std::string& name) { return has(name) ? open_group(name) : create_group(name); }

Dataset Group::create_dataset(const std::string& name, DType t, const Shape& shape, const WriteOptions& opt) {
  auto dims = to_h(shape);
  std::vector<hsize_t> maxdims = dims;
  bool chunked = opt.chunk_rows > 0 || opt.gzip > 0 || opt.extendable;
  if (opt.extendable) {
    PASSLAB_CHECK(!shape.empty(), IOError, "extendable dataset needs at least one dimension: " + child_path(name));
    maxdims[0] = H5S_UNLIMITED;
  }
  SpaceId space(shape.empty() ? H5_CHECK(H5Screate(H5S_SCALAR))
                              : H5_CHECK(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), maxdims.data())));
  PlistId lcpl(H5_CHECK(H5Pcreate(H5P_LINK_CREATE)));
  H5_CHECK(H5Pset_create_intermediate_group(lcpl.get(), 1));
  PlistId dcpl(H5_CHECK(H5Pcreate(H5P_DATASET_CREATE)));
  if (chunked && !shape.empty()) {
    std::vector<hsize_t> chunk = dims;
    hsize_t rows = opt.chunk_rows > 0 ? opt.chunk_rows : std::max<hsize_t>(dims[0], 1);
    chunk[0] = std::max<hsize_t>(1, rows);
    for (auto& c : chunk) c = std::max<hsize_t>(c, 1);
    H5_CHECK(H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()));
    if (opt.gzip > 0) {
      H5_CHECK(H5Pset_shuffle(dcpl.get()));
      H5_CHECK(H5Pset_deflate(dcpl.get(), static_cast<unsigned>(std::clamp(opt.gzip, 1, 9))));
    }
  }
  DatasetId d(H5_CHECK(H5Dcreate2(id(), name.c_str(), native_type(t), space.get(), lcpl.get(), dcpl.get(), H5P_DEFAULT)));
  return Dataset(std::move(d), child_path(name));
}

Dataset Group::open_dataset(const std::string& name) const {
  if (!has(name)) throw IOError(file_ + ": missing dataset " + join(path_, name));
  DatasetId d(H5_CHECK(H5Dopen2(id(), name.c_str(), H5P_DEFAULT)));
  return Dataset(std::move(d), child_path(name));
}

void Group::check_dtype(const Dataset& d, DType want) const {
  DType got = d.dtype();
  if (got != want)
    throw IOError("dataset " + d.path() + " holds " + to_string(got) + ", expected " + to_string(want));
}

void Group::write_string(const std::string& name, const std::string& text) {
  TypeId t = string_type();
  SpaceId space(H5_CHECK(H5Screate(H5S_SCALAR)));
  PlistId lcpl(H5_CHECK(H5Pcreate(H5P_LINK_CREATE)));
  H5_CHECK(H5Pset_create_intermediate_group(lcpl.get(), 1));
  DatasetId d(H5_CHECK(H5Dcreate2(id(), name.c_str(), t.get(), space.get(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT)));
  const char* p = text.c_str();
  H5_CHECK(H5Dwrite(d.get(), t.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, &p));
}

std::string Group::read_string(const std::string& name) const {
  Dataset d = open_dataset(name);
  TypeId ft(H5_CHECK(H5Dget_type(d.id())));
  if (H5Tget_class(ft.get()) != H5T_STRING || H5_CHECK(H5Tis_variable_str(ft.get())) <= 0)
    throw IOError("dataset " + d.path() + " is not a variable-length string");
  TypeId t = string_type();
  SpaceId space(H5_CHECK(H5Dget_space(d.id())));
  char* p = nullptr;
  H5_CHECK(H5Dread(d.id(), t.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, &p));
  std::string out = p ? p : "";
  H5_CHECK(H5Dvlen_reclaim(t.get(), space.get(), H5P_DEFAULT, &p));
  return out;
}

namespace {
void write_attr(hid_t loc, const std::string& name, hid_t type, const void* buf) {
  if (H5_CHECK(H5Aexists(loc, name.c_str())) > 0) H5_CHECK(H5Adelete(loc, name.c_str()));
  SpaceId space(H5_CHECK(H5Screate(H5S_SCALAR)));
  AttrId a(H5_CHECK(H5Acreate2(loc, name.c_str(), type, space.get(), H5P_DEFAULT, H5P_DEFAULT)));
  H5_CHECK(H5Awrite(a.get(), type, buf));
}

// Opens an attribute, naming it when missing. With `scalar`, an array attribute is refused
// rather than read into a single value (which would overrun the buffer).
AttrId open_attr(const Group& g, const std::string& name, bool scalar = true) {
  if (!g.has_attr(name)) throw IOError(g.file() + ": missing attribute '" + name + "' on " + g.path());
  AttrId a(H5_CHECK(H5Aopen(g.id(), name.c_str(), H5P_DEFAULT)));
  if (scalar) {
    SpaceId space(H5_CHECK(H5Aget_space(a.get())));
    hssize_t n = H5_CHECK(H5Sget_simple_extent_npoints(space.get()));
    if (n != 1)
      throw IOError(g.file() + ": attribute '" + name + "' on " + g.path() + " holds " + std::to_string(n) +
                    " values, not one");
  }
  return a;
}

// Every value of a string attribute, fixed- or variable-length, read in the stored character
// set (ASCII or UTF-8; HDF5 does not convert between them).
std::vector<std::string> read_strings(const Group& g, const AttrId& a, const std::string& name) {
  TypeId ft(H5_CHECK(H5Aget_type(a.get())));
  if (H5Tget_class(ft.get()) != H5T_STRING)
    throw IOError(g.file() + ": attribute '" + name + "' on " + g.path() + " is not a string");
  SpaceId space(H5_CHECK(H5Aget_space(a.get())));
  const auto n = static_cast<size_t>(H5_CHECK(H5Sget_simple_extent_npoints(space.get())));
  TypeId t(H5_CHECK(H5Tcopy(ft.get())));
  std::vector<std::string> out;
  if (H5_CHECK(H5Tis_variable_str(ft.get())) > 0) {
    std::vector<char*> ptrs(n, nullptr);
    H5_CHECK(H5Aread(a.get(), t.get(), ptrs.data()));
    for (auto* p : ptrs) out.emplace_back(p ? p : "");
    H5_CHECK(H5Dvlen_reclaim(t.get(), space.get(), H5P_DEFAULT, ptrs.data()));
  } else {  // fixed-length (h5py writes these for numpy bytes attributes)
    const size_t len = H5Tget_size(ft.get());
    std::vector<char> buf(n * len);
    H5_CHECK(H5Aread(a.get(), t.get(), buf.data()));
    for (size_t i = 0; i < n; ++i) {
      std::string v(buf.data() + i * len, len);
      v.erase(std::find(v.begin(), v.end(), '\0'), v.end());
      out.push_back(v);
    }
  }
  return out;
}

template <class T>
T read_numeric_attr(const Group& g, const std::string& name, DType want) {
  AttrId a = open_attr(g, name);
  TypeId t(H5_CHECK(H5Aget_type(a.get())));
  auto d = dtype_from(t.get());
  bool ok = d && (want == DType::f64 ? (*d == DType::f64 || *d == DType::f32)
                                     : (*d == DType::i64 || *d == DType::i32 || *d == DType::u8));
  if (!ok) throw IOError(g.file() + ": attribute '" + name + "' on " + g.path() + " is not " + to_string(want));
  T v{};
  H5_CHECK(H5Aread(a.get(), native_type(want), &v));
  return v;
}
}  // namespace

void Group::set_attr(const std::string& name, int64_t v) { write_attr(id(), name, H5T_NATIVE_INT64, &v); }
void Group::set_attr(const std::string& name, double v) { write_attr(id(), name, H5T_NATIVE_DOUBLE, &v); }
void Group::set_attr(const std::string& name, const std::string& v) {
  TypeId t = string_type();
  const char* p = v.c_str();
  write_attr(id(), name, t.get(), &p);
}

int64_t Group::attr_int(const std::string& name) const { return read_numeric_attr<int64_t>(*this, name, DType::i64); }
double Group::attr_double(const std::string& name) const { return read_numeric_attr<double>(*this, name, DType::f64); }

std::string Group::attr_string(const std::string& name) const {
  return read_strings(*this, open_attr(*this, name), name).front();
}

std::vector<std::string> Group::attr_strings(const std::string& name) const {
  return read_strings(*this, open_attr(*this, name, /*scalar=*/false), name);
}

std::vector<double> Group::attr_doubles(const std::string& name) const {
  AttrId a = open_attr(*this, name, /*scalar=*/false);
  TypeId ft(H5_CHECK(H5Aget_type(a.get())));
  H5T_class_t cls = H5Tget_class(ft.get());
  if (cls != H5T_INTEGER && cls != H5T_FLOAT)
    throw IOError(file_ + ": attribute '" + name + "' on " + path_ + " is not numeric");
  SpaceId space(H5_CHECK(H5Aget_space(a.get())));
  std::vector<double> out(static_cast<size_t>(H5_CHECK(H5Sget_simple_extent_npoints(space.get()))));
  H5_CHECK(H5Aread(a.get(), H5T_NATIVE_DOUBLE, out.data()));
  return out;
}

std::vector<std::string> Group::attr_names() const {
  std::vector<std::string> names;
  auto cb = [](hid_t, const char* n, const H5A_info_t*, void* data) -> herr_t {
    static_cast<std::vector<std::string>*>(data)->emplace_back(n);
    return 0;
  };
  H5_CHECK(H5Aiterate2(id(), H5_INDEX_NAME, H5_ITER_INC, nullptr, cb, &names));
  return names;
}

// ---- File ------------------------------------------------------------------------------------

File::File(FileId id, std::filesystem::path path)
    : id_(std::move(id)),
      path_(std::move(path)),
      root_(GroupId(H5_CHECK(H5Gopen2(id_.get(), "/", H5P_DEFAULT))), "/", path_.string()) {}

File File::create(const std::filesystem::path& path) {
  detail::ensure_h5_init();
  hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (id < 0) {
    H5Eclear2(H5E_DEFAULT);
    throw IOError("cannot create HDF5 file " + path.string() + " (directory missing or not writable?)");
  }
  return File(FileId(id), path);
}

File File::open(const std::filesystem::path& path, Mode mode) {
  detail::ensure_h5_init();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw IOError("no such file: " + path.string());
  htri_t is = H5Fis_hdf5(path.c_str());
  if (is <= 0) {
    H5Eclear2(H5E_DEFAULT);
    throw IOError(path.string() + " is not an HDF5 file (or is damaged)");
  }
  hid_t id = H5Fopen(path.c_str(), mode == Mode::read_only ? H5F_ACC_RDONLY : H5F_ACC_RDWR, H5P_DEFAULT);
  if (id < 0) {
    std::string stack;
    H5Eclear2(H5E_DEFAULT);
    throw IOError("cannot open HDF5 file " + path.string() + (mode == Mode::read_write ? " for writing" : ""));
  }
  return File(FileId(id), path);
}

void File::flush() { H5_CHECK(H5Fflush(id_.get(), H5F_SCOPE_GLOBAL)); }

void File::close() {
  root_ = Group(GroupId(), "/", path_.string());
  id_.close();
}

// ---- AtomicWriter ----------------------------------------------------------------------------

std::filesystem::path tmp_path_for(const std::filesystem::path& final_path) {
  return final_path.string() + ".tmp";
}

void fsync_file(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0 || ::fsync(fd) != 0) {
    if (fd >= 0) ::close(fd);
    throw IOError("fsync failed for " + path.string());
  }
  ::close(fd);
}

AtomicWriter::AtomicWriter(std::filesystem::path final_path) : final_(std::move(final_path)), tmp_(tmp_path_for(final_)) {
  if (final_.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(final_.parent_path(), ec);
    if (ec) throw IOError("cannot create directory " + final_.parent_path().string() + ": " + ec.message());
  }
  file_.emplace(File::create(tmp_));  // truncates a .tmp left by a killed writer
  file_->root().set_attr("status", std::string("incomplete"));
}

void AtomicWriter::commit(const std::string& status, const Checks& checks) {
  PASSLAB_CHECK(!committed_, InternalError, "AtomicWriter::commit called twice for " + final_.string());
  file_->root().set_attr("status", status);
  if (checks.before_close) checks.before_close(*file_);
  file_->flush();
  file_->close();
  file_.reset();
  fsync_file(tmp_);  // the data reach the disk before the rename makes them visible
  if (checks.before_rename) checks.before_rename(tmp_);
  std::error_code ec;
  std::filesystem::rename(tmp_, final_, ec);
  if (ec) throw IOError("cannot rename " + tmp_.string() + " to " + final_.string() + ": " + ec.message());
  committed_ = true;
  // Test hook: the process dies the instant this file got its final name, as a job killed
  // right after the rename (tests/sweep/test_integrity.cpp).
  if (const char* name = std::getenv("PASSLAB_TEST_KILL_AFTER_RENAME"); name && final_.filename() == name) ::raise(SIGKILL);
}

AtomicWriter::~AtomicWriter() {
  if (committed_) return;
  file_.reset();  // closes without checking: we are abandoning this file
  std::error_code ec;
  std::filesystem::remove(tmp_, ec);
}

File open_complete(const std::filesystem::path& path, const std::vector<std::string>& accepted) {
  File f = File::open(path);
  if (!f.root().has_attr("status"))
    throw IOError(path.string() + " has no 'status' attribute: not written by passlab, or damaged");
  std::string status = f.root().attr_string("status");
  if (std::find(accepted.begin(), accepted.end(), status) == accepted.end()) {
    std::string want;
    for (auto& a : accepted) want += (want.empty() ? "'" : ", '") + a + "'";
    throw IOError(path.string() + " has status '" + status + "', expected " + want);
  }
  return f;
}

}  // namespace passlab::io
