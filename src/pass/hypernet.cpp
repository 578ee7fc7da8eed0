#include "passlab/pass/hypernet.hpp"

#include <torch/torch.h>

#include <cmath>

#include "passlab/core/error.hpp"

namespace passlab::pass {

int64_t default_prompt_pad(int64_t image_size) {
  return std::max<int64_t>(2, static_cast<int64_t>(std::llround(static_cast<double>(image_size) / 14.0)));
}

// ---- VisualPrompt -------------------------------------------------------------------------------

VisualPrompt::VisualPrompt(int64_t channels, int64_t size, int64_t pad, std::vector<double> mean, std::vector<double> std)
    : channels_(channels), size_(size), pad_(pad) {
  if (pad <= 0 || 2 * pad >= size)
    throw ConfigError("search.prompt_pad = " + std::to_string(pad) + " does not fit a " + std::to_string(size) +
                      "-pixel image (need 0 < pad < size/2)");
  if (mean.size() != static_cast<size_t>(channels) || std.size() != static_cast<size_t>(channels))
    throw InternalError("VisualPrompt: mean/std need one value per channel");
  auto opts = torch::TensorOptions().dtype(torch::kFloat);
  top_ = register_parameter("top", torch::zeros({channels, pad, size}, opts));
  bottom_ = register_parameter("bottom", torch::zeros({channels, pad, size}, opts));
  left_ = register_parameter("left", torch::zeros({channels, size - 2 * pad, pad}, opts));
  right_ = register_parameter("right", torch::zeros({channels, size - 2 * pad, pad}, opts));
  std::vector<float> m(mean.begin(), mean.end()), s(std.begin(), std.end());
  mean_ = register_buffer("mean", torch::tensor(m).view({1, channels, 1, 1}));
  std_ = register_buffer("std", torch::tensor(s).view({1, channels, 1, 1}));
}

at::Tensor VisualPrompt::image() const {
  auto middle = torch::zeros({channels_, size_ - 2 * pad_, size_ - 2 * pad_}, top_.options());
  auto row = torch::cat({left_, middle, right_}, 2);
  return torch::cat({top_, row, bottom_}, 1);
}

at::Tensor VisualPrompt::forward(const at::Tensor& x) const {
  auto pixels = x * std_ + mean_;
  auto prompted = torch::clamp(pixels + image().unsqueeze(0), 0.0, 1.0);
  return (prompted - mean_) / std_;
}

// ---- group inputs -------------------------------------------------------------------------------

at::Tensor standardise_columns(const at::Tensor& x) {
  auto mean = x.mean(0, true);
  auto sd = x.std(0, /*unbiased=*/false, true);
  auto out = (x - mean) / sd.clamp_min(1e-12);
  return torch::where(sd > 1e-12, out, torch::zeros_like(out));
}

namespace {
// Marginal MACs of one channel of each group in the dense network: the producer's and every
// consumer's share, which Structure::count knows (mac_share counts the producer only).
std::vector<double> channel_costs(const models::Structure& s) {
  const auto widths = s.widths();
  const double dense = static_cast<double>(s.macs(widths));
  std::vector<double> cost(widths.size(), 0.0);
  for (size_t g = 0; g < widths.size(); ++g) {
    if (widths[g] < 1) continue;
    auto kept = widths;
    kept[g] -= 1;
    cost[g] = dense - static_cast<double>(s.macs(kept));
  }
  return cost;
}
}  // namespace

std::vector<GroupInput> group_inputs(const models::PrunableNetwork& net, const std::vector<bool>& prunable,
                                     bool global_stats) {
  torch::NoGradGuard no_grad;
  const auto shares = net.structure().mac_share();
  const auto costs = channel_costs(net.structure());
  std::vector<GroupInput> out;
  std::vector<at::Tensor> raw;  // [width, 4] per group, before standardisation
  for (int g = 0; g < net.num_groups(); ++g) {
    if (!prunable.at(static_cast<size_t>(g))) continue;
    GroupInput in;
    in.group = g;
    in.width = net.groups()[static_cast<size_t>(g)].width;
    auto w = net.group_conv_weight(g).detach().to(torch::kCPU, torch::kFloat).flatten(1);
    auto l1 = w.abs().sum(1), l2 = w.pow(2).sum(1).sqrt();
    if (global_stats) {  // per weight and on a log scale, so layers of other fan-in compare
      const double fan_in = static_cast<double>(w.size(1));
      l1 = torch::log(l1 / fan_in + 1e-12);
      l2 = torch::log(l2 / std::sqrt(fan_in) + 1e-12);
    }
    auto gamma = net.group_bn_weight(g), beta = net.group_bn_bias(g);
    auto ga = gamma.defined() ? gamma.detach().to(torch::kCPU, torch::kFloat).abs() : torch::ones_like(l1);
    auto be = beta.defined() ? beta.detach().to(torch::kCPU, torch::kFloat) : torch::zeros_like(l1);
    raw.push_back(torch::stack({l1, l2, ga, be}, 1));
    in.log_width = std::log(static_cast<double>(in.width));
    in.mac_share = shares.at(static_cast<size_t>(g));
    in.log_cost = std::log(std::max(costs.at(static_cast<size_t>(g)), 1.0));
    out.push_back(std::move(in));
  }
  if (out.empty()) throw ConfigError("PASS: the network has no prunable channel group");
  double mean_log_cost = 0;
  for (auto& in : out) mean_log_cost += in.log_cost / static_cast<double>(out.size());
  at::Tensor all = global_stats ? standardise_columns(torch::cat(raw, 0)) : at::Tensor();
  int64_t row = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    auto& in = out[i];
    in.log_cost -= mean_log_cost;
    in.stats = global_stats ? all.narrow(0, row, in.width).clone() : standardise_columns(raw[i]);
    row += in.width;
    in.magnitude = in.stats.select(1, 0).clone();
  }
  return out;
}

// ---- hypernetwork -------------------------------------------------------------------------------

namespace {
struct Layers : torch::nn::Module {
  torch::nn::Linear enc1{nullptr}, enc2{nullptr}, embed{nullptr}, mlp{nullptr}, ratio{nullptr};
  torch::nn::LSTMCell cell{nullptr};
  torch::nn::ModuleList mappers;
  at::Tensor alpha, init_state;
};
}  // namespace

HyperNetwork::HyperNetwork(std::vector<GroupInput> groups, HyperNetOptions opt) : groups_(std::move(groups)), opt_(opt) {
  auto L = std::make_shared<Layers>();
  const int64_t H = opt_.hidden, E = opt_.embed, in_dim = 2 * E + 4;
  if (opt_.use_prompt) {
    L->enc1 = L->register_module("enc1", torch::nn::Linear(opt_.prompt_channels * opt_.prompt_pool * opt_.prompt_pool, H));
    L->enc2 = L->register_module("enc2", torch::nn::Linear(H, 2 * H));
  } else {
    L->init_state = L->register_parameter("init_state", torch::zeros({2 * H}));
  }
  L->embed = L->register_module("embed", torch::nn::Linear(4, E));
  if (opt_.recurrent) {
    L->cell = L->register_module("cell", torch::nn::LSTMCell(in_dim, H));
  } else {
    L->mlp = L->register_module("mlp", torch::nn::Linear(in_dim + H, H));
  }
  L->mappers = L->register_module("mappers", torch::nn::ModuleList());
  for (auto& g : groups_) {
    auto lin = torch::nn::Linear(H, g.width);
    {
      torch::NoGradGuard ng;
      // Start by keeping (almost) every channel: scores ≈ 1 + z_i, so the search begins near
      // the dense network and the budget term pulls it down.
      lin->weight.mul_(0.1);
      lin->bias.fill_(1.0);
    }
    L->mappers->push_back(lin);
  }
  if (opt_.ratio_head) {
    // One head shared by every group, so a group's ratio comes from what the recurrent state knows
    // of it (its statistics, cost, width, the ratios before it), not from a per-group bias that
    // Adam would move by the same step in every group. Starts at ρ ≈ 0.95.
    L->ratio = L->register_module("ratio", torch::nn::Linear(H, 1));
    torch::NoGradGuard ng;
    L->ratio->weight.mul_(0.1);
    L->ratio->bias.fill_(3.0);
  }
  L->alpha = L->register_parameter("alpha", torch::ones({static_cast<int64_t>(groups_.size())}),
                                   /*requires_grad=*/opt_.stats_skip);
  impl_ = L;
  register_module("layers", impl_);
}

std::pair<at::Tensor, at::Tensor> HyperNetwork::initial_state(const at::Tensor& prompt_image) {
  auto& L = static_cast<Layers&>(*impl_);
  at::Tensor hc;
  if (opt_.use_prompt) {
    if (!prompt_image.defined()) throw InternalError("HyperNetwork: a prompt image is required (use_prompt)");
    auto pooled = torch::adaptive_avg_pool2d(prompt_image.unsqueeze(0), {opt_.prompt_pool, opt_.prompt_pool}).flatten();
    hc = torch::tanh(L.enc2(torch::relu(L.enc1(pooled.unsqueeze(0))))).squeeze(0);
  } else {
    hc = torch::tanh(L.init_state);
  }
  return {hc.narrow(0, 0, opt_.hidden).unsqueeze(0), hc.narrow(0, opt_.hidden, opt_.hidden).unsqueeze(0)};
}

HyperOutput HyperNetwork::forward(const at::Tensor& prompt_image, bool soft_path) {
  auto& L = static_cast<Layers&>(*impl_);
  auto [h, c] = initial_state(prompt_image);
  const auto h0 = h;
  HyperOutput out;
  at::Tensor prev_ratio = torch::ones({1}, h.options());
  for (size_t i = 0; i < groups_.size(); ++i) {
    const auto& g = groups_[i];
    auto stats = g.stats.to(h.options());
    at::Tensor summary;
    if (opt_.use_stats) {
      auto e = torch::relu(L.embed(stats));
      summary = torch::cat({e.mean(0), std::get<0>(e.max(0))});
    } else {
      summary = torch::zeros({2 * opt_.embed}, h.options());
    }
    auto extra = torch::tensor({static_cast<float>(g.log_width), static_cast<float>(g.mac_share),
                                static_cast<float>(opt_.cost_input ? g.log_cost : 0.0)},
                               h.options());
    // The no-recurrence ablation also drops the auto-regressive input.
    auto ratio_in = opt_.recurrent ? prev_ratio : torch::zeros({1}, h.options());
    auto x = torch::cat({summary, extra, ratio_in}).unsqueeze(0);
    if (opt_.recurrent) {
      auto hc = L.cell(x, std::make_tuple(h, c));
      h = std::get<0>(hc);
      c = std::get<1>(hc);
    } else {
      h = torch::tanh(L.mlp(torch::cat({x, h0}, 1)));
    }
    auto mapper = L.mappers[i]->as<torch::nn::Linear>();
    auto s = mapper->forward(h).squeeze(0);
    if (opt_.stats_skip) s = s + L.alpha[static_cast<int64_t>(i)] * g.magnitude.to(h.options());
    if (cost_shift_ != 0) s = s - cost_shift_ * std::exp(g.log_cost);
    at::Tensor soft, m;
    if (opt_.ratio_head) {
      auto rm = ratio_head_mask(s, torch::sigmoid(L.ratio->forward(h)).reshape({}), opt_.temperature);
      soft = rm.soft;
      m = soft_path ? soft : rm.mask;
      s = rm.allocation;
    } else {
      soft = torch::sigmoid(s / opt_.temperature);
      m = soft_path ? soft : straight_through_mask(s, opt_.temperature);
    }
    prev_ratio = m.mean().unsqueeze(0);
    out.scores.push_back(s);
    out.soft.push_back(soft);
    out.masks.push_back(m);
  }
  return out;
}

std::vector<at::Tensor> HyperNetwork::full_masks(const std::vector<at::Tensor>& per_input, int num_groups) const {
  std::vector<at::Tensor> masks(static_cast<size_t>(num_groups));
  for (size_t i = 0; i < groups_.size(); ++i) masks.at(static_cast<size_t>(groups_[i].group)) = per_input.at(i);
  return masks;
}

at::Tensor straight_through_mask(const at::Tensor& scores, double temperature) {
  auto soft = torch::sigmoid(scores / temperature);
  auto hard = (soft > 0.5).to(soft.scalar_type());
  // soft - soft.detach() is exactly 0, so the value is exactly hard (0 or 1); the gradient is
  // that of soft. (hard + soft - soft.detach() would round, e.g. 1 + 0.7f - 0.7f != 1.)
  return hard + (soft - soft.detach());
}

RatioMask ratio_head_mask(const at::Tensor& scores, const at::Tensor& ratio, double temperature) {
  const int64_t n = scores.size(0);
  at::Tensor sorted, rank, threshold;  // rank: 0 for the highest score; threshold: between kept and dropped
  {
    torch::NoGradGuard ng;
    at::Tensor order;
    std::tie(sorted, order) = scores.detach().sort(0, /*descending=*/true);
    rank = torch::empty_like(order);
    rank.index_put_({order}, torch::arange(n, order.options()));
    rank = rank.to(scores.scalar_type());
  }
  const auto n_f = static_cast<double>(n);
  auto margin = ratio * n_f - rank - 0.5;  // > 0: kept
  auto hard = (margin > 0).to(scores.scalar_type()).detach();
  {
    torch::NoGradGuard ng;
    const int64_t kept = hard.sum().item<int64_t>();
    if (kept == 0) threshold = sorted[0] + 1.0;
    else if (kept == n) threshold = sorted[n - 1] - 1.0;
    else threshold = 0.5 * (sorted[kept - 1] + sorted[kept]);
  }
  auto soft_ratio = torch::sigmoid(margin / temperature);
  auto soft_rank = torch::sigmoid((scores - threshold) / temperature);
  RatioMask out;
  // As in straight_through_mask: the soft - soft.detach() terms are exactly 0 in value.
  out.mask = hard + (soft_ratio - soft_ratio.detach()) + (soft_rank - soft_rank.detach());
  out.soft = soft_ratio;
  {
    torch::NoGradGuard ng;
    auto r = ratio.detach().to(torch::kDouble).clamp(1e-6, 1 - 1e-6);
    auto q = ((rank.to(torch::kDouble) + 0.5) / n_f);
    out.allocation = (torch::log(r / (1 - r)) - torch::log(q / (1 - q))).to(scores.scalar_type());
  }
  return out;
}

at::Tensor budget_loss(const at::Tensor& macs, double target_macs, const std::string& form) {
  auto r = macs / target_macs - 1.0;
  if (form == "squared") return r.pow(2);
  if (form == "abs") return r.abs();
  if (form == "hinge") return torch::relu(r).pow(2);
  throw ConfigError("search.flops_loss = \"" + form + "\" is not one of squared, abs, hinge");
}

}  // namespace passlab::pass
