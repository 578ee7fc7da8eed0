// The static sweep runner: relaunching skips complete files and redoes nothing.
#include <gtest/gtest.h>

#include "pass/fixture.hpp"
#include "passlab/dist/communicator.hpp"
#include "passlab/pass/task.hpp"
#include "passlab/sweep/runner.hpp"
#include "support/test_util.hpp"

using namespace passlab;
using test::runtime;
using test::tiny_config;
namespace fs = std::filesystem;

TEST(SweepRunner, RelaunchSkipsCompleteFiles) {
  test::TempDir dir;
  test::write_store(dir.path() / "tiny.h5", 120, 40);
  auto cfg = tiny_config(dir.path(), "random_uniform");
  cfg.sweep.budgets = {0.5, 0.3};
  auto first = sweep::run_static(cfg, runtime());
  ASSERT_EQ(first.size(), 3u);  // one dense model, two prune tasks
  EXPECT_EQ(first[0].kind, "dense");
  for (auto& o : first) EXPECT_FALSE(o.skipped) << o.path;
  std::vector<fs::file_time_type> mtimes;
  for (auto& o : first) mtimes.push_back(fs::last_write_time(o.path));
  auto second = sweep::run_static(cfg, runtime());
  ASSERT_EQ(second.size(), 3u);
  for (size_t i = 0; i < second.size(); ++i) {
    EXPECT_TRUE(second[i].skipped) << second[i].path;
    EXPECT_EQ(fs::last_write_time(second[i].path), mtimes[i]) << second[i].path;
  }
  // A damaged run file is redone on the next launch; the others are untouched.
  fs::resize_file(first[2].path, fs::file_size(first[2].path) / 3);
  auto third = sweep::run_static(cfg, runtime());
  EXPECT_TRUE(third[1].skipped);
  EXPECT_FALSE(third[2].skipped);
  EXPECT_EQ(fs::last_write_time(third[1].path), mtimes[1]);
  auto table = sweep::summary_table(cfg.output.dir);
  EXPECT_NE(table.find("random_uniform"), std::string::npos) << table;
  EXPECT_NE(table.find("0.30"), std::string::npos) << table;
}
