#include "passlab/pass/search.hpp"

#include <torch/torch.h>

#include <cmath>

#include "passlab/config/methods.hpp"
#include "passlab/core/error.hpp"
#include "passlab/core/log.hpp"
#include "passlab/core/rng.hpp"
#include "passlab/dist/communicator.hpp"
#include "passlab/dist/reducer.hpp"
#include "passlab/tensorio/tensor_h5.hpp"

namespace passlab::pass {

bool is_pass_method(const std::string& m) {
  const config::MethodSpec* spec = config::find_method(m);
  return spec && spec->is_pass();
}

HyperNetOptions hyper_options(const config::SearchConfig& s, const std::string& method, int64_t channels) {
  if (!is_pass_method(method)) throw ConfigError("prune.method = \"" + method + "\" is not a PASS method");
  const config::MethodSpec& variant = config::method_spec(method);  // its ablation switches
  HyperNetOptions o;
  o.hidden = s.hidden;
  o.embed = s.embed;
  o.recurrent = s.recurrence == "lstm" && variant.recurrence;
  o.use_stats = s.use_stats && variant.stats;
  o.stats_skip = s.stats_skip && variant.stats;
  o.use_prompt = s.prompt == "pad" && variant.prompt;
  o.prompt_channels = channels;
  o.prompt_pool = s.prompt_pool;
  o.temperature = s.temperature;
  return o;
}

int64_t masks_hash(const std::vector<at::Tensor>& masks) {
  std::string bytes;
  for (auto& m : masks) {
    if (!m.defined()) {
      bytes += '|';
      continue;
    }
    auto b = (m.detach().to(torch::kCPU) > 0.5).to(torch::kByte).contiguous();
    bytes.append(reinterpret_cast<const char*>(b.data_ptr<uint8_t>()), static_cast<size_t>(b.numel()));
    bytes += '|';
  }
  return static_cast<int64_t>(hash64(bytes.data(), bytes.size()) >> 1);
}

PassSearch::PassSearch(models::PrunableNetwork& net, const config::Config& cfg, const InputGeometry& input)
    : net_(net), cfg_(cfg), input_(input) {
  prunable_ = net_.structure().prunable(cfg_.prune.prune_residual);
  auto opt = hyper_options(cfg_.search, cfg_.prune.method, input_.channels);
  auto device = net_.parameters().empty() ? torch::Device(torch::kCPU) : net_.parameters().front().device();
  if (opt.use_prompt) {
    int64_t pad = cfg_.search.prompt_pad > 0 ? cfg_.search.prompt_pad : default_prompt_pad(input_.size);
    prompt_ = std::make_shared<VisualPrompt>(input_.channels, input_.size, pad, input_.mean, input_.std);
    prompt_->to(device);
  }
  // Seeded so every rank of a group builds the same initial θ, ω (checked again after search).
  torch::manual_seed(derive_seed(static_cast<uint64_t>(cfg_.experiment.seed), 0x9a55));
  hyper_ = std::make_shared<HyperNetwork>(group_inputs(net_, prunable_), opt);
  hyper_->to(device);
}

void PassSearch::init_from(const std::filesystem::path& run_file) {
  io::File f = io::open_complete(run_file);
  const auto& root = f.root();
  std::string arch = root.has_attr("arch") ? root.attr_string("arch") : "?";
  if (arch != cfg_.model.arch)
    throw ConfigError("search.init_from = \"" + run_file.string() + "\": run of arch " + arch + ", this task is " + cfg_.model.arch);
  if (!root.has("hypernet"))
    throw ConfigError("search.init_from = \"" + run_file.string() + "\" holds no /hypernet (not a PASS run)");
  auto load = [&](torch::nn::Module& m, const std::string& group) {
    auto g = root.open_group(group);
    torch::NoGradGuard ng;
    for (auto& kv : m.named_parameters()) {
      if (!g.has(kv.key()))
        throw ConfigError("search.init_from = \"" + run_file.string() + "\": /" + group + "/" + kv.key() +
                          " is missing (different method or hypernetwork size)");
      auto t = io::read_tensor(g, kv.key());
      if (t.sizes() != kv.value().sizes())
        throw ConfigError("search.init_from = \"" + run_file.string() + "\": /" + group + "/" + kv.key() +
                          " has another shape (different architecture width or hypernetwork size)");
      kv.value().copy_(t.to(kv.value().options()));
    }
  };
  load(*hyper_, "hypernet");
  if (prompt_) {
    if (!root.has("prompt")) throw ConfigError("search.init_from = \"" + run_file.string() + "\" holds no /prompt");
    load(*prompt_, "prompt");
  }
  PL_INFO("PASS: hypernetwork{} initialised from {}", prompt_ ? " and prompt" : "", run_file.string());
}

SearchCurves PassSearch::run(data::BatchSource& train, dist::Communicator* comm) {
  const auto& s = cfg_.search;
  net_.eval();
  for (auto& p : net_.parameters()) p.set_requires_grad(false);
  std::vector<at::Tensor> params = hyper_->parameters();
  if (prompt_)
    for (auto& p : prompt_->parameters()) params.push_back(p);
  std::vector<at::Tensor> trainable;
  for (auto& p : params)
    if (p.requires_grad()) trainable.push_back(p);
  // Every rank starts from the leader's θ, ω, V.
  if (comm && comm->size() > 1) {
    torch::NoGradGuard ng;
    for (auto& p : trainable) {
      auto t = p.detach();
      comm->broadcast(t, 0);
    }
    comm->wait();
  }
  std::unique_ptr<dist::GradientReducer> reducer;
  if (comm && comm->size() > 1) {
    dist::ReducerOptions ro;
    ro.bucket_mib = cfg_.dist.bucket_mib;
    ro.first_bucket_mib = cfg_.dist.first_bucket_mib;
    reducer = std::make_unique<dist::GradientReducer>(*comm, trainable, ro);
  }
  torch::optim::Adam adam(trainable, torch::optim::AdamOptions(s.lr).weight_decay(s.weight_decay));
  const double dense_macs = static_cast<double>(net_.structure().count().macs);
  const double target = cfg_.prune.budget * dense_macs;
  SearchCurves curves;
  int64_t epoch = 0;
  train.start_epoch(epoch);
  for (int64_t step = 0; step < s.steps; ++step) {
    auto batch = train.next();
    if (!batch) {
      train.start_epoch(++epoch);
      batch = train.next();
      if (!batch) throw DataError("PASS search: the training split yields no batch");
    }
    auto out = hyper_->forward(prompt_ ? prompt_->image() : at::Tensor());
    net_.set_masks(hyper_->full_masks(out.masks, net_.num_groups()));
    auto x = prompt_ ? prompt_->forward(batch->images) : batch->images;
    auto logits = net_.forward(x);
    auto ce = torch::cross_entropy_loss(logits, batch->labels);
    auto macs = net_.masked_macs().to(logits.scalar_type());
    auto bt = budget_loss(macs, target, s.flops_loss);
    auto loss = ce + s.lambda * bt;
    if (reducer) {
      reducer->zero_grad();
      reducer->prepare();
    } else {
      adam.zero_grad();
    }
    loss.backward();
    if (reducer) reducer->finish();
    adam.step();
    std::vector<double> vals = {loss.item<double>(), ce.item<double>(), bt.item<double>()};
    if (comm && comm->size() > 1) comm->allreduce_values(vals, dist::ReduceOp::mean);
    const double ratio = macs.item<double>() / dense_macs;
    if (!std::isfinite(vals[0])) throw InternalError("PASS search diverged: loss is " + std::to_string(vals[0]) + " at step " + std::to_string(step));
    curves.loss.push_back(vals[0]);
    curves.ce.push_back(vals[1]);
    curves.budget_term.push_back(vals[2]);
    curves.mac_ratio.push_back(ratio);
    if ((step + 1) % s.log_every == 0 || step + 1 == s.steps)
      PL_INFO("PASS search step {}/{}: loss {:.4f} ce {:.4f} MACs {:.1f}% of dense (target {:.1f}%)", step + 1, s.steps,
              vals[0], vals[1], 100 * ratio, 100 * cfg_.prune.budget);
  }
  net_.clear_masks();
  // Identical masks on every rank of the group (checked, not assumed).
  if (comm && comm->size() > 1) {
    auto hashes = comm->allgather(masks_hash(masks()));
    for (auto h : hashes)
      if (h != hashes.front()) throw DistError("PASS search: ranks of the run group ended with different masks");
  }
  return curves;
}

prune::GroupScores PassSearch::scores() {
  torch::NoGradGuard ng;
  auto out = hyper_->forward(prompt_ ? prompt_->image() : at::Tensor());
  prune::GroupScores scores(static_cast<size_t>(net_.num_groups()));
  const auto& groups = hyper_->groups();
  for (size_t i = 0; i < groups.size(); ++i)
    scores[static_cast<size_t>(groups[i].group)] = out.scores[i].detach().to(torch::kCPU, torch::kDouble);
  return scores;
}

std::vector<at::Tensor> PassSearch::masks() {
  torch::NoGradGuard ng;
  auto out = hyper_->forward(prompt_ ? prompt_->image() : at::Tensor());
  return hyper_->full_masks(out.masks, net_.num_groups());
}

prune::Allocation PassSearch::allocate() {
  auto opt = prune::allocation_options(cfg_.prune);
  // The hypernetwork's scores are logits with a shared threshold (0): rank them as they are.
  opt.normalization = prune::Normalization::none;
  return prune::allocate_global(net_.structure(), scores(), opt);
}

void PassSearch::save(io::Group& root) const {
  auto h = root.create_group("hypernet");
  for (auto& kv : hyper_->named_parameters()) io::write_tensor(h, kv.key(), kv.value());
  if (prompt_) {
    auto p = root.create_group("prompt");
    for (auto& kv : prompt_->named_parameters()) io::write_tensor(p, kv.key(), kv.value());
    io::write_tensor(p, "image", prompt_->image());
  }
}

}  // namespace passlab::pass
