#pragma once
// Keep plans and physical slicing. A KeepPlan holds, per channel group, the sorted indices of
// the channels kept; it is the saved result of a pruning method (/keep/<group name> in a run
// file). Re-applying a plan to the dense model reproduces the compact model exactly, and the
// compact architecture alone (arch + plan sizes) can be rebuilt to load a run file's weights.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "passlab/models/prunable.hpp"

namespace passlab::prune {

using KeepPlan = std::vector<std::vector<int64_t>>;

KeepPlan full_plan(const models::Structure& s);                    // every channel of every group
std::vector<int64_t> kept_counts(const KeepPlan& plan);
// Throws InternalError unless the plan has one non-empty, sorted, unique, in-range list per group.
void validate_plan(const models::Structure& s, const KeepPlan& plan);

// 0/1 masks (float32 on `device`) selecting the plan's channels, one per group.
std::vector<at::Tensor> plan_masks(const models::Structure& s, const KeepPlan& plan, const at::Device& device = at::kCPU);
// Sets those masks on the network (the "masked" form of the plan).
void apply_plan_masks(models::PrunableNetwork& net, const KeepPlan& plan);

// The compact architecture of a plan: dense_spec with widths = kept counts (fresh weights).
models::ModelSpec compact_spec(const models::ModelSpec& dense_spec, const KeepPlan& plan);
models::PrunableNetworkPtr make_compact_shell(const models::ModelSpec& dense_spec, const KeepPlan& plan);

// Builds the compact network and copies the dense weights into it, sliced by the plan: conv
// out/in channels, depthwise groups, BN weight/bias/running stats, linear inputs (per channel
// block of in_spatial features). The compact network has the dense one's device and mode and no
// masks. The dense network must itself be dense (spec().widths empty) or at least have the
// plan's group count.
models::PrunableNetworkPtr make_compact(const models::PrunableNetwork& dense, const KeepPlan& plan);

// Plans keyed by group name (run files) and back.
std::vector<std::pair<std::string, std::vector<int64_t>>> named_plan(const models::Structure& s, const KeepPlan& plan);
KeepPlan plan_from_named(const models::Structure& s, const std::vector<std::pair<std::string, std::vector<int64_t>>>& named);

}  // namespace passlab::prune
