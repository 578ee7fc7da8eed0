#include "passlab/io/run_schema.hpp"

#include <set>
#include <sstream>
#include <utility>

#include "passlab/io/hdf5.hpp"

namespace passlab::io::run_file {

// Names in the order of the enumerators.
const char* to_string(Item i) {
  static const char* const names[] = {"group", "dataset", "attribute"};
  return names[static_cast<int>(i)];
}
const char* to_string(Type t) {
  static const char* const names[] = {"-", "string", "int64", "float64", "uint8", "numeric"};
  return names[static_cast<int>(t)];
}
const char* to_string(Need n) {
  static const char* const names[] = {"always", "complete", "failed", "optional"};
  return names[static_cast<int>(n)];
}

std::string Entry::name() const { return attr.empty() ? path : path + "@" + attr; }

namespace {

std::string under(const char* group, const std::string& child = "") {
  return "/" + std::string(group) + (child.empty() ? "" : "/" + child);
}

struct Table {
  std::vector<Entry> out;
  Entry& add(Item item, std::string path, std::string attr, Type type, unsigned files, Need need, std::string doc,
             std::string when = "") {
    Entry e;
    e.path = std::move(path);
    e.attr = std::move(attr);
    e.item = item;
    e.type = type;
    e.files = files;
    e.need = need;
    e.when = std::move(when);
    e.doc = std::move(doc);
    out.push_back(std::move(e));
    return out.back();
  }
  void root_attr(std::string name, Type t, unsigned files, Need need, std::string doc, std::string when = "") {
    add(Item::attribute, "/", std::move(name), t, files, need, std::move(doc), std::move(when));
  }
  void summary(const char* name, Type t, unsigned files, std::string doc, Need need = Need::complete, std::string when = "") {
    add(Item::attribute, under(kSummary), name, t, files, need, std::move(doc), std::move(when));
  }
  void group(const char* name, unsigned files, Need need, std::string doc, std::string when = "") {
    add(Item::group, under(name), "", Type::none, files, need, std::move(doc), std::move(when));
  }
  // A dataset inside a group: required wherever its group is present, unless `need` says otherwise.
  void dataset(const char* group, const std::string& name, Type t, unsigned files, Need need, std::string doc,
               std::string when = "") {
    add(Item::dataset, under(group, name), "", t, files, need, std::move(doc), std::move(when));
  }
};

std::vector<Entry> make_entries() {
  Table t;
  const unsigned D = Files::dense, P = Files::prune, B = Files::both;
  // Root attributes.
  t.root_attr(kStatus, Type::string, B, Need::always,
              "complete (finished) or failed (see error). Set last, on commit; a file being written is <name>.tmp with "
              "status incomplete.");
  // What the file is and the task's axes: in every file, failed ones too.
  struct Identity {
    const char* name;
    Type type;
    unsigned files;
    const char* doc;
  };
  const Identity identity[] = {
      {kKind, Type::string, B, "dense or prune: which task wrote the file."},
      {kRunId, Type::string, P, "Run id: hash of the task's resolved config (run scope); the file's name."},
      {kDenseId, Type::string, B, "Id of the dense model (dense scope); the dense file's name, which a prune task starts from."},
      {kMethod, Type::string, P, "Pruning method: a name of the method registry (docs/config.md, Methods)."},
      {kArch, Type::string, B, "Architecture (model.arch)."},
      {kDataset, Type::string, B, "Dataset name (data.dataset)."},
      {kBudget, Type::float64, P, "Fraction of the dense MACs to keep (prune.budget)."},
      {kSeed, Type::int64, B, "Seed of the task (experiment.seed)."},
  };
  for (auto& a : identity) t.root_attr(a.name, a.type, a.files, Need::always, a.doc);
  // The keys of passlab::build_info() (buildinfo module), which differ between CPU and CUDA builds.
  const std::string version = kVersionPrefix;
  const std::pair<const char*, const char*> always_built[] = {{"passlab", "passlab's version."},
                                                             {"git", "Git commit of the passlab source that was built."},
                                                             {"libtorch", "LibTorch version."},
                                                             {"mpi", "MPI library version."},
                                                             {"hdf5", "HDF5 library version."}};
  for (auto& [key, doc] : always_built) t.root_attr(version + key, Type::string, B, Need::complete, doc);
  t.root_attr(version + "cuda", Type::string, B, Need::optional, "Says that CUDA was not built.", "a build without CUDA");
  const std::pair<const char*, const char*> cuda_built[] = {{"cuda runtime", "CUDA runtime version."},
                                                           {"cuda driver", "CUDA driver version, or none."},
                                                           {"nccl", "NCCL version."},
                                                           {"gpus", "Number of GPUs visible to the writing rank."}};
  for (auto& [key, doc] : cuda_built) t.root_attr(version + key, Type::string, B, Need::optional, doc, "a build with CUDA");
  // Where it ran:
  t.root_attr(kWorldSize, Type::int64, B, Need::complete, "MPI ranks of the job.");
  t.root_attr(kGroupSize, Type::int64, B, Need::complete, "Ranks of the run group that ran the task (data parallel).");
  t.root_attr(kBackend, Type::string, B, Need::complete, "Communicator backend of the group (nccl or mpi).");
  t.root_attr(kDevice, Type::string, B, Need::complete, "Device of the group's ranks (cpu, cuda:N).");
  // When and how long:
  t.root_attr(kFinishedAt, Type::string, B, Need::always, "UTC time the file was written (ISO 8601).");
  // Integrity (io/result_file.hpp: what makes a result usable).
  t.root_attr(kDigest, Type::string, B, Need::optional,
              "Content digest fnv1a64:<16 hex> of everything in the file but this attribute (the byte stream: "
              "include/passlab/io/digest.hpp, mirrored by analysis/integrity.py). Written on commit; a complete file "
              "without it, or whose content gives another value, is not usable.",
              "every file but those written before digests (passlab 431f8cf and older) and not sealed");
  t.root_attr(kSealedAt, Type::string, B, Need::optional,
              "UTC time passlab seal verified this file, written before digests, and added its digest.",
              "a file sealed after the fact");
  t.root_attr(kSeconds, Type::float64, B, Need::always, "Wall time of the task (of its last attempt when failed), seconds.");
  t.root_attr(kSearchSeconds, Type::float64, P, Need::complete,
              "Seconds to find the kept channels (search or baseline scores, regularisation phase included) and agree on them.");
  t.root_attr(kRegulariseSeconds, Type::float64, P, Need::optional,
              "Seconds of the regularisation phase of depgraph and growreg (part of search_seconds; 0 for other methods).",
              "every prune run file but those written before depgraph and growreg");
  t.root_attr(kFinetuneSeconds, Type::float64, P, Need::complete, "Seconds of fine-tuning.");
  // Why it failed (written by the sweep, sweep/results.cpp write_failure):
  t.root_attr(kError, Type::string, B, Need::failed, "Why the task failed (the exception's text).");
  t.root_attr(kAttempts, Type::int64, B, Need::failed, "Attempts made before the task was reported failed.");
  t.add(Item::dataset, under(kConfig), "", Type::string, B, Need::always,
        "The task's resolved config as canonical TOML (passlab config prints the same).");

  // /summary: the numbers of the tables.
  t.group(kSummary, B, Need::complete, "Test-set results and costs of the model the file holds.");
  t.summary(kTop1, Type::float64, B, "Test top-1 accuracy in [0, 1].");
  t.summary(kTop5, Type::float64, B, "Test top-5 accuracy in [0, 1].");
  t.summary(kValTop1, Type::float64, B, "Validation top-1 after the last epoch; -1 without a validation split.");
  t.summary(kMacs, Type::int64, B, "MACs per image of conv and linear layers (bias excluded).");
  t.summary(kParams, Type::int64, B, "Parameters.");
  t.summary(kOpsFull, Type::int64, B, "MACs plus bias, BatchNorm, activation and pooling operations per image.");
  t.summary(kTestLoss, Type::float64, P, "Test cross-entropy of the fine-tuned network.");
  t.summary(kDenseTop1, Type::float64, P, "Test top-1 of the dense model the run started from.");
  t.summary(kDenseMacs, Type::int64, P, "MACs per image of the dense model.");
  t.summary(kDenseParams, Type::int64, P, "Parameters of the dense model.");
  t.summary(kDenseOpsFull, Type::int64, P, "ops_full of the dense model.");
  t.summary(kMacRatio, Type::float64, P, "macs / dense_macs.");
  t.summary(kBudgetMet, Type::int64, P, "1 when mac_ratio is within prune.flops_tolerance of the budget, else 0.");
  t.summary(kLatencyDenseMs, Type::float64, P, "Median forward latency of the dense model over the speed-up rounds, ms per batch.");
  t.summary(kLatencyPrunedMs, Type::float64, P, "Median forward latency of the pruned model over the speed-up rounds, ms per batch.");
  t.summary(kSpeedup, Type::float64, P,
            "Median over interleaved rounds of the per-round ratio dense ms / pruned ms (not the ratio of the two medians).");
  // The speed-up's trust: written by every prune task since the interleaved measurement, optional
  // so that run files written before it still read and validate.
  const std::string since = "every prune run file but those written before the interleaved speed-up";
  t.summary(kSpeedupSpread, Type::float64, P, "(q75 - q25) / median of the per-round speed-up ratios.", Need::optional, since);
  t.summary(kSpeedupRounds, Type::int64, P, "Interleaved timing rounds (eval.latency_repeats).", Need::optional, since);
  t.summary(kSpeedupUnreliable, Type::int64, P, "1 when speedup_spread exceeds eval.speedup_max_spread, else 0.", Need::optional,
            since);
  t.summary(kLoad1minStart, Type::float64, P, "1-minute load average (/proc/loadavg) when the timing started; -1 if unreadable.",
            Need::optional, since);
  t.summary(kLoad1minEnd, Type::float64, P, "1-minute load average when the timing ended; -1 if unreadable.", Need::optional,
            since);
  t.summary(kCores, Type::int64, P, "Online cores of the machine that timed (to read the load against).", Need::optional, since);
  const std::string probed = "eval.probe_batches > 0 and a validation split (not in run files written before the probe)";
  t.summary(kProbeValTop1, Type::float64, P,
            "Structure probe: validation top-1 of the compact network right after slicing, before the fine-tune, with its "
            "BatchNorm statistics recalibrated on probe_batches training batches.",
            Need::optional, probed);
  t.summary(kProbeBatches, Type::int64, P, "Training batches per rank the probe recalibrated BatchNorm on.", Need::optional,
            probed);
  t.summary(kSpeedupForm, Type::string, P,
            "Form of both networks that was timed (eval.latency_form): folded (BatchNorm folded into the convs), "
            "folded_channels_last, or training (as built).",
            Need::optional, "every prune run file but those written before the folded inference form");
  t.summary(kLatencyBatch, Type::int64, P, "Batch size of the latency measurement (eval.latency_batch).");
  t.summary(kLatencyDevice, Type::string, P, "Device the latency was measured on.");

  // /metrics: curves, written only when they have values.
  t.group(kMetrics, B, Need::complete, "Training and search curves (float64, one value per epoch or step).");
  const std::pair<const char*, unsigned> stages[] = {{kDenseKind, D}, {"finetune", P}};
  for (auto& [stage, files] : stages)
    for (const char* suffix : kTrainingCurveSuffixes)
      t.dataset(kMetrics, std::string(stage) + suffix, Type::float64, files, Need::optional,
                std::string("Per epoch of the ") + stage + " stage: " + (suffix + 1) + ".",  // suffix without its '_'
                suffix == std::string("_val_top1") ? "the stage ran and has a validation split" : "the stage ran an epoch");
  for (const char* curve : kSearchCurves)
    t.dataset(kMetrics, curve, Type::float64, P, Need::optional,
              std::string("Per search step: ") + (curve + std::string("search_").size()) + " (loss: the task loss, cross-entropy or its mix with distillation, plus lambda times the budget term; target_ratio: the annealed MAC target).",
              "PASS methods");

  // The model and the pruning decision.
  t.group(kWeights, D, Need::complete, "The dense model's parameters and buffers.");
  t.group(kWeights, P, Need::optional, "The compact model's parameters and buffers.", "output.save_weights = true");
  t.dataset(kWeights, "*", Type::numeric, B, Need::complete,
            "One tensor per parameter or buffer, named as the model's state dict (e.g. layer1.0.conv1.weight).");
  t.group(kMasks, P, Need::complete, "Kept channels as masks over the dense widths.");
  t.dataset(kMasks, "*", Type::uint8, P, Need::complete,
            "One per channel group, named as the group: 1 where the channel is kept; length = dense width.");
  t.group(kKeep, P, Need::complete, "Kept channels as indices (the keep plan).");
  t.dataset(kKeep, "*", Type::int64, P, Need::complete, "One per channel group: sorted indices of the kept channels.");
  t.group(kPrompt, P, Need::optional, "The learned visual prompt.", "PASS variants with a prompt, search.prompt = \"pad\"");
  t.dataset(kPrompt, kPromptImage, Type::numeric, P, Need::complete, "The prompt as an image [C, H, W] (zero inside the border).");
  t.dataset(kPrompt, "*", Type::numeric, P, Need::complete, "Learnable border parameters (top, bottom, left, right).");
  t.group(kHypernet, P, Need::optional, "The trained hypernetwork and prompt encoder (search.init_from reads it).",
          "PASS methods");
  t.dataset(kHypernet, "*", Type::numeric, P, Need::complete, "One tensor per parameter, named as the module's parameter.");
  // The input normalisation (the transfer regime): a later model.pretrained import follows it
  // under data.normalize = "source".
  t.group(kNormalization, B, Need::optional, "The normalisation of the model's input, one value per model input channel.",
          "every file but those written before the transfer regime");
  t.dataset(kNormalization, kNormMean, Type::float64, B, Need::complete, "Mean subtracted from each input channel (pixels in [0, 1]).");
  t.dataset(kNormalization, kNormStd, Type::float64, B, Need::complete, "Standard deviation each input channel is divided by.");
  t.dataset(kNormalization, kNormalize, Type::string, B, Need::complete,
            "data.normalize: where mean and std came from (dataset, source or imagenet).");
  return std::move(t.out);
}

// ---- validation -------------------------------------------------------------------------------

std::vector<std::string> split_path(const std::string& p) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : p) {
    if (c == '/') {
      if (!cur.empty()) parts.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) parts.push_back(cur);
  return parts;
}

bool path_matches(const std::string& pattern, const std::string& path) {
  auto a = split_path(pattern), b = split_path(path);
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] != "*" && a[i] != b[i]) return false;
  return true;
}

std::string parent_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
}

// The stored type in the schema's words ("string", "int64", "float32", ...).
std::string type_name(hid_t type) {
  const H5T_class_t cls = H5_CHECK(H5Tget_class(type));  // H5T_NO_CLASS (-1) on failure
  const size_t size = H5Tget_size(type);                  // 0 on failure
  PASSLAB_CHECK(size > 0, IOError, "H5Tget_size failed on an object of a result file");
  if (cls == H5T_STRING) return "string";
  if (cls == H5T_INTEGER)
    return std::string(H5_CHECK(H5Tget_sign(type)) == H5T_SGN_NONE ? "uint" : "int") + std::to_string(8 * size);
  if (cls == H5T_FLOAT) return "float" + std::to_string(8 * size);
  return "HDF5 type class " + std::to_string(static_cast<int>(cls));
}

bool type_fits(Type want, const std::string& have) {
  switch (want) {
    case Type::none: return true;
    case Type::string: return have == "string";
    case Type::int64: return have == "int64";
    case Type::float64: return have == "float64";
    case Type::uint8: return have == "uint8";
    case Type::numeric:
      return have == "uint8" || have == "int32" || have == "int64" || have == "float32" || have == "float64";
  }
  return false;
}

std::vector<std::string> attr_names(hid_t obj) {
  std::vector<std::string> names;
  auto cb = [](hid_t, const char* n, const H5A_info_t*, void* data) -> herr_t {
    static_cast<std::vector<std::string>*>(data)->emplace_back(n);
    return 0;
  };
  H5_CHECK(H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, nullptr, cb, &names));
  return names;
}

class Validator {
 public:
  Validator(unsigned kind, const std::string& status) : kind_(kind), status_(status) {}

  // One group or dataset at `path` and its attributes (the root is the file itself: no entry).
  void object(hid_t obj, const std::string& path, Item item, hid_t type) {
    visited_.insert(path);
    if (path != "/") check(path, "", item, type);
    for (auto& a : attr_names(obj)) {
      AttrId attr(H5_CHECK(H5Aopen(obj, a.c_str(), H5P_DEFAULT)));
      TypeId t(H5_CHECK(H5Aget_type(attr.get())));
      SpaceId space(H5_CHECK(H5Aget_space(attr.get())));
      const Entry* e = check(path, a, Item::attribute, t.get());
      if (e && H5_CHECK(H5Sget_simple_extent_type(space.get())) != H5S_SCALAR)
        problems_.push_back(e->name() + ": an array where the schema declares a scalar");
    }
  }

  // A group and, when it is declared, everything below it.
  void group(const Group& g, const std::string& path) {
    object(g.id(), path, Item::group, H5I_INVALID_HID);
    const std::string base = path == "/" ? "" : path;
    for (auto& name : g.children()) {
      const std::string child = base + "/" + name;
      if (g.is_group(name)) {
        if (declared(child, "", Item::group)) group(g.open_group(name), child);
        else check(child, "", Item::group, H5I_INVALID_HID);
        continue;
      }
      Dataset d = g.open_dataset(name);
      TypeId t(H5_CHECK(H5Dget_type(d.id())));
      object(d.id(), child, Item::dataset, t.get());
    }
  }

  std::vector<std::string> finish() {
    for (size_t i = 0; i < entries().size(); ++i) {
      const Entry& e = entries()[i];
      if (!(e.files & kind_) || matched_.count(i) || !required(e.need)) continue;
      // An entry inside an absent group is reported through its group (or not at all when the
      // group is optional and absent).
      const std::string container = e.attr.empty() ? parent_of(e.path) : e.path;
      if (container.find('*') == std::string::npos && !visited_.count(container)) continue;
      problems_.push_back(e.name() + ": missing (" + to_string(e.item) + " required in " +
                          (e.need == Need::always ? std::string("every") : std::string(to_string(e.need))) + " " +
                          (kind_ == Files::dense ? kDenseKind : kPruneKind) + " file)");
    }
    return std::move(problems_);
  }

 private:
  bool required(Need n) const {
    return n == Need::always || (n == Need::complete && status_ == kComplete) || (n == Need::failed && status_ == kFailed);
  }

  // The entry declaring (path, attr) in this kind of file: an exact one before a wildcard one.
  const Entry* declared(const std::string& path, const std::string& attr, Item item, size_t* index = nullptr) const {
    const Entry* best = nullptr;
    for (size_t i = 0; i < entries().size(); ++i) {
      const Entry& e = entries()[i];
      if (!(e.files & kind_) || e.item != item || e.attr != attr || !path_matches(e.path, path)) continue;
      const bool exact = e.path == path;
      if (!best || exact) {
        best = &e;
        if (index) *index = i;
        if (exact) break;
      }
    }
    return best;
  }

  const Entry* check(const std::string& path, const std::string& attr, Item item, hid_t type) {
    size_t index = 0;
    const Entry* e = declared(path, attr, item, &index);
    const std::string name = attr.empty() ? path : path + "@" + attr;
    if (!e) {
      problems_.push_back(name + ": undeclared " + to_string(item) + " in a " +
                          (kind_ == Files::dense ? kDenseKind : kPruneKind) + " file");
      return nullptr;
    }
    matched_.insert(index);  // every match of a wildcard entry marks the same index
    if (type >= 0) {
      const std::string have = type_name(type);
      if (!type_fits(e->type, have))
        problems_.push_back(name + ": " + have + " where the schema declares " + to_string(e->type));
    }
    return e;
  }

  unsigned kind_;
  std::string status_;
  std::set<std::string> visited_;
  std::set<size_t> matched_;
  std::vector<std::string> problems_;
};

}  // namespace

const std::vector<Entry>& entries() {
  static const std::vector<Entry> e = make_entries();
  return e;
}

std::vector<std::string> validate(const File& f) {
  const Group& root = f.root();
  auto root_string = [&](const char* name, std::string* out) {
    if (!root.has_attr(name)) return std::string("/@") + name + ": missing";
    try {
      *out = root.attr_string(name);
    } catch (const IOError&) {
      return std::string("/@") + name + ": not a string";
    }
    return std::string();
  };
  std::string status, kind;
  for (auto [name, out] : {std::pair{kStatus, &status}, std::pair{kKind, &kind}})
    if (auto problem = root_string(name, out); !problem.empty()) return {problem + " (not a passlab result file)"};
  if (status != kComplete && status != kFailed) return {"/@status: '" + status + "', not complete or failed"};
  if (kind != kDenseKind && kind != kPruneKind) return {"/@kind: '" + kind + "', not dense or prune"};
  Validator v(kind == kDenseKind ? Files::dense : Files::prune, status);
  v.group(root, "/");
  return v.finish();
}

std::string markdown() {
  std::ostringstream o;
  o << "# passlab result-file reference\n\n"
    << "Generated from the schema in `src/io/run_schema.cpp` by `passlab inspect --schema`; a test keeps this file\n"
    << "equal to that output, and `passlab inspect --schema-json` writes the same table (with the method registry)\n"
    << "to `docs/run-file.json`, which `analysis/runs.py` reads. `passlab inspect --check` validates result files\n"
    << "against it: a missing required entry, a wrong type and an undeclared group, dataset or attribute are errors.\n\n"
    << "A sweep writes one HDF5 file per task: `<output.dir>/dense/<dense_id>.h5` (kind *dense*) and\n"
    << "`<output.dir>/runs/<run_id>.h5` (kind *prune*). A task that fails leaves a file with status *failed* that\n"
    << "holds only the entries marked *always* or *failed*. `*` in a path stands for any one name. An entry inside\n"
    << "a group is required only where its group is present. Attributes are scalars.\n\n";
  std::string section;
  for (auto& e : entries()) {
    auto parts = split_path(e.path);
    const std::string top = parts.empty() || (parts.size() == 1 && e.item != Item::group && e.attr.empty()) ? "/"
                                                                                                            : "/" + parts[0];
    if (top != section) {
      section = top;
      o << (section == "/" ? std::string("## Root\n\n") : "\n## " + section + "\n\n")
        << "| entry | item | type | files | required | meaning |\n|---|---|---|---|---|---|\n";
    }
    std::string files = e.files == Files::both ? "dense, prune" : e.files == Files::dense ? kDenseKind : kPruneKind;
    std::string need = e.need == Need::optional ? "when " + e.when : std::string(to_string(e.need));
    o << "| `" << e.name() << "` | " << to_string(e.item) << " | " << to_string(e.type) << " | " << files << " | " << need
      << " | " << e.doc << " |\n";
  }
  return o.str();
}

}  // namespace passlab::io::run_file
