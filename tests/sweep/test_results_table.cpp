// sweep::format_table, the table of `passlab inspect DIR`: columns stay aligned whatever the
// length of a method, architecture or dataset name.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "passlab/io/hdf5.hpp"
#include "passlab/io/result_file.hpp"
#include "passlab/io/run_schema.hpp"
#include "io/result_fixture.hpp"
#include "passlab/sweep/results.hpp"
#include "support/test_util.hpp"

using namespace passlab;

namespace {
sweep::Row row(const std::string& id, const std::string& method, double budget, double top1) {
  sweep::Row r;
  r.kind = method == "(dense)" ? "dense" : "prune";
  r.status = "complete";
  r.id = id;
  r.method = method;
  r.arch = "resnet20";
  r.dataset = "fashion_mnist";
  r.budget = budget;
  r.seed = 1;
  r.top1 = top1;
  r.macs = 9331808;
  r.mac_ratio = 0.3008;
  r.speedup = r.kind == "dense" ? -1 : 1.55;
  r.seconds = 199;
  return r;
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}
}  // namespace

TEST(SweepTable, LongNamesKeepTheColumnsAligned) {
  const std::vector<sweep::Row> rows = {row("83fabf8f27d0", "(dense)", 1.0, 0.9376),
                                        row("19e6d346f780", "pass_no_recurrence", 0.3, 0.928),
                                        row("747fdaf049b7", "l1_global", 0.3, 0.9272)};
  const auto lines = lines_of(sweep::format_table(rows));
  ASSERT_EQ(lines.size(), 4u);
  // Every field but the first five is right-aligned in a fixed width: aligned columns mean equal
  // line lengths and each header label ending where its values end.
  for (auto& l : lines) EXPECT_EQ(l.size(), lines[0].size()) << l;
  const auto end_of = [](const std::string& l, const std::string& word) { return l.find(word) + word.size(); };
  EXPECT_EQ(end_of(lines[0], "budget"), end_of(lines[2], "0.30"));
  EXPECT_EQ(end_of(lines[0], "budget"), end_of(lines[3], "0.30"));
  EXPECT_EQ(end_of(lines[0], "top1%"), end_of(lines[2], "92.80"));
  EXPECT_EQ(end_of(lines[0], "top1%"), end_of(lines[3], "92.72"));
  // The method column starts at the same place and the name is whole.
  EXPECT_EQ(lines[0].find("method"), lines[2].find("pass_no_recurrence"));
  EXPECT_EQ(lines[0].find("method"), lines[3].find("l1_global"));
}

TEST(SweepTable, UnreliableSpeedupIsMarkedAndExplained) {
  std::vector<sweep::Row> rows = {row("19e6d346f780", "l1_global", 0.5, 0.928), row("747fdaf049b7", "random_uniform", 0.5, 0.9272)};
  // Reliable rows: the plain number, no explanation.
  auto plain = lines_of(sweep::format_table(rows));
  ASSERT_EQ(plain.size(), 3u);
  EXPECT_EQ(plain[1].find("1.55?"), std::string::npos);
  EXPECT_NE(plain[1].find("1.55"), std::string::npos);
  // One unreliable row: its speed-up carries "?", the other's not, and a line after the table says why.
  rows[0].speedup = 0.69;
  rows[0].speedup_unreliable = true;
  const auto lines = lines_of(sweep::format_table(rows));
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_NE(lines[1].find(" 0.69? "), std::string::npos) << lines[1];
  EXPECT_EQ(lines[2].find('?'), std::string::npos) << lines[2];
  EXPECT_EQ(lines[1].size(), lines[0].size());  // the mark fits the column
  EXPECT_EQ(lines[3].rfind("? 1 speed-up unreliable", 0), 0u) << lines[3];
  EXPECT_NE(lines[3].find("eval.speedup_max_spread"), std::string::npos);
}

TEST(SweepTable, ReadRowTakesTheFlagFromTheRunFile) {
  namespace rf = io::run_file;
  test::TempDir dir;
  std::filesystem::create_directories(dir.path() / "runs");
  // A usable run file (the table shows the numbers of usable files only) with this speed-up.
  auto write = [&](const char* id, int64_t unreliable, bool with_flag) {
    const auto path = dir.path() / "runs" / (std::string(id) + ".h5");
    test::write_minimal(
        path, rf::Files::prune, rf::kComplete,
        [&](io::Group& root) {
          auto s = root.open_group(rf::kSummary);
          s.set_attr(rf::kSpeedup, 0.69);
          if (with_flag) s.set_attr(rf::kSpeedupUnreliable, unreliable);
        },
        [](io::AtomicWriter& w, const std::string& status) { rf::commit_result(w, status); });
    return path;
  };
  EXPECT_TRUE(sweep::read_row(write("flagged", 1, true), dir.path()).speedup_unreliable);
  EXPECT_FALSE(sweep::read_row(write("trusted", 0, true), dir.path()).speedup_unreliable);
  // A file written before the flag existed reads as not flagged.
  EXPECT_FALSE(sweep::read_row(write("older", 0, false), dir.path()).speedup_unreliable);
  const auto table = sweep::format_table(sweep::scan_rows(dir.path()));
  EXPECT_NE(table.find(" 0.69? "), std::string::npos) << table;
  EXPECT_NE(table.find("? 1 speed-up unreliable"), std::string::npos) << table;
}
