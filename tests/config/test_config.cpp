#include <gtest/gtest.h>
#include <cstdio>

#include "passlab/config/config.hpp"
#include "passlab/config/schema.hpp"
#include "passlab/core/error.hpp"
#include "passlab/core/files.hpp"
#include "support/test_util.hpp"

using namespace passlab;
using namespace passlab::config;

namespace {
// The message of the ConfigError raised by loading `text` (fails the test if none is raised).
std::string error_of(const std::string& text, const std::vector<std::string>& sets = {}) {
  try {
    load_string(text, "exp.toml", sets);
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ConfigError for:\n" << text;
  return "";
}
#define EXPECT_HAS(msg, part) EXPECT_NE((msg).find(part), std::string::npos) << "message: " << (msg) << "\nmissing: " << (part)
}  // namespace

TEST(ConfigDefaults, EmptyFileGivesDefaults) {
  Config c = load_string("", "empty.toml");
  EXPECT_EQ(c.model.arch, "resnet20");
  EXPECT_DOUBLE_EQ(c.dense.lr, 0.1);
  EXPECT_EQ(c.finetune.epochs, 3);
  EXPECT_DOUBLE_EQ(c.finetune.lr, 0.01);
  EXPECT_EQ(c.dist.backend, "auto");
  EXPECT_EQ(c.resolved_store(), "data/fashion_mnist.h5");
}

TEST(ConfigDefaults, ValuesAreRead) {
  Config c = load_string(R"(
[model]
arch = "vgg16_bn"
[dense]
lr = 0.05
epochs = 7
milestones = [3, 5]
schedule = "step"
[sweep]
budgets = [0.5, 0.3]
methods = ["pass", "l1_global"]
include = [{ arch = "vgg16_bn", budget = 0.5 }]
[finetune]
keep_prompt = true
)", "x.toml");
  EXPECT_EQ(c.model.arch, "vgg16_bn");
  EXPECT_DOUBLE_EQ(c.dense.lr, 0.05);
  EXPECT_EQ(c.dense.epochs, 7);
  EXPECT_EQ(c.dense.milestones, (std::vector<int64_t>{3, 5}));
  EXPECT_EQ(c.sweep.budgets, (std::vector<double>{0.5, 0.3}));
  ASSERT_EQ(c.sweep.include.size(), 1u);
  EXPECT_EQ(*c.sweep.include[0].arch, "vgg16_bn");
  EXPECT_TRUE(c.finetune.keep_prompt);
}

// ---- ten-plus distinct bad configs; each message names file:line, key path, value, allowed ----

TEST(ConfigErrors, UnknownKeyWithSuggestion) {
  auto m = error_of("[dense]\nepochs = 3\nlearning_rate = 0.1\n");
  EXPECT_HAS(m, "exp.toml:3:1");
  EXPECT_HAS(m, "unknown key 'dense.learning_rate'");
  EXPECT_HAS(m, "Allowed keys in [dense]:");
  EXPECT_HAS(m, "lr");
}

TEST(ConfigErrors, NearMissKeySuggestsIt) {
  auto m = error_of("[search]\ntemprature = 2.0\n");
  EXPECT_HAS(m, "exp.toml:2:1");
  EXPECT_HAS(m, "did you mean 'search.temperature'?");
}

TEST(ConfigErrors, UnknownSectionWithSuggestion) {
  auto m = error_of("[finetuning]\nepochs = 3\n");
  EXPECT_HAS(m, "exp.toml:1:1");
  EXPECT_HAS(m, "unknown section [finetuning]");
  EXPECT_HAS(m, "did you mean [finetune]?");
}

TEST(ConfigErrors, WrongTypeStringForInteger) {
  auto m = error_of("[dense]\nepochs = \"ten\"\n");
  EXPECT_HAS(m, "exp.toml:2:10");
  EXPECT_HAS(m, "dense.epochs = \"ten\"");
  EXPECT_HAS(m, "wrong type (string)");
  EXPECT_HAS(m, "allowed: integer >= 0");
}

TEST(ConfigErrors, FloatWhereIntegerRequired) {
  auto m = error_of("[search]\nsteps = 2.5\n");
  EXPECT_HAS(m, "search.steps = 2.5");
  EXPECT_HAS(m, "wrong type (float)");
  EXPECT_HAS(m, "integer");
}

TEST(ConfigErrors, OutOfRangeNegativeLearningRate) {
  auto m = error_of("[dense]\n\nlr = -0.1\n");
  EXPECT_HAS(m, "exp.toml:3:6");
  EXPECT_HAS(m, "dense.lr = -0.1 is out of range");
  EXPECT_HAS(m, "allowed: float > 0.0");
}

TEST(ConfigErrors, BudgetAboveOne) {
  auto m = error_of("[prune]\nbudget = 1.5\n");
  EXPECT_HAS(m, "prune.budget = 1.5 is out of range");
  EXPECT_HAS(m, "> 0.0 and <= 1.0");
}

TEST(ConfigErrors, EnumWithSuggestion) {
  auto m = error_of("[model]\narch = \"resnet19\"\n");
  EXPECT_HAS(m, "exp.toml:2:8");
  EXPECT_HAS(m, "model.arch = \"resnet19\" is not allowed");
  EXPECT_HAS(m, "one of \"resnet18\"");
  EXPECT_HAS(m, "did you mean \"resnet18\"?");
}

TEST(ConfigErrors, ListElementOutOfRange) {
  auto m = error_of("[sweep]\nbudgets = [0.5, 0.0]\n");
  EXPECT_HAS(m, "sweep.budgets = 0.0 is out of range");
  EXPECT_HAS(m, "each > 0.0 and <= 1.0");
}

TEST(ConfigErrors, ListElementWrongType) {
  auto m = error_of("[sweep]\nmethods = [\"pass\", 3]\n");
  EXPECT_HAS(m, "sweep.methods");
  EXPECT_HAS(m, "wrong type (integer element)");
}

TEST(ConfigErrors, UnknownMethodInList) {
  auto m = error_of("[sweep]\nmethods = [\"pass\", \"l1_globl\"]\n");
  EXPECT_HAS(m, "sweep.methods = \"l1_globl\" is not allowed");
  EXPECT_HAS(m, "did you mean \"l1_global\"?");
}

TEST(ConfigErrors, SectionThatIsNotATable) {
  auto m = error_of("dense = 3\n");
  EXPECT_HAS(m, "'dense' must be a table");
}

TEST(ConfigErrors, StepScheduleWithoutMilestones) {
  auto m = error_of("[finetune]\nschedule = \"step\"\n");
  EXPECT_HAS(m, "exp.toml:2:12");
  EXPECT_HAS(m, "finetune.schedule = \"step\" needs finetune.milestones");
}

TEST(ConfigErrors, FirstBucketLargerThanBucket) {
  auto m = error_of("[dist]\nbucket_mib = 4.0\nfirst_bucket_mib = 8\n");
  EXPECT_HAS(m, "exp.toml:3:");
  EXPECT_HAS(m, "dist.first_bucket_mib = 8.0 must not exceed dist.bucket_mib = 4.0");
}

TEST(ConfigErrors, WarmupCapBelowWarmupFloor) {
  auto m = error_of("[eval]\nlatency_warmup = 5\nlatency_warmup_max = 2\n");
  EXPECT_HAS(m, "eval.latency_warmup_max = 2 must not be below eval.latency_warmup = 5");
}

TEST(ConfigErrors, BatchNotWholeGhostGroups) {
  auto m = error_of("[model]\nghost_batch = 32\n[dense]\nbatch_size = 48\n");
  EXPECT_HAS(m, "exp.toml:4:");
  EXPECT_HAS(m, "dense.batch_size = 48 is not a multiple of model.ghost_batch = 32");
  m = error_of("[model]\nghost_batch = 16\n[search]\nbatch_size = 40\n");
  EXPECT_HAS(m, "search.batch_size = 40 is not a multiple of model.ghost_batch = 16");
  m = error_of("[model]\nghost_batch = 16\n[finetune]\nbatch_size = 32\n[dist]\nranks_per_run = 3\n");
  EXPECT_HAS(m, "finetune.batch_size = 32 holds 2 BatchNorm group(s) of model.ghost_batch = 16, fewer than dist.ranks_per_run = 3");
  // A batch smaller than the ghost batch is one group.
  EXPECT_NO_THROW(load_string("[model]\nghost_batch = 32\n[dense]\nbatch_size = 20\n[finetune]\nbatch_size = 64\n", "ok.toml"));
}

TEST(ConfigIdentity, GhostBatchChangesDenseAndRunIds) {
  // It changes every trained number, so it is part of what identifies a dense model and a run.
  const Config a = load_string("", "a.toml"), b = load_string("[model]\nghost_batch = 16\n", "b.toml");
  EXPECT_NE(dense_id(a), dense_id(b));
  EXPECT_NE(run_id(a), run_id(b));
}

TEST(ConfigIdentity, SpeedupMeasurementKeysKeepTheRunId) {
  // Tuning how the speed-up is measured does not change the network a run trains.
  auto a = config::load_string("", "a.toml");
  auto b = config::load_string("[eval]\nlatency_warmup_max = 7\nlatency_warmup_tolerance = 0.3\nspeedup_max_spread = 0.5\n", "b.toml");
  EXPECT_EQ(config::run_id(a), config::run_id(b));
  EXPECT_NE(config::run_id(a), config::run_id(config::load_string("[eval]\nlatency_repeats = 11\n", "c.toml")));
}

TEST(ConfigErrors, BadFilterKey) {
  auto m = error_of("[sweep]\nexclude = [{ archh = \"vgg16_bn\" }]\n");
  EXPECT_HAS(m, "sweep.exclude: unknown filter key 'archh'; did you mean 'arch'?");
}

TEST(ConfigErrors, DuplicateSweepValue) {
  auto m = error_of("[sweep]\nseeds = [0, 1, 0]\n");
  EXPECT_HAS(m, "sweep.seeds lists the same value twice");
}

TEST(ConfigErrors, BadDatasetName) {
  auto m = error_of("[data]\ndataset = \"../etc\"\n");
  EXPECT_HAS(m, "data.dataset = \"../etc\" is not allowed");
}

TEST(ConfigErrors, TomlSyntaxErrorHasLineAndColumn) {
  auto m = error_of("[dense]\nlr = = 3\n");
  EXPECT_HAS(m, "exp.toml:2:");
  EXPECT_HAS(m, "TOML syntax error");
}

TEST(ConfigErrors, MissingFileNamesIt) {
  try {
    load_file("/nonexistent/dir/x.toml");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_HAS(std::string(e.what()), "/nonexistent/dir/x.toml: cannot open config file");
  }
}

TEST(ConfigErrors, DirectoryIsNotAConfigFile) {
  test::TempDir dir;
  try {
    load_file(dir.path());
    FAIL() << "a directory loaded as a config";
  } catch (const ConfigError& e) {
    EXPECT_HAS(std::string(e.what()), dir.path().string() + ": not a config file (a directory)");
  }
}

TEST(ConfigErrors, EveryFloatKeyRefusesInfAndNan) {
  // inf slipped past every open upper bound (learning rates, weight decay, temperature, lambda,
  // bucket sizes, timeouts); each float key, scalar or list, must name the value as not finite.
  int checked = 0;
  for (auto& f : fields()) {
    if (f.kind != Kind::real && f.kind != Kind::real_list) continue;
    for (std::string v : {"inf", "-inf", "nan"}) {
      std::string toml = "[" + f.section + "]\n" + f.key + " = " + (f.kind == Kind::real ? v : "[" + v + "]") + "\n";
      auto m = error_of(toml);
      EXPECT_HAS(m, f.path() + " = ");
      EXPECT_HAS(m, "is not finite");
    }
    ++checked;
  }
  EXPECT_GE(checked, 20);  // dense/finetune/search/dist/prune floats and sweep.budgets
  std::printf("[ cases    ] %d float keys x {inf, -inf, nan}: %d refused as not finite\n", checked, 3 * checked);  // README
}

TEST(ConfigErrors, EveryCountHasAnUpperBound) {
  // 2^63-1 epochs ran forever at lr 0; no integer key but the seeds (labels, not counts) takes it.
  int checked = 0;
  for (auto& f : fields()) {
    if (f.kind != Kind::integer && f.kind != Kind::int_list) continue;
    const bool seed = f.key == "seed" || f.key == "seeds";
    const std::string big = f.kind == Kind::integer ? "9223372036854775807" : "[9223372036854775807]";
    const std::string toml = "[" + f.section + "]\n" + f.key + " = " + big + "\n";
    if (seed) {
      EXPECT_NO_THROW(load_string(toml, "exp.toml")) << f.path();
      continue;
    }
    EXPECT_TRUE(f.max.has_value()) << f.path();
    EXPECT_HAS(error_of(toml), f.path() + " = 9223372036854775807 is out of range");
    ++checked;
  }
  std::printf("[ cases    ] %d integer keys = 2^63-1: %d refused as out of range\n", checked, checked);  // README
}

TEST(ConfigErrors, BoundsAreTheDocumentedOnes) {
  // The maxima a cluster user may reach are accepted; one past them is not.
  EXPECT_EQ(load_string("[dense]\nepochs = 100000\n", "x").dense.epochs, 100000);
  EXPECT_HAS(error_of("[dense]\nepochs = 100001\n"), "dense.epochs = 100001 is out of range; allowed: integer >= 0 and <= 100000");
  EXPECT_EQ(load_string("[search]\nbatch_size = 1048576\n", "x").search.batch_size, 1048576);
  EXPECT_HAS(error_of("[search]\nbatch_size = 1048577\n"), "search.batch_size = 1048577 is out of range");
  EXPECT_HAS(error_of("[search]\nsteps = 100000001\n"), "search.steps = 100000001 is out of range");
  EXPECT_DOUBLE_EQ(load_string("[dist]\ntimeout_s = 604800\n", "x").dist.timeout_s, 604800);
  EXPECT_HAS(error_of("[dist]\ntimeout_s = 604801\n"), "dist.timeout_s = 604801 is out of range");
  EXPECT_HAS(error_of("[dense]\nlr = inf\n"), "exp.toml:2:6: dense.lr = inf is not finite");
}

TEST(ConfigErrors, EmptyOutputDir) {
  EXPECT_HAS(error_of("[output]\ndir = \"\"\n"), "output.dir = \"\" is not allowed");
  EXPECT_HAS(error_of("", {"output.dir=\"\""}), "output.dir = \"\" is not allowed");
}

// ---- overrides ----------------------------------------------------------------------------

TEST(ConfigOverrides, SetReplacesAndAddsValues) {
  Config c = load_string("[dense]\nlr = 0.1\n", "o.toml",
                         {"dense.lr=0.02", "model.arch=vgg11_bn", "sweep.seeds=[1, 2]", "finetune.keep_prompt=true",
                          "data.dataset=\"cifar10\""});
  EXPECT_DOUBLE_EQ(c.dense.lr, 0.02);
  EXPECT_EQ(c.model.arch, "vgg11_bn");  // bare word taken as a string
  EXPECT_EQ(c.sweep.seeds, (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(c.finetune.keep_prompt);
  EXPECT_EQ(c.data.dataset, "cifar10");
}

TEST(ConfigOverrides, LaterOverrideWins) {
  Config c = load_string("", "o.toml", {"dense.epochs=3", "dense.epochs=5"});
  EXPECT_EQ(c.dense.epochs, 5);
}

TEST(ConfigOverrides, BadOverrideNamesTheOption) {
  auto m = error_of("", {"dense.lr=-1"});
  EXPECT_HAS(m, "--set dense.lr=-1: dense.lr = -1 is out of range");
  m = error_of("", {"dense.lrate=0.1"});
  EXPECT_HAS(m, "--set dense.lrate=0.1: unknown key 'dense.lrate'; did you mean 'dense.lr'?");
  m = error_of("", {"nolevel=3"});
  EXPECT_HAS(m, "key must be section.key");
  m = error_of("", {"dense.lr"});
  EXPECT_HAS(m, "expected section.key=value");
}

TEST(ConfigOverrides, SetTakesExactlyOneAssignment) {
  // A newline used to end the value and start a second key that was silently dropped.
  auto m = error_of("", {"dense.lr=0.05\ndense.epochs=7"});
  EXPECT_HAS(m, "--set dense.lr=0.05\ndense.epochs=7: the value spans more than one line");
  m = error_of("", {"data.root=a\r\nb"});
  EXPECT_HAS(m, "--set data.root=a");
  EXPECT_HAS(m, "more than one line");
  // A comment after the value is still one assignment.
  EXPECT_DOUBLE_EQ(load_string("", "o.toml", {"dense.lr=0.05 # faster"}).dense.lr, 0.05);
}

// ---- canonical form and ids --------------------------------------------------------------------

TEST(ConfigIds, KeyOrderAndFormattingDoNotChangeId) {
  Config a = load_string("[dense]\nlr = 0.1\nepochs = 4\n[model]\narch = \"resnet56\"\n", "a.toml");
  Config b = load_string("# comment\n[model]\n  arch   =   'resnet56'\n\n[dense]\nepochs=4\nlr=1e-1\n", "b.toml");
  EXPECT_EQ(to_toml(a), to_toml(b));
  EXPECT_EQ(run_id(a), run_id(b));
  EXPECT_EQ(dense_id(a), dense_id(b));
  EXPECT_EQ(run_id(a).size(), 12u);
}

TEST(ConfigIds, DefaultsWrittenOutEqualDefaultsOmitted) {
  Config a = load_string("", "a.toml");
  Config b = load_string("[dense]\nlr = 0.1\n[prune]\nbudget = 0.5\n", "b.toml");
  EXPECT_EQ(run_id(a), run_id(b));
}

TEST(ConfigIds, EveryIdentityKeyChangesRunIdAndOnlyThose) {
  // For every schema key, perturb its value and check the ids move exactly as documented.
  Config base;
  const std::string base_run = run_id(base), base_dense = dense_id(base);
  int checked = 0;
  for (const auto& f : fields()) {
    Config c = base;
    Value v = f.get(c);
    bool changed = std::visit(
        [&](auto& x) -> bool {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, bool>) x = !x;
          else if constexpr (std::is_same_v<T, int64_t>) x = x + 1;
          else if constexpr (std::is_same_v<T, double>) x = x * 0.5 + 0.001;
          else if constexpr (std::is_same_v<T, std::string>) {
            if (!f.choices.empty()) {
              for (auto& ch : f.choices)
                if (ch != x) {
                  x = ch;
                  return true;
                }
              return false;
            }
            x = x + "x";
          } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) x.push_back(1);
          else if constexpr (std::is_same_v<T, std::vector<double>>) x.push_back(0.25);
          else if constexpr (std::is_same_v<T, std::vector<std::string>>) x.push_back(f.choices.empty() ? "y" : f.choices[0]);
          else x.push_back(SweepFilter{});
          return true;
        },
        v);
    ASSERT_TRUE(changed) << f.path();
    f.set(c, v);
    EXPECT_EQ(run_id(c) != base_run, f.in_run) << f.path();
    EXPECT_EQ(dense_id(c) != base_dense, f.in_dense) << f.path();
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(fields().size()));
  EXPECT_GT(checked, 60);
}

TEST(ConfigIds, CanonicalTomlRoundTrips) {
  Config a = load_string(R"(
[experiment]
description = "quote \" and \\ and \n newline"
[sweep]
budgets = [0.5, 0.3, 0.15]
exclude = [{ method = "l1_global", budget = 0.15, seed = 1 }]
[dense]
lr = 3e-4
)", "a.toml");
  std::string canon = to_toml(a);
  Config b = load_string(canon, "canon.toml");
  EXPECT_EQ(to_toml(b), canon);
  EXPECT_EQ(b.experiment.description, a.experiment.description);
  EXPECT_EQ(b.sweep.exclude, a.sweep.exclude);
  EXPECT_NE(canon.find("lr = 0.0003\n"), std::string::npos) << canon;
}

TEST(ConfigIds, RunScopeExcludesOutputDistSweep) {
  std::string t = to_toml(Config{}, Scope::run);
  EXPECT_EQ(t.find("[output]"), std::string::npos);
  EXPECT_EQ(t.find("[dist]"), std::string::npos);
  EXPECT_EQ(t.find("[sweep]"), std::string::npos);
  EXPECT_NE(t.find("[prune]"), std::string::npos);
  std::string d = to_toml(Config{}, Scope::dense);
  EXPECT_EQ(d.find("[prune]"), std::string::npos);
  EXPECT_NE(d.find("[dense]"), std::string::npos);
  EXPECT_NE(d.find("seed = 0"), std::string::npos);
}

// ---- sweep expansion --------------------------------------------------------------------------

TEST(ConfigSweep, ProductWithFilters) {
  Config c = load_string(R"(
[sweep]
archs = ["resnet20", "resnet56"]
budgets = [0.5, 0.3]
methods = ["pass", "l1_global", "random_uniform"]
seeds = [0, 1]
exclude = [{ method = "random_uniform", budget = 0.3 }]
)", "s.toml");
  auto tasks = expand_tasks(c);
  EXPECT_EQ(tasks.size(), 2u * 2 * 3 * 2 - 2 * 2);  // 24 minus (2 archs x 2 seeds) excluded
  std::set<std::string> ids, dense;
  for (auto& t : tasks) {
    ids.insert(run_id(t));
    dense.insert(dense_id(t));
    EXPECT_TRUE(t.sweep.archs.empty());
    EXPECT_FALSE(t.prune.method == "random_uniform" && t.prune.budget == 0.3);
  }
  EXPECT_EQ(ids.size(), tasks.size());
  EXPECT_EQ(dense.size(), 4u);  // one dense model per (arch, seed)
  SweepFilter only56;
  only56.arch = "resnet56";
  only56.budget = 0.5;
  c.sweep.include = {only56};
  tasks = expand_tasks(c);
  EXPECT_EQ(tasks.size(), 3u * 2);
  for (auto& t : tasks) EXPECT_EQ(t.model.arch, "resnet56");
}

TEST(ConfigSweep, EmptyAxesUseBaseValues) {
  Config c = load_string("[model]\narch = \"vgg11_bn\"\n[prune]\nmethod = \"l2_global\"\nbudget = 0.4\n", "s.toml");
  auto tasks = expand_tasks(c);
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].model.arch, "vgg11_bn");
  EXPECT_EQ(tasks[0].prune.method, "l2_global");
  EXPECT_EQ(run_id(tasks[0]), run_id(c));
}

// ---- docs ---------------------------------------------------------------------------------------

TEST(ConfigDocs, DocsFileMatchesSchema) {
  auto path = test::source_dir() / "docs" / "config.md";
  std::string committed = test::read_text(path);
  EXPECT_EQ(committed, schema_markdown()) << "docs/config.md is stale: regenerate with `passlab config --schema > docs/config.md`";
}

TEST(ConfigDocs, EveryKeyDocumented) {
  for (auto& f : fields()) EXPECT_FALSE(f.doc.empty()) << f.path();
  std::string md = schema_markdown();
  for (auto& f : fields()) EXPECT_NE(md.find("| `" + f.key + "` |"), std::string::npos) << f.path();
}

TEST(ConfigFiles, ShippedExperimentsLoad) {
  // Every TOML under experiments/ must load (catches drift between configs and schema).
  int n = 0;
  for_each_file(test::source_dir() / "experiments", [&](const std::filesystem::path& p) {
    if (p.extension() != ".toml") return;
    EXPECT_NO_THROW(load_file(p)) << p;
    ++n;
  });
  EXPECT_GE(n, 1);
}

// The transfer regime's keys (dense.mode, dense.head_epochs, data.normalize) came after ids were
// in use: at their defaults the ids are those passlab db59118 computed (`passlab config` on an
// empty file), so earlier dense and run files keep their names; set, they enter the ids.
TEST(ConfigIds, TransferKeysEnterTheIdsOnlyWhenSet) {
  const Config base;
  EXPECT_EQ(run_id(base), "50b0987ffe0c");
  EXPECT_EQ(dense_id(base), "d1b92d8a3927");
  EXPECT_EQ(to_toml(base, Scope::dense).find("normalize"), std::string::npos);
  EXPECT_NE(to_toml(base, Scope::all).find("normalize = \"dataset\""), std::string::npos);  // still in the file's config
  const Config head = load_string("[model]\npretrained = \"src.h5\"\n[dense]\nmode = \"head\"\n", "h.toml");
  const Config full = load_string("[model]\npretrained = \"src.h5\"\n", "f.toml");
  EXPECT_NE(dense_id(head), dense_id(full));
  EXPECT_NE(run_id(head), run_id(full));
  EXPECT_NE(to_toml(head, Scope::dense).find("mode = \"head\""), std::string::npos);
}

TEST(ConfigErrors, TransferKeysNeedASourceModel) {
  EXPECT_HAS(error_of("[dense]\nmode = \"head\"\n"), "set model.pretrained");
  EXPECT_HAS(error_of("[data]\nnormalize = \"source\"\n"), "set model.pretrained");
  EXPECT_HAS(error_of("[model]\npretrained = \"s.h5\"\n[dense]\nmode = \"head_then_full\"\n"), "dense.head_epochs >= 1");
  EXPECT_HAS(error_of("[model]\npretrained = \"s.h5\"\n[dense]\nmode = \"head\"\nhead_epochs = 2\n"),
             "applies only to dense.mode = \"head_then_full\"");
  EXPECT_HAS(error_of("[dense]\nmode = \"linear\"\n"), "\"head_then_full\"");
}
