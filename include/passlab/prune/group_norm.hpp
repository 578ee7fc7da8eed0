#pragma once
// Norms of all the weights coupled to a channel, as DepGraph defines a group (Fang et al., CVPR
// 2023; Torch-Pruning 1.6): the channel's output filter in every producing conv, its BatchNorm
// scale, and its input slice in every consuming conv or linear (a linear after a flatten reads
// in_spatial features per channel). On them: the group L2 importance (criterion "group_l2") and
// the two sparsity penalties of the regularisation phase (depgraph, growreg), each a
// differentiable scalar whose gradient is exactly what Torch-Pruning's regularize() adds to
// .grad, so training the loss plus the penalty is training with its regulariser.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "passlab/models/prunable.hpp"
#include "passlab/prune/importance.hpp"

namespace passlab::config {
struct RegulariseConfig;
}

namespace passlab::prune {

// Per channel of group g ([width], on the network's device, differentiable in the weights): the
// sum of squares of its coupled weights. `members`: how many layers contributed (the count
// Torch-Pruning's group_reduction = "mean" divides by).
at::Tensor coupled_sq_norms(const models::PrunableNetwork& net, int g, int64_t* members = nullptr);

// Torch-Pruning's GroupMagnitudeImportance(p=2, group_reduction="mean", normalizer=None): the
// coupled sum of squares over the number of member layers, per channel (float64 CPU). The
// allocator's per-group mean normalisation (prune/allocate.hpp) is that class's default
// normalizer = "mean".
GroupScores group_magnitude(const models::PrunableNetwork& net);

// DepGraph's group-norm regulariser (GroupNormPruner.regularize) on the groups where `groups` is
// true: 0.5 * reg * sum_c gamma_c * coupled_sq_norms_c with gamma_c = alpha^((max n - n_c) /
// (max n - min n)), n = sqrt(group_magnitude) (constant; gamma = 1 when all n are equal), so the
// gradient is reg * gamma_c * w on every coupled weight of channel c.
at::Tensor group_norm_penalty(const models::PrunableNetwork& net, const std::vector<bool>& groups, double reg,
                              double alpha);

// Growing Regularisation's penalty (GrowingRegPruner.regularize): 0.5 * sum_g sum_c
// coefficients[g][c] * coupled_sq_norms_c (undefined entries: group not penalised), gradient
// coefficient * w on every coupled weight.
at::Tensor channel_l2_penalty(const models::PrunableNetwork& net, const std::vector<at::Tensor>& coefficients);

// The coefficient of the removed channels at a training step: start + delta for every full
// interval of steps done, up to cap (Wang et al. 2021: delta 1e-4 every 10 iterations up to 1).
struct GrowingSchedule {
  double start = 0.0, delta = 1e-4;
  int64_t interval = 10;
  double cap = 1.0;
  static GrowingSchedule from(const config::RegulariseConfig& cfg);
  double at(int64_t step) const;
};

}  // namespace passlab::prune
