#pragma once
// The method registry: one row per pruning method (PASS, its ablations and the baselines). The
// config schema takes its allowed values from it, the prune task's dispatch and the allocation
// of the baselines read their criterion and allocation from it, the PASS search its ablation
// switches, the plan's cost estimate its search cost. Adding a method means adding a row here
// (and, for a new criterion, its implementation in prune/importance); tests/pass/test_methods
// runs every row end to end, so a row that nothing implements fails at once.
#include <cstdint>
#include <string>
#include <vector>

namespace passlab::config {

struct Config;

enum class MethodFamily { pass, baseline };
const char* to_string(MethodFamily f);

// How the budget is spread over channel groups: ranked across all groups, or the same fraction
// of every group (prune/allocate.hpp).
enum class MethodAllocation { global, uniform };
const char* to_string(MethodAllocation a);

// What the channel scores cost before fine-tuning: nothing (weights only), search.steps batches
// (the PASS search), or search.taylor_batches batches (first-order Taylor); each batch is a
// forward and backward pass of the masked dense model, search.batch_size images.
enum class MethodData { none, search_steps, taylor_batches };

// A regularisation phase before the criterion (pipeline/regularise.hpp): none, DepGraph's
// group-norm sparse training of every prunable group (Fang et al. 2023), or Growing
// Regularisation's rising L2 penalty on the channels to be removed (Wang et al. 2021). Either
// trains a copy of the dense model for regularise.epochs epochs; the copy is ranked and sliced.
enum class MethodRegularisation { none, group_norm, growing };
const char* to_string(MethodRegularisation r);

struct MethodSpec {
  std::string name;
  MethodFamily family = MethodFamily::baseline;
  // Channel criterion: "hypernet" for PASS variants, else a prune::parse_criterion name
  // ("l1", "l2", "bn_scale", "taylor", "random", "group_l2").
  std::string criterion;
  MethodAllocation allocation = MethodAllocation::global;
  MethodData data = MethodData::none;
  MethodRegularisation regularisation = MethodRegularisation::none;
  // PASS parts this variant keeps (an ablation turns one off); all true for baselines.
  bool prompt = true, recurrence = true, stats = true;
  std::string doc;

  bool needs_data() const { return data != MethodData::none; }
  bool is_pass() const { return family == MethodFamily::pass; }
  // Search cost in dense-model forward/backward image passes (3 MAC-units per image and MAC),
  // before fine-tuning: 0 for weight criteria.
  double search_images(const Config& task) const;
  // Epochs of the regularisation phase over the training split (regularise.epochs), 0 without one.
  int64_t regularise_epochs(const Config& task) const;
};

const std::vector<MethodSpec>& methods();
const MethodSpec* find_method(const std::string& name);
// The row of `name`; ConfigError listing the registered names (and the nearest one) otherwise.
const MethodSpec& method_spec(const std::string& name);

// Markdown table of the registry: the "Methods" section of docs/config.md.
std::string methods_markdown();

}  // namespace passlab::config
