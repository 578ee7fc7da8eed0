// The sweep's time-left estimate: seconds per estimated MAC learned per class of task, the most
// specific class seen, values computed by hand.
#include <gtest/gtest.h>

#include "passlab/sweep/eta.hpp"

using namespace passlab;

namespace {
sweep::Task task(sweep::Task::Kind kind, const std::string& method, double budget, double cost) {
  sweep::Task t;
  t.kind = kind;
  t.cfg.prune.method = method;
  t.cfg.prune.budget = budget;
  t.cost = cost;
  return t;
}
}  // namespace

TEST(EtaModel, NothingBeforeTheFirstTaskFinishes) {
  sweep::EtaModel eta;
  auto d = task(sweep::Task::Kind::dense, "", 1.0, 10);
  EXPECT_FALSE(eta.seconds_left({&d}, 1).has_value());
}

TEST(EtaModel, RatesPerClassMostSpecificFirst) {
  using K = sweep::Task::Kind;
  sweep::EtaModel eta;
  eta.observe(task(K::dense, "", 1.0, 10), 100);    // dense: 10 s per unit
  eta.observe(task(K::prune, "pass", 0.5, 2), 50);  // prune: 25 s per unit, at every level
  auto dense = task(K::dense, "", 1.0, 20);         // dense rate: 200 s
  auto same = task(K::prune, "pass", 0.5, 4);       // (prune, pass, 0.5): 100 s
  auto other_method = task(K::prune, "l1_global", 0.5, 2);  // (prune, 0.5): 50 s
  auto other_budget = task(K::prune, "pass", 0.15, 1);      // prune: 25 s
  std::vector<const sweep::Task*> left{&dense, &same, &other_method, &other_budget};
  EXPECT_DOUBLE_EQ(*eta.seconds_left(left, 1), 375.0);
  EXPECT_DOUBLE_EQ(*eta.seconds_left(left, 2), 187.5);

  // A slower method at the same budget changes only its own class and the shared ones:
  // (prune, l1_global, 0.5) 40 s/unit; (prune, 0.5) (50 + 80) / 4 = 32.5; prune likewise.
  eta.observe(task(K::prune, "l1_global", 0.5, 2), 80);
  EXPECT_DOUBLE_EQ(*eta.seconds_left({&same}, 1), 100.0);
  EXPECT_DOUBLE_EQ(*eta.seconds_left({&other_method}, 1), 80.0);
  EXPECT_DOUBLE_EQ(*eta.seconds_left({&other_budget}, 1), 32.5);
  EXPECT_DOUBLE_EQ(*eta.seconds_left({&dense}, 1), 200.0);
}
