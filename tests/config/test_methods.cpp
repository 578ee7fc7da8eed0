// The method registry: what the schema, the dispatch and the estimator read from it.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "passlab/config/config.hpp"
#include "passlab/config/methods.hpp"
#include "passlab/config/schema.hpp"
#include "passlab/core/error.hpp"

using namespace passlab;
using namespace passlab::config;

TEST(Methods, RegistryHoldsThePaperMethodsOnce) {
  // DESIGN.md §2: PASS, its three ablations and six baselines; the paper's own baselines DepGraph
  // and GrowReg (issue 23).
  const std::set<std::string> want = {"pass",      "pass_no_prompt",  "pass_no_recurrence", "pass_no_stats",
                                      "l1_uniform", "l1_global",       "l2_global",          "bn_scale_global",
                                      "taylor_global", "random_uniform", "depgraph", "growreg"};
  std::set<std::string> have;
  for (auto& m : methods()) EXPECT_TRUE(have.insert(m.name).second) << "registered twice: " << m.name;
  EXPECT_EQ(have, want);
  EXPECT_EQ(known_methods().size(), methods().size());
  for (size_t i = 0; i < methods().size(); ++i) EXPECT_EQ(known_methods()[i], methods()[i].name);
}

TEST(Methods, SchemaAllowsExactlyTheRegisteredNames) {
  EXPECT_EQ(find_field("prune", "method")->choices, known_methods());
  EXPECT_EQ(find_field("sweep", "methods")->choices, known_methods());
  EXPECT_THROW(load_string("[prune]\nmethod = \"l3_global\"\n", "m.toml"), ConfigError);
}

TEST(Methods, RowsDescribeTheirFamilies) {
  for (auto& m : methods()) {
    EXPECT_FALSE(m.doc.empty()) << m.name;
    EXPECT_EQ(m.doc.find('|'), std::string::npos) << m.name << ": a '|' would split its Markdown table row";
    if (m.is_pass()) {
      EXPECT_EQ(m.criterion, "hypernet") << m.name;
      EXPECT_EQ(m.allocation, MethodAllocation::global) << m.name;
      EXPECT_EQ(m.data, MethodData::search_steps) << m.name;
      // An ablation turns off at most one part; "pass" keeps all three.
      const int off = !m.prompt + !m.recurrence + !m.stats;
      EXPECT_EQ(off, m.name == "pass" ? 0 : 1) << m.name;
    } else {
      EXPECT_NE(m.criterion, "hypernet") << m.name;
      EXPECT_TRUE(m.prompt && m.recurrence && m.stats) << m.name;
      if (m.regularisation != MethodRegularisation::none) {
        // Named after their papers (depgraph, growreg): the group L2 criterion ranked globally.
        EXPECT_EQ(m.criterion, "group_l2") << m.name;
        EXPECT_EQ(m.allocation, MethodAllocation::global) << m.name;
        continue;
      }
      // The name's suffix says the allocation (l1_uniform, bn_scale_global, ...).
      const std::string suffix = m.allocation == MethodAllocation::global ? "_global" : "_uniform";
      EXPECT_TRUE(m.name.size() > suffix.size() && m.name.compare(m.name.size() - suffix.size(), suffix.size(), suffix) == 0)
          << m.name;
    }
  }
  EXPECT_FALSE(method_spec("pass_no_prompt").prompt);
  EXPECT_FALSE(method_spec("pass_no_recurrence").recurrence);
  EXPECT_FALSE(method_spec("pass_no_stats").stats);
  EXPECT_TRUE(method_spec("taylor_global").needs_data());
  EXPECT_FALSE(method_spec("l1_global").needs_data());
  EXPECT_EQ(method_spec("depgraph").regularisation, MethodRegularisation::group_norm);
  EXPECT_EQ(method_spec("growreg").regularisation, MethodRegularisation::growing);
}

TEST(Methods, SearchCostCountsTheBatchesTheMethodReads) {
  Config c;
  c.search.steps = 7;
  c.search.batch_size = 16;
  c.search.taylor_batches = 3;
  EXPECT_EQ(method_spec("pass").search_images(c), 7.0 * 16);
  EXPECT_EQ(method_spec("pass_no_stats").search_images(c), 7.0 * 16);
  EXPECT_EQ(method_spec("taylor_global").search_images(c), 3.0 * 16);
  EXPECT_EQ(method_spec("l1_uniform").search_images(c), 0.0);
  EXPECT_EQ(method_spec("random_uniform").search_images(c), 0.0);
  // The regularisation phase trains over the training split: epochs, counted by the estimate.
  c.regularise.epochs = 4;
  EXPECT_EQ(method_spec("depgraph").regularise_epochs(c), 4);
  EXPECT_EQ(method_spec("growreg").regularise_epochs(c), 4);
  EXPECT_EQ(method_spec("depgraph").search_images(c), 0.0);
  EXPECT_EQ(method_spec("l1_global").regularise_epochs(c), 0);
  EXPECT_EQ(method_spec("pass").regularise_epochs(c), 0);
}

TEST(Methods, UnknownNameIsAConfigErrorWithAHint) {
  EXPECT_EQ(find_method("l1_globl"), nullptr);
  try {
    method_spec("l1_globl");
    FAIL() << "no ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'l1_global'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("random_uniform"), std::string::npos) << e.what();
  }
}

TEST(Methods, ConfigDocsListEveryMethod) {
  const std::string md = schema_markdown();
  ASSERT_NE(md.find("## Methods"), std::string::npos);
  for (auto& m : methods()) EXPECT_NE(md.find("| `" + m.name + "` | " + to_string(m.family)), std::string::npos) << m.name;
}
