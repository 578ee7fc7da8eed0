#pragma once
// The declared layout of passlab's result files, in the manner of the config schema: one entry
// per group, dataset and attribute of a dense file (<results>/dense/<dense_id>.h5) and a run file
// (<results>/runs/<run_id>.h5), with its type, which kind of file holds it, when it is required
// and what it means. The names below are the only spelling of the layout: the writer and the
// readers use them, validate_run_file() checks a file against the table, and docs/run-file.md
// and docs/run-file.json (which analysis/runs.py reads) are generated from it. Checkpoints and
// sweep.h5 are not result files and are not described here.
#include <string>
#include <vector>

#include "passlab/io/digest.hpp"

namespace passlab::io {

class File;

namespace run_file {

// Root attributes.
inline constexpr char kStatus[] = "status";  // set last by io::AtomicWriter
inline constexpr char kKind[] = "kind";
inline constexpr char kRunId[] = "run_id";
inline constexpr char kDenseId[] = "dense_id";
inline constexpr char kMethod[] = "method";
inline constexpr char kArch[] = "arch";
inline constexpr char kDataset[] = "dataset";
inline constexpr char kBudget[] = "budget";
inline constexpr char kSeed[] = "seed";
inline constexpr char kWorldSize[] = "world_size";
inline constexpr char kGroupSize[] = "group_size";
inline constexpr char kBackend[] = "backend";
inline constexpr char kDevice[] = "device";
inline constexpr char kFinishedAt[] = "finished_at";
inline constexpr char kSeconds[] = "seconds";
inline constexpr char kSearchSeconds[] = "search_seconds";
inline constexpr char kRegulariseSeconds[] = "regularise_seconds";
inline constexpr char kFinetuneSeconds[] = "finetune_seconds";
inline constexpr char kError[] = "error";
inline constexpr char kAttempts[] = "attempts";
inline constexpr char kVersionPrefix[] = "version_";  // + a key of passlab::build_info()
inline constexpr const char* kDigest = kDigestAttr;  // io/digest.hpp
inline constexpr char kSealedAt[] = "sealed_at";

// Values of `kind` and `status`.
inline constexpr char kDenseKind[] = "dense";
inline constexpr char kPruneKind[] = "prune";
inline constexpr char kComplete[] = "complete";
inline constexpr char kFailed[] = "failed";

// Children of the root.
inline constexpr char kConfig[] = "config";  // string dataset
inline constexpr char kSummary[] = "summary";
inline constexpr char kMetrics[] = "metrics";
inline constexpr char kWeights[] = "weights";
inline constexpr char kMasks[] = "masks";
inline constexpr char kKeep[] = "keep";
inline constexpr char kPrompt[] = "prompt";
inline constexpr char kPromptImage[] = "image";  // /prompt/image
inline constexpr char kHypernet[] = "hypernet";
// The input the model was trained and evaluated with (the transfer regime, docs/transfer.md).
inline constexpr char kNormalization[] = "normalization";
inline constexpr char kNormMean[] = "mean";  // /normalization/mean
inline constexpr char kNormStd[] = "std";    // /normalization/std
inline constexpr char kNormalize[] = "normalize";  // /normalization/normalize (string)

// Attributes of /summary.
inline constexpr char kTop1[] = "top1";
inline constexpr char kTop5[] = "top5";
inline constexpr char kValTop1[] = "val_top1";
inline constexpr char kTestLoss[] = "test_loss";
inline constexpr char kDenseTop1[] = "dense_top1";
inline constexpr char kMacs[] = "macs";
inline constexpr char kParams[] = "params";
inline constexpr char kOpsFull[] = "ops_full";
inline constexpr char kDenseMacs[] = "dense_macs";
inline constexpr char kDenseParams[] = "dense_params";
inline constexpr char kDenseOpsFull[] = "dense_ops_full";
inline constexpr char kMacRatio[] = "mac_ratio";
inline constexpr char kBudgetMet[] = "budget_met";
inline constexpr char kLatencyDenseMs[] = "latency_dense_ms";
inline constexpr char kLatencyPrunedMs[] = "latency_pruned_ms";
inline constexpr char kSpeedup[] = "speedup";
inline constexpr char kLatencyBatch[] = "latency_batch";
inline constexpr char kLatencyDevice[] = "latency_device";
inline constexpr char kSpeedupSpread[] = "speedup_spread";
inline constexpr char kSpeedupRounds[] = "speedup_rounds";
inline constexpr char kSpeedupUnreliable[] = "speedup_unreliable";
inline constexpr char kLoad1minStart[] = "load_1min_start";
inline constexpr char kLoad1minEnd[] = "load_1min_end";
inline constexpr char kCores[] = "cores";
inline constexpr char kProbeValTop1[] = "probe_val_top1";
inline constexpr char kProbeBatches[] = "probe_batches";
inline constexpr char kSpeedupForm[] = "speedup_form";

// Curves under /metrics: training curves are <stage>_<suffix> (stage "dense" in dense files,
// "finetune" in run files), one value per epoch; search curves one value per search step.
inline constexpr char kTrainLossSuffix[] = "_train_loss";
inline constexpr const char* kTrainingCurveSuffixes[] = {kTrainLossSuffix, "_train_top1", "_lr", "_val_top1",
                                                         "_epoch_seconds"};
inline constexpr const char* kSearchCurves[] = {"search_loss", "search_ce", "search_budget_term", "search_mac_ratio",
                                                "search_target_ratio"};

enum class Item { group, dataset, attribute };
enum class Type { none, string, int64, float64, uint8, numeric };  // numeric: any stored tensor dtype
enum Files : unsigned { dense = 1u, prune = 2u, both = 3u };
// When an entry must be present: in every result file, only in complete ones, only in failed
// ones (written by the sweep when a task fails), or only under a condition (`when`).
enum class Need { always, complete, failed, optional };

const char* to_string(Item i);
const char* to_string(Type t);
const char* to_string(Need n);

struct Entry {
  std::string path;  // object path: "/", "/summary", "/masks/*" ('*' stands for any one name)
  std::string attr;  // attribute name; empty for the object at `path` itself
  Item item = Item::attribute;
  Type type = Type::none;
  unsigned files = both;
  Need need = Need::complete;
  std::string when;  // for optional entries: when the writer writes it
  std::string doc;
  std::string name() const;  // "/summary", "/summary@top1", "/@status"
};

const std::vector<Entry>& entries();

// Every problem of a dense or run file against the table: a missing required entry, a wrong
// type, an undeclared group, dataset or attribute. Empty: the file follows the schema. Files
// whose status is neither complete nor failed, or whose kind is unknown, give one problem.
std::vector<std::string> validate(const File& f);

// docs/run-file.md (a test keeps the file equal to it). docs/run-file.json is written from
// entries() by `passlab inspect --schema-json`.
std::string markdown();

}  // namespace run_file
}  // namespace passlab::io
