#include "passlab/tensorio/tensor_h5.hpp"

#include <ATen/ATen.h>

namespace passlab::io {

void write_tensor(Group& g, const std::string& name, const at::Tensor& t, const WriteOptions& opt) {
  // A '/' would silently create subgroups that read_tensors() does not see.
  if (name.empty() || name.find('/') != std::string::npos)
    throw IOError("cannot store tensor '" + name + "' in " + g.file() + ": names must be non-empty and contain no '/'");
  at::Tensor c = t.detach().to(at::kCPU).contiguous();
  bool is_bool = c.scalar_type() == at::kBool;
  if (is_bool) c = c.to(at::kByte);
  Shape shape(c.sizes().begin(), c.sizes().end());
  switch (c.scalar_type()) {
    case at::kFloat: g.write<float>(name, c.data_ptr<float>(), shape, opt); break;
    case at::kDouble: g.write<double>(name, c.data_ptr<double>(), shape, opt); break;
    case at::kInt: g.write<int32_t>(name, c.data_ptr<int32_t>(), shape, opt); break;
    case at::kLong: g.write<int64_t>(name, c.data_ptr<int64_t>(), shape, opt); break;
    case at::kByte: g.write<uint8_t>(name, c.data_ptr<uint8_t>(), shape, opt); break;
    default:
      throw IOError("cannot store tensor '" + name + "' of dtype " + std::string(c.dtype().name()) + " in " + g.file() +
                    " (supported: float32, float64, int32, int64, uint8, bool)");
  }
  if (is_bool) {
    DatasetId d(H5_CHECK(H5Dopen2(g.id(), name.c_str(), H5P_DEFAULT)));
    SpaceId space(H5_CHECK(H5Screate(H5S_SCALAR)));
    AttrId a(H5_CHECK(H5Acreate2(d.get(), "bool", H5T_NATIVE_INT64, space.get(), H5P_DEFAULT, H5P_DEFAULT)));
    int64_t one = 1;
    H5_CHECK(H5Awrite(a.get(), H5T_NATIVE_INT64, &one));
  }
}

at::Tensor read_tensor(const Group& g, const std::string& name) {
  Dataset d = g.open_dataset(name);
  Shape s = d.shape();
  std::vector<int64_t> sizes(s.begin(), s.end());
  at::ScalarType st;
  switch (d.dtype()) {
    case DType::f32: st = at::kFloat; break;
    case DType::f64: st = at::kDouble; break;
    case DType::i32: st = at::kInt; break;
    case DType::i64: st = at::kLong; break;
    case DType::u8: st = at::kByte; break;
    default: throw IOError("dataset " + d.path() + " has an unsupported dtype");
  }
  at::Tensor t = at::empty(sizes, at::TensorOptions().dtype(st));
  uint64_t rows = s.empty() ? 1 : s[0];
  if (t.numel() > 0) {
    switch (st) {
      case at::kFloat: d.read_rows<float>(0, rows, t.data_ptr<float>()); break;
      case at::kDouble: d.read_rows<double>(0, rows, t.data_ptr<double>()); break;
      case at::kInt: d.read_rows<int32_t>(0, rows, t.data_ptr<int32_t>()); break;
      case at::kLong: d.read_rows<int64_t>(0, rows, t.data_ptr<int64_t>()); break;
      default: d.read_rows<uint8_t>(0, rows, t.data_ptr<uint8_t>()); break;
    }
  }
  if (st == at::kByte && H5_CHECK(H5Aexists(d.id(), "bool")) > 0) t = t.to(at::kBool);
  return t;
}

void write_tensors(Group& g, const NamedTensors& named, const WriteOptions& opt) {
  for (auto& [n, t] : named) write_tensor(g, n, t, opt);
}

NamedTensors read_tensors(const Group& g) {
  NamedTensors out;
  for (auto& n : g.children())
    if (!g.is_group(n)) out.emplace_back(n, read_tensor(g, n));
  return out;
}

}  // namespace passlab::io
