#pragma once
// HDF5 layer (DESIGN.md §4). Every hid_t is owned by an RAII handle; every HDF5 call goes
// through H5_CHECK, which turns a negative return into passlab::IOError carrying HDF5's own
// error stack text, the call, file:line and rank. HDF5's automatic stderr printing is off.
#include <hdf5.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "passlab/core/check.hpp"

namespace passlab::io {

namespace detail {
[[noreturn]] void throw_h5(const char* expr, const char* file, int line);
void ensure_h5_init();  // silences HDF5's default error printer, once per process
}  // namespace detail

#define H5_CHECK(call)                                                               \
  ([&]() {                                                                           \
    auto passlab_h5_rc_ = (call);                                                    \
    if (passlab_h5_rc_ < 0) ::passlab::io::detail::throw_h5(#call, __FILE__, __LINE__); \
    return passlab_h5_rc_;                                                           \
  }())

// Owns one HDF5 identifier and closes it with the matching H5?close.
template <herr_t (*Close)(hid_t)>
class H5Id {
 public:
  H5Id() = default;
  explicit H5Id(hid_t id) : id_(id) {}
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;
  H5Id(H5Id&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)) {}
  H5Id& operator=(H5Id&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, H5I_INVALID_HID);
    }
    return *this;
  }
  ~H5Id() { reset(); }
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset() {
    if (id_ >= 0) Close(id_);  // a failing close in a destructor cannot be reported; closes are checked in close()
    id_ = H5I_INVALID_HID;
  }
  // Checked close, for paths where a failure must be seen (e.g. before a rename).
  void close();

 private:
  hid_t id_ = H5I_INVALID_HID;
};

using FileId = H5Id<H5Fclose>;
using GroupId = H5Id<H5Gclose>;
using DatasetId = H5Id<H5Dclose>;
using SpaceId = H5Id<H5Sclose>;
using TypeId = H5Id<H5Tclose>;
using AttrId = H5Id<H5Aclose>;
using PlistId = H5Id<H5Pclose>;

template <herr_t (*Close)(hid_t)>
void H5Id<Close>::close() {
  if (id_ >= 0) {
    hid_t id = std::exchange(id_, H5I_INVALID_HID);
    H5_CHECK(Close(id));
  }
}

enum class DType { u8, i32, i64, f32, f64 };
const char* to_string(DType t);
template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<uint8_t>() { return DType::u8; }
template <> constexpr DType dtype_of<int32_t>() { return DType::i32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::i64; }
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<double>() { return DType::f64; }
hid_t native_type(DType t);  // H5T_NATIVE_* (not owned)

using Shape = std::vector<uint64_t>;
uint64_t numel(const Shape& s);

struct WriteOptions {
  // Chunk extent along dimension 0 (0: contiguous, no chunking); other dims are whole.
  uint64_t chunk_rows = 0;
  // gzip level 0–9 (0: none). Requires chunking; chunk_rows defaults to the whole extent.
  int gzip = 0;
  // Extendable along dimension 0 (for append); requires chunking.
  bool extendable = false;
};

class Dataset {
 public:
  explicit Dataset(DatasetId id, std::string path) : id_(std::move(id)), path_(std::move(path)) {}
  const std::string& path() const { return path_; }
  Shape shape() const;
  DType dtype() const;
  // Reads rows [start, start+count) along dim 0 into `out` (must hold count * row elements).
  template <class T> void read_rows(uint64_t start, uint64_t count, T* out) const {
    io_rows(start, count, dtype_of<T>(), out, /*write=*/false);
  }
  template <class T> void write_rows(uint64_t start, uint64_t count, const T* in) {
    io_rows(start, count, dtype_of<T>(), const_cast<T*>(in), /*write=*/true);
  }
  // Grows dim 0 by `count` rows and writes them (dataset created extendable).
  template <class T> void append_rows(uint64_t count, const T* in) {
    uint64_t start = shape().at(0);
    extend(start + count);
    write_rows(start, count, in);
  }
  void extend(uint64_t rows);
  hid_t id() const { return id_.get(); }

 private:
  void io_rows(uint64_t start, uint64_t count, DType t, void* buf, bool write) const;
  DatasetId id_;
  std::string path_;
};

// A group (the file's root is a group too). Names may be paths ("a/b/c").
class Group {
 public:
  Group(GroupId id, std::string path, std::string file) : id_(std::move(id)), path_(std::move(path)), file_(std::move(file)) {}
  hid_t id() const { return id_.get(); }
  const std::string& path() const { return path_; }
  const std::string& file() const { return file_; }

  bool has(const std::string& name) const;
  bool has_attr(const std::string& name) const;
  std::vector<std::string> children() const;  // sorted names of direct children
  bool is_group(const std::string& name) const;

  Group create_group(const std::string& name);  // creates intermediate groups
  Group open_group(const std::string& name) const;
  Group require_group(const std::string& name);

  // Typed n-d datasets.
  template <class T>
  Dataset write(const std::string& name, const T* data, const Shape& shape, const WriteOptions& opt = {}) {
    Dataset d = create_dataset(name, dtype_of<T>(), shape, opt);
    if (numel(shape) > 0) d.write_rows<T>(0, shape.empty() ? 1 : shape[0], data);
    return d;
  }
  template <class T>
  Dataset write(const std::string& name, const std::vector<T>& data, const WriteOptions& opt = {}) {
    return write<T>(name, data.data(), Shape{data.size()}, opt);
  }
  Dataset create_dataset(const std::string& name, DType t, const Shape& shape, const WriteOptions& opt = {});
  Dataset open_dataset(const std::string& name) const;
  // Reads a whole dataset; the stored type must be `T` (no silent conversion).
  template <class T> std::vector<T> read(const std::string& name, Shape* shape = nullptr) const {
    Dataset d = open_dataset(name);
    check_dtype(d, dtype_of<T>());
    Shape s = d.shape();
    std::vector<T> out(numel(s));
    if (!out.empty()) d.read_rows<T>(0, s.empty() ? 1 : s[0], out.data());
    if (shape) *shape = s;
    return out;
  }

  // Variable-length UTF-8 string dataset (e.g. /config).
  void write_string(const std::string& name, const std::string& text);
  std::string read_string(const std::string& name) const;

  // Scalar attributes: int64, double, string. Setting an existing attribute replaces it.
  void set_attr(const std::string& name, int64_t v);
  void set_attr(const std::string& name, double v);
  void set_attr(const std::string& name, const std::string& v);
  void set_attr(const std::string& name, const char* v) { set_attr(name, std::string(v)); }
  int64_t attr_int(const std::string& name) const;
  double attr_double(const std::string& name) const;
  std::string attr_string(const std::string& name) const;
  std::vector<std::string> attr_names() const;
  // Any attribute as a list (a scalar gives one element): strings (fixed- or variable-length)
  // or numbers converted to double. IOError when the attribute is not of that kind.
  std::vector<std::string> attr_strings(const std::string& name) const;
  std::vector<double> attr_doubles(const std::string& name) const;

 private:
  void check_dtype(const Dataset& d, DType want) const;
  std::string child_path(const std::string& name) const;
  GroupId id_;
  std::string path_;
  std::string file_;
};

enum class Mode { read_only, read_write };

class File {
 public:
  // Creates (truncating) a new file.
  static File create(const std::filesystem::path& path);
  // Opens an existing file; a missing or non-HDF5 file is an IOError naming it.
  static File open(const std::filesystem::path& path, Mode mode = Mode::read_only);
  Group& root() { return root_; }
  const Group& root() const { return root_; }
  const std::filesystem::path& path() const { return path_; }
  void flush();
  void close();  // checked; the File is unusable afterwards

 private:
  File(FileId id, std::filesystem::path path);
  FileId id_;
  std::filesystem::path path_;
  Group root_;
};

// Writes <final>.tmp, and only on commit() sets root attribute `status` (last), closes and
// renames it to <final>. A writer destroyed without commit (exception) removes its .tmp; a
// killed one leaves a .tmp that the next writer of the same path truncates. Readers of the
// final path therefore never see a half-written file.
class AtomicWriter {
 public:
  explicit AtomicWriter(std::filesystem::path final_path);
  AtomicWriter(const AtomicWriter&) = delete;
  AtomicWriter& operator=(const AtomicWriter&) = delete;
  ~AtomicWriter();
  Group& root() { return file_->root(); }
  const std::filesystem::path& tmp_path() const { return tmp_; }
  const std::filesystem::path& final_path() const { return final_; }
  // What a commit runs besides setting the status: `before_close` on the open file once the
  // status is set (io::write_digest, for one), `before_rename` on the closed, synced file (e.g.
  // reopens and verifies it). Either may throw: the commit is refused and the .tmp removed.
  struct Checks {
    std::function<void(File&)> before_close;
    std::function<void(const std::filesystem::path&)> before_rename;
  };
  // status is "complete" for a finished run; "failed" records a failure (with an `error` attr).
  void commit(const std::string& status = "complete", const Checks& checks = {});

 private:
  std::filesystem::path final_, tmp_;
  std::optional<File> file_;
  bool committed_ = false;
};

std::filesystem::path tmp_path_for(const std::filesystem::path& final_path);
// Flushes a closed file's data to disk before a rename makes it visible; IOError when it cannot.
void fsync_file(const std::filesystem::path& path);

// Opens a file written by AtomicWriter and refuses it (IOError naming the file and what is
// wrong) unless its `status` attribute is one of `accepted`.
File open_complete(const std::filesystem::path& path, const std::vector<std::string>& accepted = {"complete"});

}  // namespace passlab::io
