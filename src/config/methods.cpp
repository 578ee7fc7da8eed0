#include "passlab/config/methods.hpp"

#include <sstream>
#include <utility>

#include "passlab/config/config.hpp"
#include "passlab/config/schema.hpp"
#include "passlab/core/error.hpp"

namespace passlab::config {

const char* to_string(MethodFamily f) { return f == MethodFamily::pass ? "pass" : "baseline"; }
const char* to_string(MethodAllocation a) { return a == MethodAllocation::global ? "global" : "uniform"; }
const char* to_string(MethodRegularisation r) {
  return r == MethodRegularisation::group_norm ? "group_norm" : r == MethodRegularisation::growing ? "growing" : "none";
}

namespace {

// PASS variants: the hypernetwork's scores, allocated globally, after a search of search.steps
// batches; an ablation turns off one of its parts.
MethodSpec pass_variant(const char* name, bool prompt, bool recurrence, bool stats, const char* doc) {
  return MethodSpec{.name = name, .family = MethodFamily::pass, .criterion = "hypernet",
                    .allocation = MethodAllocation::global, .data = MethodData::search_steps, .prompt = prompt,
                    .recurrence = recurrence, .stats = stats, .doc = doc};
}

MethodSpec baseline(const char* name, const char* criterion, MethodAllocation a, MethodData d, const char* doc,
                    MethodRegularisation r = MethodRegularisation::none) {
  return MethodSpec{.name = name, .family = MethodFamily::baseline, .criterion = criterion, .allocation = a, .data = d,
                    .regularisation = r, .doc = doc};
}

std::vector<MethodSpec> make_methods() {
  using A = MethodAllocation;
  using D = MethodData;
  return {
      pass_variant("pass", true, true, true,
                   "PASS: visual prompt and weight statistics feed a recurrent hypernetwork whose channel scores are "
                   "allocated globally."),
      pass_variant("pass_no_prompt", false, true, true, "PASS without the visual prompt (a learned initial LSTM state)."),
      pass_variant("pass_no_recurrence", true, false, true, "PASS with a per-group MLP instead of the LSTM."),
      pass_variant("pass_no_stats", true, true, false,
                   "PASS without weight statistics (no statistics embedding, no magnitude skip)."),
      baseline("l1_uniform", "l1", A::uniform, D::none, "L1 norm of each channel's filter, same fraction per group."),
      baseline("l1_global", "l1", A::global, D::none, "L1 norm of each channel's filter, ranked across groups."),
      baseline("l2_global", "l2", A::global, D::none, "L2 norm of each channel's filter, ranked across groups."),
      baseline("bn_scale_global", "bn_scale", A::global, D::none, "Absolute BatchNorm scale gamma (network slimming), ranked across groups."),
      baseline("taylor_global", "taylor", A::global, D::taylor_batches,
               "First-order Taylor importance on search.taylor_batches training batches, ranked across groups."),
      baseline("random_uniform", "random", A::uniform, D::none, "Random channels (seeded), same fraction per group."),
      baseline("depgraph", "group_l2", A::global, D::none,
               "DepGraph group-sparsity pruning (Fang et al. 2023): regularise.epochs of sparse training with the group-norm "
               "regulariser on every prunable group, then the group L2 importance (all weights coupled to a channel) "
               "ranked across groups.",
               MethodRegularisation::group_norm),
      baseline("growreg", "group_l2", A::global, D::none,
               "Growing Regularisation (Wang et al. 2021): the channels of the lowest group L2 importance at the budget get "
               "an L2 penalty that grows every regularise.growreg_interval steps for regularise.epochs, then are removed.",
               MethodRegularisation::growing),
  };
}

}  // namespace

double MethodSpec::search_images(const Config& task) const {
  switch (data) {
    case MethodData::none: return 0.0;
    case MethodData::search_steps: return double(task.search.steps) * double(task.search.batch_size);
    case MethodData::taylor_batches: return double(task.search.taylor_batches) * double(task.search.batch_size);
  }
  return 0.0;
}

int64_t MethodSpec::regularise_epochs(const Config& task) const {
  return regularisation == MethodRegularisation::none ? 0 : task.regularise.epochs;
}

const std::vector<MethodSpec>& methods() {
  static const std::vector<MethodSpec> m = make_methods();
  return m;
}

const std::vector<std::string>& known_methods() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (auto& m : methods()) v.push_back(m.name);
    return v;
  }();
  return names;
}

const MethodSpec* find_method(const std::string& name) {
  for (auto& m : methods())
    if (m.name == name) return &m;
  return nullptr;
}

const MethodSpec& method_spec(const std::string& name) {
  if (const MethodSpec* m = find_method(name)) return *m;
  std::string all;
  for (auto& n : known_methods()) all += (all.empty() ? "" : ", ") + n;
  auto hint = suggest(name, known_methods());
  throw ConfigError("'" + name + "' is not a registered pruning method (" + all + ")" +
                    (hint ? "; did you mean '" + *hint + "'?" : ""));
}

std::string methods_markdown() {
  std::ostringstream o;
  o << "## Methods\n\n"
    << "The values of `prune.method` and `sweep.methods`, from the method registry in `src/config/methods.cpp`.\n"
    << "Data: the training batches a method reads to score channels before fine-tuning (none: weights only).\n"
    << "Regularisation: the phase that trains a copy of the dense model with a sparsity penalty ([regularise]) "
       "before the criterion ranks it.\n"
    << "PASS parts: what a PASS variant keeps of prompt, recurrence and weight statistics.\n\n"
    << "| method | family | criterion | allocation | data | regularisation | PASS parts | meaning |\n"
       "|---|---|---|---|---|---|---|---|\n";
  for (auto& m : methods()) {
    const char* data = m.data == MethodData::none ? "none"
                       : m.data == MethodData::search_steps ? "search.steps batches"
                                                            : "search.taylor_batches batches";
    std::string parts = "-";
    if (m.is_pass()) {
      parts.clear();
      const std::pair<bool, const char*> kept[] = {{m.prompt, "prompt"}, {m.recurrence, "recurrence"}, {m.stats, "stats"}};
      for (auto& [on, what] : kept)
        if (on) parts += (parts.empty() ? "" : ", ") + std::string(what);
    }
    o << "| `" << m.name << "` | " << to_string(m.family) << " | " << m.criterion << " | " << to_string(m.allocation)
      << " | " << data << " | " << to_string(m.regularisation) << " | " << parts << " | " << m.doc << " |\n";
  }
  o << "\n";
  return o.str();
}

}  // namespace passlab::config
