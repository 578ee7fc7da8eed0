#pragma once
// PASS's learnable parts (DESIGN.md §2), as passlab defines them:
//  * VisualPrompt V: a learnable border of width pad (zero-initialised) added to the image in
//    [0,1] pixel space, clamped, then normalised.
//  * Prompt encoder g_ω: V → average-pool to pool×pool → MLP → (h₀, c₀) of the LSTM (tanh).
//  * Weight statistics: per channel of each prunable group, the producing conv's L1 and L2
//    norms and the BN |γ| and β, standardised within the layer, or (global_stats) the norms per
//    weight on a log scale and standardised over all prunable channels, which keeps the
//    cross-layer scale that a global magnitude ranking uses. Step input x_i = [mean and max
//    over channels of an embedding of those features, log width, the group's share of dense
//    MACs, the log of its true MAC cost per channel relative to the other groups (cost_input;
//    0 otherwise), the previous group's keep ratio].
//  * Hypernetwork θ: a one-layer LSTM over the prunable groups in forward order (or, for the
//    no-recurrence ablation, a shared MLP over [x_i, h₀] without the auto-regressive input).
//    Scores s_i = A_i h_i + b_i + α_i z_i, z_i the standardised channel L1 norm (the
//    weight-statistics skip).
//  * Masks m_i = 1[σ(s_i/τ) > 0.5] forward, ∂σ(s_i/τ) backward (straight-through).
//    With ratio_head: ρ_i = σ(w·h_i + b) and the group's top ⌊ρ_i·n_i + ½⌋ channels by s_i
//    (ratio_head_mask); the scores the allocator ranks become logit(ρ_i) − logit((k+½)/n_i),
//    k the channel's rank in its group, so one global threshold shifts every ratio alike.
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "passlab/models/prunable.hpp"

namespace passlab::pass {

// ---- visual prompt ---------------------------------------------------------------------------

// Default border width: max(2, round(size / 14)) (16 px at 224, as in visual prompting).
int64_t default_prompt_pad(int64_t image_size);

class VisualPrompt : public torch::nn::Module {
 public:
  // channels × size × size images normalised with mean/std (per channel).
  VisualPrompt(int64_t channels, int64_t size, int64_t pad, std::vector<double> mean, std::vector<double> std);
  // The prompt as an image [C, S, S]: the learned border, zeros inside.
  at::Tensor image() const;
  // x normalised [N, C, S, S] → normalise(clamp(denormalise(x) + V, 0, 1)).
  at::Tensor forward(const at::Tensor& x) const;
  int64_t channels() const { return channels_; }
  int64_t size() const { return size_; }
  int64_t pad() const { return pad_; }

 private:
  int64_t channels_, size_, pad_;
  at::Tensor top_, bottom_, left_, right_;  // parameters
  at::Tensor mean_, std_;                   // [1, C, 1, 1] buffers (not parameters)
};

// ---- per-group inputs ------------------------------------------------------------------------

// Constant per prunable group during the search (the backbone is frozen).
struct GroupInput {
  int group = -1;        // index in the network's Structure
  int64_t width = 0;
  at::Tensor stats;      // [width, 4]: L1, L2, |γ|, β of each channel, standardised per feature
  at::Tensor magnitude;  // [width]: standardised L1 norm (z_i of the skip term)
  double log_width = 0;
  double mac_share = 0;  // the group's share of the dense MACs
  // log of the MACs one channel of this group costs in the dense network (its producing conv
  // and every consumer of the channel), minus the mean of that log over the prunable groups.
  double log_cost = 0;
};

// Standardise each column of x [n, f] to zero mean and unit variance (a constant column → 0).
at::Tensor standardise_columns(const at::Tensor& x);
// global_stats: see the header comment; false standardises within each layer.
std::vector<GroupInput> group_inputs(const models::PrunableNetwork& net, const std::vector<bool>& prunable,
                                     bool global_stats = false);

// ---- hypernetwork -----------------------------------------------------------------------------

struct HyperNetOptions {
  int64_t hidden = 128;
  int64_t embed = 32;
  bool recurrent = true;     // false: per-group MLP (pass_no_recurrence)
  bool use_stats = true;     // false: the statistics embedding is zeroed (pass_no_stats)
  bool stats_skip = true;    // α_i z_i term
  bool use_prompt = true;    // false: a learned initial state replaces g_ω(V) (pass_no_prompt)
  bool cost_input = false;   // feed GroupInput::log_cost
  bool ratio_head = false;   // per-group keep ratio ρ_i and a ranking inside the group (ratio_head_mask)
  int64_t prompt_channels = 3;
  int64_t prompt_pool = 8;
  double temperature = 1.0;
};

struct HyperOutput {
  // per GroupInput, [width] (after the cost shift, if any); with ratio_head the allocation scores
  // logit(ρ_i) − logit((rank + ½)/n_i), positive exactly for the kept channels
  std::vector<at::Tensor> scores;
  std::vector<at::Tensor> masks;   // straight-through masks, values exactly 0/1
  std::vector<at::Tensor> soft;    // σ(s/τ)
};

class HyperNetwork : public torch::nn::Module {
 public:
  HyperNetwork(std::vector<GroupInput> groups, HyperNetOptions opt);
  // prompt_image: [C, S, S] (VisualPrompt::image()) or undefined when use_prompt is false.
  // soft_path: use σ(s/τ) instead of the straight-through masks everywhere (including the
  // auto-regressive keep ratio): a smooth function of the parameters, for gradient checks.
  HyperOutput forward(const at::Tensor& prompt_image, bool soft_path = false);
  const std::vector<GroupInput>& groups() const { return groups_; }
  const HyperNetOptions& options() const { return opt_; }
  // τ of the masks from now on (the search's temperature schedule).
  void set_temperature(double tau) { opt_.temperature = tau; }
  // Budget projection: from now on the scores are s − μ·c_i (c_i = exp(GroupInput::log_cost),
  // the group's relative MAC cost per channel), so a costlier channel needs a higher s to stay.
  void set_cost_shift(double mu) { cost_shift_ = mu; }
  double cost_shift() const { return cost_shift_; }
  // Masks for every group of the network (undefined = unprunable, keeps all channels).
  std::vector<at::Tensor> full_masks(const std::vector<at::Tensor>& per_input, int num_groups) const;

 private:
  std::pair<at::Tensor, at::Tensor> initial_state(const at::Tensor& prompt_image);
  std::vector<GroupInput> groups_;
  HyperNetOptions opt_;
  double cost_shift_ = 0;
  std::shared_ptr<torch::nn::Module> impl_;  // owns the torch::nn layers (defined in the .cpp)
};

// Straight-through binary mask: forward 1[σ(s/τ) > 0.5], backward through σ(s/τ).
at::Tensor straight_through_mask(const at::Tensor& scores, double temperature);

// The ratio head's mask of one group: scores s [n] rank the channels (k = 0 the highest), ratio
// ρ (a 0-d tensor in (0, 1)) says how many stay. Forward: 1[ρ·n − k − ½ > 0], exactly 0/1.
// Backward, two straight-through paths: σ((ρ·n − k − ½)/τ) to ρ (how many: the channels within a
// few of the boundary, in units of channels) and σ((s − t)/τ) to s, t the midpoint between the last
// kept and the first dropped score (which: a channel's score rises when keeping it helps).
struct RatioMask {
  at::Tensor mask;         // [n] straight-through, values exactly 0/1
  at::Tensor soft;         // [n] σ((ρ·n − k − ½)/τ)
  at::Tensor allocation;   // [n] logit(ρ) − logit((k + ½)/n), detached: > 0 exactly where kept
};
RatioMask ratio_head_mask(const at::Tensor& scores, const at::Tensor& ratio, double temperature);

// MAC-budget loss: squared (F/F* − 1)², abs |F/F* − 1|, hinge max(0, F/F* − 1)².
at::Tensor budget_loss(const at::Tensor& macs, double target_macs, const std::string& form);

}  // namespace passlab::pass
