// sweep::format_table, the table of `passlab inspect DIR`: columns stay aligned whatever the
// length of a method, architecture or dataset name.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "passlab/sweep/results.hpp"

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
