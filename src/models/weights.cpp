#include "passlab/models/weights.hpp"

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <map>
#include <sstream>

#include "passlab/core/check.hpp"
#include "passlab/core/log.hpp"

namespace passlab::models {

io::NamedTensors state_dict(const torch::nn::Module& m) {
  io::NamedTensors out;
  for (const auto& p : m.named_parameters(true)) out.emplace_back(p.key(), p.value().detach());
  for (const auto& b : m.named_buffers(true)) out.emplace_back(b.key(), b.value().detach());
  return out;
}

namespace {

std::string shape_str(at::IntArrayRef s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}

std::string list(const std::vector<std::string>& v, size_t max = 6) {
  std::string s;
  for (size_t i = 0; i < v.size() && i < max; ++i) s += (i ? ", " : "") + v[i];
  if (v.size() > max) s += ", ... (" + std::to_string(v.size()) + " in all)";
  return s;
}

bool is_head(const std::string& name, const std::string& head) {
  return !head.empty() && (name == head + ".weight" || name == head + ".bias");
}

}  // namespace

LoadReport load_state(torch::nn::Module& m, const io::NamedTensors& tensors, const LoadOptions& opt, const std::string& source) {
  std::map<std::string, at::Tensor> file;
  for (auto& [n, t] : tensors) file.emplace(n, t);
  LoadReport rep;
  std::vector<std::string> missing, mismatched;
  std::vector<std::pair<at::Tensor, at::Tensor>> copies;  // (dest, src): validate everything before copying
  bool head_differs = false;
  auto dest = state_dict(m);
  std::map<std::string, bool> seen;
  for (auto& [name, t] : dest) {
    seen[name] = true;
    auto it = file.find(name);
    if (it == file.end()) {
      missing.push_back(name);
      continue;
    }
    const at::Tensor& src = it->second;
    if (src.sizes() != t.sizes()) {
      // A classifier with another class count: same input width, different number of outputs.
      if (is_head(name, opt.head) && opt.replace_head && src.dim() == t.dim() && src.dim() >= 1 &&
          (src.dim() == 1 || src.size(1) == t.size(1))) {
        head_differs = true;
        continue;
      }
      mismatched.push_back(name + " (file " + shape_str(src.sizes()) + ", model " + shape_str(t.sizes()) + ")");
      continue;
    }
    copies.emplace_back(t, src);
  }
  std::vector<std::string> extra;
  for (auto& [n, t] : file)
    if (!seen.count(n)) extra.push_back(n);

  std::string err;
  if (!mismatched.empty()) err += " mis-shaped: " + list(mismatched) + ";";
  if (!missing.empty() && !opt.allow_missing) err += " missing from the file: " + list(missing) + ";";
  if (!extra.empty() && !opt.allow_extra) err += " not in the model: " + list(extra) + ";";
  if (!err.empty()) throw IOError("cannot load weights from " + source + ":" + err);

  {
    at::NoGradGuard guard;
    for (auto& [d, s] : copies) d.copy_(s.to(d.device(), d.scalar_type()));
  }
  rep.loaded = static_cast<int64_t>(copies.size());
  rep.head_replaced = head_differs;
  rep.missing = missing;
  rep.extra = extra;
  if (head_differs) PL_INFO("weights from {}: classifier '{}' has another class count; it keeps its fresh initialisation", source, opt.head);
  return rep;
}

LoadReport load_weights(torch::nn::Module& m, const std::filesystem::path& file, const LoadOptions& opt, const std::string& group) {
  auto f = io::File::open(file);
  PASSLAB_CHECK(f.root().has(group) && f.root().is_group(group), IOError,
                "weights file " + file.string() + " has no group /" + group + " (write it with analysis/export_torchvision.py)");
  auto tensors = io::read_tensors(f.root().open_group(group));
  auto rep = load_state(m, tensors, opt, file.string());
  PL_DEBUG("loaded {} tensors from {}", rep.loaded, file.string());
  return rep;
}

void save_weights(const torch::nn::Module& m, io::Group& g) {
  io::write_tensors(g, state_dict(m));
}

}  // namespace passlab::models
