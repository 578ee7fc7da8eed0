#pragma once
// PASS mask search (docs/method.md): the backbone is frozen; the visual prompt V, the prompt
// encoder ω and the hypernetwork θ are trained jointly with Adam on
//   (1-d)·CE(masked, prompted network) + d·KL(dense ‖ masked) + λ·budget_loss(F(m) / (r_t·F_dense)),
// the masked forward normalised with batch statistics (search.bn_mode; the running statistics
// never touched), r_t the MAC target annealed from 1 to the budget (SearchSchedule),
// through train::Trainer (its step function, trainable set and step count): data-parallel over
// a run group, each rank on its shard, only θ, ω and V gradients all-reduced; step checkpoints
// (a preempted search resumes where it stopped, schedules included), bf16 autocast on GPU with
// [dense] precision, one divergence policy. Every rank ends with identical masks (checked by
// hash, not assumed). The final scores go to the global allocator (prune/allocate.hpp), which
// meets the MAC budget.
#include <ATen/core/Tensor.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "passlab/config/config.hpp"
#include "passlab/data/batch.hpp"
#include "passlab/pass/hypernet.hpp"
#include "passlab/prune/allocate.hpp"
#include "passlab/train/trainer.hpp"

namespace passlab::dist {
class Communicator;
}
namespace passlab::io {
class Group;
}

namespace passlab::pass {

// True for the PASS variants of the method registry (config/methods.hpp).
bool is_pass_method(const std::string& method);
// Hypernetwork options of a PASS method (its ablation switches) from [search].
HyperNetOptions hyper_options(const config::SearchConfig& search, const std::string& method, int64_t channels);

struct SearchCurves {
  std::vector<double> loss, ce, budget_term, mac_ratio;  // per step, mean over the run group
  std::vector<double> target_ratio;                      // the annealed MAC target, per step
  int64_t resumed_from_step = 0;                         // 0: the search started fresh
};

// The search's schedules, as functions of the step (0-based), so a resumed search continues
// them where it stopped: the MAC target falls linearly from 1 to the budget over anneal_steps,
// τ decays geometrically from temperature_start to temperature_end (0: constant) by the last step.
struct SearchSchedule {
  int64_t steps = 0, anneal_steps = 0;
  double budget = 1.0, temperature_start = 1.0, temperature_end = 0.0;
  double target_ratio(int64_t step) const;
  double temperature(int64_t step) const;
  static SearchSchedule from(const config::Config& cfg);
};

// Budget projection (search.budget_mode = "projection"): the smallest shift Δ (to float
// precision) for which the hard masks 1[s_i − Δ·c_i > 0] (c_i = exp(groups[i].log_cost), at
// least one channel per group) count at most target_macs on `structure`. Negative when the
// scores keep fewer MACs than the target; keeping every channel if even that is within it.
double budget_shift(const models::Structure& structure, const std::vector<GroupInput>& groups,
                    const std::vector<at::Tensor>& scores, double target_macs);

// KL(softmax(teacher) || softmax(student)), mean over the batch, in fp32.
at::Tensor distillation_loss(const at::Tensor& student_logits, const at::Tensor& teacher_logits);

struct InputGeometry {
  int64_t channels = 3;
  int64_t size = 32;
  std::vector<double> mean, std;  // the normalisation of the loader's images
};

class PassSearch {
 public:
  // `net` is the dense network (frozen here). `budget` and constraints come from cfg.prune.
  PassSearch(models::PrunableNetwork& net, const config::Config& cfg, const InputGeometry& input);

  // Transfer: starts θ, ω and V from another run file of the same architecture and method
  // family (ConfigError naming the file and the mismatch otherwise).
  void init_from(const std::filesystem::path& run_file);

  // The search's trainer options from cfg: Adam (search.lr, search.weight_decay) at a constant
  // rate for search.steps steps, [dense] precision, a frozen backbone (run() sets BatchNorm), step
  // curves logged every search.log_every steps, and a checkpoint at `checkpoint` every
  // search.checkpoint_every_steps steps (empty path or 0: none), removed when the search ends.
  static train::TrainerOptions trainer_options(const config::Config& cfg, c10::Device device, std::string label,
                                               std::filesystem::path checkpoint);
  // options.max_steps steps on `train` (this rank's shard), resumed from options.checkpoint
  // when it holds an interrupted search. Throws TrainingDiverged on a non-finite loss.
  SearchCurves run(data::BatchSource& train, dist::Communicator& comm, const train::TrainerOptions& options);

  // Current per-group scores (undefined for groups the search does not prune) and the hard
  // masks they give, for every group of the network.
  prune::GroupScores scores();
  std::vector<at::Tensor> masks();
  // Global allocation of the current scores to the MAC budget.
  prune::Allocation allocate();

  VisualPrompt* prompt() { return prompt_.get(); }  // null for pass_no_prompt
  HyperNetwork& hyper() { return *hyper_; }
  // Writes /prompt/<param> (+ /prompt/image) and /hypernet/<param> into a run file.
  void save(io::Group& root) const;

 private:
  // The hypernetwork's output for a MAC target (fraction of dense). With budget projection the
  // cost shift is found from a first, gradient-free pass and corrected on the second, so the
  // masks meet the target exactly and depend only on the parameters (a resumed search repeats
  // them); with the penalty it is a plain forward.
  HyperOutput forward_at(double target_ratio);

  models::PrunableNetwork& net_;
  config::Config cfg_;
  InputGeometry input_;
  std::vector<bool> prunable_;
  std::shared_ptr<VisualPrompt> prompt_;
  std::shared_ptr<HyperNetwork> hyper_;
};

// Hash of a set of masks (bytes of their 0/1 values), equal on ranks with identical masks.
int64_t masks_hash(const std::vector<at::Tensor>& masks);

}  // namespace passlab::pass
