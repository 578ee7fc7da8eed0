// Every method of the registry (config/methods.hpp) run end to end through the prune task on
// the tiny fixture: a registered name that nothing implements fails here, not after a sweep's
// dense models trained. The files the real dense and prune tasks write are checked against the
// declared run-file schema (io/run_schema.hpp), which proves the writer follows it.
#include <gtest/gtest.h>

#include <algorithm>

#include "passlab/config/config.hpp"
#include "passlab/config/methods.hpp"
#include "passlab/dist/communicator.hpp"
#include "passlab/io/hdf5.hpp"
#include "passlab/io/run_schema.hpp"
#include "passlab/models/factory.hpp"
#include "passlab/pipeline/paths.hpp"
#include "passlab/pipeline/tasks.hpp"
#include "pass/fixture.hpp"
#include "support/test_util.hpp"

using namespace passlab;
namespace rf = passlab::io::run_file;

namespace {

// The fixture's config, shortened: one dense epoch, a 3-step search, one fine-tune epoch.
config::Config short_config(const std::filesystem::path& dir, const std::string& method) {
  auto c = test::tiny_config(dir, method);
  c.dense.epochs = 1;
  c.search.steps = 3;
  c.search.taylor_batches = 2;
  c.regularise.epochs = 1;
  c.finetune.epochs = 1;
  return c;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (auto& x : v) s += x + "\n";
  return s;
}

// The folder of the store and of the one dense model every test here prunes, made on first use.
const std::filesystem::path& trained() {
  static test::TempDir dir;
  static const bool ready = [] {
    test::write_store(dir.path() / "tiny.h5", 160, 40);
    auto comm = dist::make_communicator("mpi", test::runtime());
    pipeline::run_dense_task(short_config(dir.path(), "pass"), test::runtime(), *comm);
    return true;
  }();
  (void)ready;
  return dir.path();
}

}  // namespace

TEST(Methods, DenseFileFollowsTheSchema) {
  auto f = io::open_complete(pipeline::dense_path(short_config(trained(), "pass")));
  EXPECT_EQ(joined(rf::validate(f)), "");
}

TEST(Methods, EveryRegisteredMethodRunsEndToEnd) {
  auto comm = dist::make_communicator("mpi", test::runtime());
  auto net = models::make_model("resnet20", 4, 1, 16);
  const int64_t dense_macs = net->count().macs;
  for (auto& m : config::methods()) {
    SCOPED_TRACE(m.name);
    auto cfg = short_config(trained(), m.name);
    ASSERT_NO_THROW(pipeline::run_prune_task(cfg, test::runtime(), *comm));
    ASSERT_TRUE(std::filesystem::exists(pipeline::run_path(cfg)));
    io::File f = io::open_complete(pipeline::run_path(cfg));
    const auto& r = f.root();
    EXPECT_EQ(r.attr_string(rf::kMethod), m.name);
    // The keep plan meets the budget: MACs recounted from the kept indices on the dense structure.
    std::vector<int64_t> kept;
    for (auto& g : net->groups()) kept.push_back(static_cast<int64_t>(r.read<int64_t>(std::string(rf::kKeep) + "/" + g.name).size()));
    const double ratio = static_cast<double>(net->structure().count(kept).macs) / static_cast<double>(dense_macs);
    EXPECT_NEAR(ratio, cfg.prune.budget, cfg.prune.budget * cfg.prune.flops_tolerance + 1e-12);
    EXPECT_EQ(r.open_group(rf::kSummary).attr_int(rf::kBudgetMet), 1);
    // Uniform allocation keeps about the same fraction of every prunable group.
    if (m.allocation == config::MethodAllocation::uniform) {
      auto prunable = net->structure().prunable(cfg.prune.prune_residual);
      double lo = 1, hi = 0;
      for (size_t g = 0; g < kept.size(); ++g)
        if (prunable[g]) {
          const double frac = static_cast<double>(kept[g]) / static_cast<double>(net->groups()[g].width);
          lo = std::min(lo, frac);
          hi = std::max(hi, frac);
        }
      EXPECT_LT(hi - lo, 0.2);
    }
    // What the method's row says is in the file: a hypernetwork for PASS variants, a prompt
    // for those that keep it.
    EXPECT_EQ(r.has(rf::kHypernet), m.is_pass());
    EXPECT_EQ(r.has(rf::kPrompt), m.is_pass() && m.prompt);
    EXPECT_EQ(r.has(std::string(rf::kMetrics) + "/" + rf::kSearchCurves[0]), m.is_pass());
    // A regularisation phase (depgraph, growreg) took time, inside the search time; none elsewhere.
    const double reg_s = r.attr_double(rf::kRegulariseSeconds);
    EXPECT_EQ(reg_s > 0, m.regularisation != config::MethodRegularisation::none);
    EXPECT_LE(reg_s, r.attr_double(rf::kSearchSeconds));
    // Every item written is declared, every required item is present, every type is right.
    EXPECT_EQ(joined(rf::validate(f)), "");
  }
}

TEST(Methods, ValidatorRejectsDamagedCopiesOfARealRunFile) {
  auto cfg = short_config(trained(), "l1_global");
  auto comm = dist::make_communicator("mpi", test::runtime());
  if (!std::filesystem::exists(pipeline::run_path(cfg))) pipeline::run_prune_task(cfg, test::runtime(), *comm);
  auto damaged = [&](const char* name, auto edit) {
    auto copy = trained() / name;
    std::filesystem::copy_file(pipeline::run_path(cfg), copy, std::filesystem::copy_options::overwrite_existing);
    {
      io::File f = io::File::open(copy, io::Mode::read_write);
      edit(f.root());
    }
    return rf::validate(io::File::open(copy));
  };
  auto v = damaged("no_summary.h5", [](io::Group& r) { H5_CHECK(H5Ldelete(r.id(), rf::kSummary, H5P_DEFAULT)); });
  EXPECT_EQ(v, std::vector<std::string>{"/summary: missing (group required in complete prune file)"}) << joined(v);
  v = damaged("typed.h5", [](io::Group& r) { r.open_group(rf::kSummary).set_attr(rf::kMacs, 0.5); });
  EXPECT_EQ(v, std::vector<std::string>{"/summary@macs: float64 where the schema declares int64"}) << joined(v);
  v = damaged("extra.h5", [](io::Group& r) { r.open_group(rf::kKeep).create_group("nested").write("x", std::vector<int64_t>{1}); });
  EXPECT_EQ(v, std::vector<std::string>{"/keep/nested: undeclared group in a prune file"}) << joined(v);
  v = damaged("undeclared.h5", [](io::Group& r) { r.write("scratch", std::vector<double>{1.0}); });
  EXPECT_EQ(v, std::vector<std::string>{"/scratch: undeclared dataset in a prune file"}) << joined(v);
}
