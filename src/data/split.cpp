#include "passlab/data/split.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include "passlab/config/config.hpp"
#include "passlab/core/check.hpp"
#include "passlab/core/error.hpp"
#include "passlab/core/rng.hpp"

namespace passlab::data {

const char* to_string(Split s) {
  switch (s) {
    case Split::train: return "train";
    case Split::val: return "val";
    case Split::test: return "test";
  }
  return "?";
}

SplitView::SplitView(std::shared_ptr<const Store> store, std::string raw_split, std::vector<int64_t> rows, std::string name)
    : store_(std::move(store)), raw_split_(std::move(raw_split)), name_(std::move(name)), rows_(std::move(rows)) {}

int64_t SplitView::label(int64_t i) const { return store_->labels(raw_split_)[static_cast<size_t>(row(i))]; }

Splits make_splits(std::shared_ptr<const Store> store, const SplitOptions& opt) {
  PASSLAB_CHECK(opt.val_fraction >= 0.0 && opt.val_fraction < 1.0, ConfigError,
                "val_fraction " + std::to_string(opt.val_fraction) + " is outside [0, 1)");
  const auto& labels = store->labels("train");
  int64_t ntrain = static_cast<int64_t>(labels.size());
  if (opt.limit_train > 0) ntrain = std::min(ntrain, opt.limit_train);
  int64_t ntest = store->rows("test");
  if (opt.limit_test > 0) ntest = std::min(ntest, opt.limit_test);

  // Rows of each class, in row order.
  std::map<int64_t, std::vector<int64_t>> by_class;
  for (int64_t r = 0; r < ntrain; ++r) by_class[labels[static_cast<size_t>(r)]].push_back(r);
  std::vector<char> is_val(static_cast<size_t>(ntrain), 0);
  if (opt.val_fraction > 0.0) {
    for (auto& [cls, rows] : by_class) {
      const auto n = static_cast<int64_t>(rows.size());
      int64_t k = std::llround(opt.val_fraction * static_cast<double>(n));
      if (k == 0 && n >= 2) k = 1;
      k = std::min(k, n - 1);  // every class keeps at least one training image
      const auto perm = permutation(n, derive_seed(opt.seed, static_cast<uint64_t>(cls)));
      for (int64_t i = 0; i < k; ++i) is_val[static_cast<size_t>(rows[static_cast<size_t>(perm[static_cast<size_t>(i)])])] = 1;
    }
  }
  std::vector<int64_t> train, val, test(static_cast<size_t>(ntest));
  for (int64_t r = 0; r < ntrain; ++r) (is_val[static_cast<size_t>(r)] ? val : train).push_back(r);
  for (int64_t r = 0; r < ntest; ++r) test[static_cast<size_t>(r)] = r;
  Splits s;
  s.train = SplitView(store, "train", std::move(train), "train");
  s.val = SplitView(store, "train", std::move(val), "val");
  s.test = SplitView(store, "test", std::move(test), "test");
  return s;
}

Splits open_splits(const config::DataConfig& cfg, const std::string& store_path) {
  SplitOptions o;
  o.val_fraction = cfg.val_fraction;
  o.limit_train = cfg.limit_train;
  o.limit_test = cfg.limit_test;
  return make_splits(Store::open(store_path), o);
}

}  // namespace passlab::data
