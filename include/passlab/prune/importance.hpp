#pragma once
// Channel importance criteria: one score per channel of every group (float64, CPU), larger =
// more important. For groups with several producers (residual ties, depthwise ties) the
// per-producer scores are summed.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "passlab/models/prunable.hpp"

namespace passlab::prune {

enum class Criterion { l1, l2, bn_scale, taylor, random, group_l2 };
// "l1", "l2", "bn_scale", "taylor", "random", "group_l2"
Criterion parse_criterion(const std::string& name);
const char* to_string(Criterion c);

using GroupScores = std::vector<at::Tensor>;  // [width_g] float64 CPU per group

// l1: sum |W| of each producing conv's output filter; l2: sqrt of the sum of squares over all
// producing convs; bn_scale: sum of |gamma| of the producing BNs (network slimming); random:
// uniform [0,1) from a portable Rng(seed); group_l2: the squared norm of every weight coupled to
// the channel over the number of coupled layers (prune/group_norm.hpp group_magnitude). taylor
// needs data: use taylor_importance.
GroupScores weight_importance(const models::PrunableNetwork& net, Criterion c, uint64_t seed = 0);

// Supplies (input, target) batches; returns false when exhausted. Batches must be on the
// network's device (or will be moved there). Independent of the data module.
using BatchSource = std::function<bool(at::Tensor& input, at::Tensor& target)>;

// First-order Taylor (Molchanov et al. 2017/2019): per channel |dL/dm_c| of the cross-entropy L
// with respect to an all-ones gate m on the group (= |sum over N,H,W of activation * gradient|),
// accumulated over up to max_batches batches. Runs in eval mode (BatchNorm frozen, as in the
// search); the network's mode, masks and parameter gradients are left as they were.
GroupScores taylor_importance(models::PrunableNetwork& net, const BatchSource& batches, int64_t max_batches);

}  // namespace passlab::prune
