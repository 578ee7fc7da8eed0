#include "passlab/io/digest.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "passlab/core/rng.hpp"
#include "passlab/io/hdf5.hpp"

namespace passlab::io {

// The stream's values are read with little-endian memory types and hashed as read; the
// finiteness check reinterprets them as native floats, which is right on little-endian hosts.
static_assert(std::endian::native == std::endian::little, "content digests assume a little-endian host");

void ContentHash::update(const void* data, size_t size) {
  const auto* b = static_cast<const unsigned char*>(data);
  uint64_t h = h_;
  for (size_t i = 0; i < size; ++i) {
    h ^= b[i];
    h *= 0x100000001b3ULL;
  }
  h_ = h;
}

std::string ContentHash::hex() const { return "fnv1a64:" + hex_digest(h_, 16); }

namespace {

// Reads of one dataset are cut into blocks of rows of about this many bytes.
constexpr size_t kBlockBytes = size_t{32} << 20;

// How a stored element type enters the stream.
struct Element {
  std::string tag;          // "u1", "i8", "f4", "s", ...
  hid_t mem = -1;           // little-endian memory type of a number (not owned)
  size_t size = 0;          // bytes per number
  bool floating = false;
  bool string = false;
};

Element element_of(hid_t type, const std::string& where) {
  const H5T_class_t cls = H5Tget_class(type);
  const size_t size = H5Tget_size(type);
  Element e;
  e.size = size;
  if (cls == H5T_STRING) {
    e.tag = "s";
    e.string = true;
    return e;
  }
  if (cls == H5T_INTEGER && (size == 1 || size == 2 || size == 4 || size == 8)) {
    const bool is_unsigned = H5_CHECK(H5Tget_sign(type)) == H5T_SGN_NONE;
    e.tag = (is_unsigned ? "u" : "i") + std::to_string(size);
    switch (size) {
      case 1: e.mem = is_unsigned ? H5T_STD_U8LE : H5T_STD_I8LE; break;
      case 2: e.mem = is_unsigned ? H5T_STD_U16LE : H5T_STD_I16LE; break;
      case 4: e.mem = is_unsigned ? H5T_STD_U32LE : H5T_STD_I32LE; break;
      default: e.mem = is_unsigned ? H5T_STD_U64LE : H5T_STD_I64LE; break;
    }
    return e;
  }
  if (cls == H5T_FLOAT && (size == 4 || size == 8)) {
    e.tag = "f" + std::to_string(size);
    e.mem = size == 4 ? H5T_IEEE_F32LE : H5T_IEEE_F64LE;
    e.floating = true;
    return e;
  }
  throw IOError(where + ": an element type passlab does not write (HDF5 type class " +
                std::to_string(static_cast<int>(cls)) + ", " + std::to_string(size) + " bytes)");
}

std::vector<hsize_t> extent_of(hid_t space) {
  const int rank = H5_CHECK(H5Sget_simple_extent_ndims(space));
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  if (rank > 0) H5_CHECK(H5Sget_simple_extent_dims(space, dims.data(), nullptr));
  return dims;
}

class Walker {
 public:
  ContentScan result() {
    ContentScan out;
    out.digest = hash_.hex();
    out.non_finite = std::move(non_finite_);
    return out;
  }

  void group(const Group& g, const std::string& path) {
    bytes("G", 1);
    text(path);
    attributes(g.id(), path, path == "/");
    const std::string base = path == "/" ? "" : path;
    for (auto& name : g.children()) {  // sorted bytewise
      const std::string child = base + "/" + name;
      if (g.is_group(name)) {
        group(g.open_group(name), child);
        continue;
      }
      Dataset d = g.open_dataset(name);
      dataset(d.id(), child);
    }
  }

 private:
  void bytes(const void* p, size_t n) { hash_.update(p, n); }
  void u64(uint64_t v) { bytes(&v, sizeof v); }  // little-endian host (static_assert above)
  void text(const std::string& s) {
    bytes(s.data(), s.size());
    bytes("", 1);  // its NUL
  }
  void header(const Element& e, const std::vector<hsize_t>& dims) {
    text(e.tag);
    u64(dims.size());
    for (auto d : dims) u64(d);
  }
  struct Value {
    Element element;
    std::vector<hsize_t> dims;
    size_t count;
  };
  // An attribute's or dataset's marker ("A", "D"), name and value header.
  Value begin_value(const char* marker, const std::string& name, hid_t type, hid_t space, const std::string& where) {
    Value v{element_of(type, where), extent_of(space), static_cast<size_t>(H5_CHECK(H5Sget_simple_extent_npoints(space)))};
    bytes(marker, 1);
    text(name);
    header(v.element, v.dims);
    return v;
  }
  void strings(const std::vector<std::string>& v) {
    for (auto& s : v) {
      u64(s.size());
      bytes(s.data(), s.size());
    }
  }
  // Numbers read little-endian into `buf` (n elements): hashed, and checked when floating.
  void numbers(const Element& e, const std::vector<unsigned char>& buf, size_t n, const std::string& name) {
    bytes(buf.data(), n * e.size);
    if (!e.floating || (!non_finite_.empty() && non_finite_.back() == name)) return;
    for (size_t i = 0; i < n; ++i) {
      double x;
      if (e.size == 4) {
        float f;
        std::memcpy(&f, buf.data() + i * 4, 4);
        x = f;
      } else {
        std::memcpy(&x, buf.data() + i * 8, 8);
      }
      if (!std::isfinite(x)) {
        non_finite_.push_back(name);
        return;
      }
    }
  }

  // Every string of an attribute or dataset (`attr` true: an attribute), fixed- or variable-length.
  static std::vector<std::string> read_strings(hid_t obj, bool attr, hid_t ftype, size_t n) {
    std::vector<std::string> out;
    TypeId mem(H5_CHECK(H5Tcopy(ftype)));
    if (H5_CHECK(H5Tis_variable_str(ftype)) > 0) {
      std::vector<char*> ptrs(n, nullptr);
      if (attr) H5_CHECK(H5Aread(obj, mem.get(), ptrs.data()));
      else H5_CHECK(H5Dread(obj, mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()));
      for (auto* p : ptrs) out.emplace_back(p ? p : "");
      hsize_t dims[1] = {n};
      SpaceId space(H5_CHECK(H5Screate_simple(1, dims, nullptr)));
      H5_CHECK(H5Dvlen_reclaim(mem.get(), space.get(), H5P_DEFAULT, ptrs.data()));
    } else {
      const size_t len = H5Tget_size(ftype);
      std::vector<char> buf(n * len);
      if (attr) H5_CHECK(H5Aread(obj, mem.get(), buf.data()));
      else H5_CHECK(H5Dread(obj, mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()));
      for (size_t i = 0; i < n; ++i) {
        std::string v(buf.data() + i * len, len);
        v.erase(std::find(v.begin(), v.end(), '\0'), v.end());
        out.push_back(std::move(v));
      }
    }
    return out;
  }

  void attributes(hid_t obj, const std::string& path, bool root) {
    std::vector<std::string> names;
    auto cb = [](hid_t, const char* n, const H5A_info_t*, void* data) -> herr_t {
      static_cast<std::vector<std::string>*>(data)->emplace_back(n);
      return 0;
    };
    H5_CHECK(H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, nullptr, cb, &names));
    std::sort(names.begin(), names.end());
    for (auto& name : names) {
      if (root && name == kDigestAttr) continue;
      const std::string where = (path == "/" ? std::string("/") : path) + "@" + name;
      AttrId a(H5_CHECK(H5Aopen(obj, name.c_str(), H5P_DEFAULT)));
      TypeId t(H5_CHECK(H5Aget_type(a.get())));
      SpaceId space(H5_CHECK(H5Aget_space(a.get())));
      const auto [e, dims, n] = begin_value("A", name, t.get(), space.get(), where);
      if (e.string) {
        strings(read_strings(a.get(), true, t.get(), n));
        continue;
      }
      std::vector<unsigned char> buf(n * e.size);
      if (n > 0) H5_CHECK(H5Aread(a.get(), e.mem, buf.data()));
      numbers(e, buf, n, where);
    }
  }

  void dataset(hid_t d, const std::string& path) {
    TypeId t(H5_CHECK(H5Dget_type(d)));
    SpaceId space(H5_CHECK(H5Dget_space(d)));
    const auto [e, dims, n] = begin_value("D", path, t.get(), space.get(), path);
    if (e.string) {
      strings(read_strings(d, false, t.get(), n));
    } else if (n > 0) {
      // Whole rows (dimension 0) per block.
      const size_t rows = dims.empty() ? 1 : dims[0];
      const size_t row_elems = n / rows;
      const size_t block = std::max<size_t>(1, kBlockBytes / std::max<size_t>(1, row_elems * e.size));
      std::vector<unsigned char> buf(std::min(rows, block) * row_elems * e.size);
      for (size_t start = 0; start < rows; start += block) {
        const size_t count = std::min(block, rows - start);
        if (dims.empty() || count == rows) {
          H5_CHECK(H5Dread(d, e.mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()));
        } else {
          std::vector<hsize_t> off(dims.size(), 0), cnt = dims;
          off[0] = start;
          cnt[0] = count;
          SpaceId file_space(H5_CHECK(H5Dget_space(d)));
          H5_CHECK(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, off.data(), nullptr, cnt.data(), nullptr));
          SpaceId mem_space(H5_CHECK(H5Screate_simple(static_cast<int>(cnt.size()), cnt.data(), nullptr)));
          H5_CHECK(H5Dread(d, e.mem, mem_space.get(), file_space.get(), H5P_DEFAULT, buf.data()));
        }
        numbers(e, buf, count * row_elems, path);
      }
    }
    attributes(d, path, false);
  }

  ContentHash hash_;
  std::vector<std::string> non_finite_;
};

}  // namespace

ContentScan scan_content(const File& f) {
  Walker w;
  w.group(f.root(), "/");
  return w.result();
}

std::string write_digest(File& f) {
  std::string digest = scan_content(f).digest;
  f.root().set_attr(kDigestAttr, digest);
  return digest;
}

}  // namespace passlab::io
