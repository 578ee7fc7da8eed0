#pragma once
// Train / validation / test views of a store. Validation is held out of the store's train split
// deterministically (portable RNG, stratified per class), so tuning (PASS search, early stopping)
// never reads test and the same store always gives the same validation set.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "passlab/data/store.hpp"

namespace passlab::config {
struct DataConfig;
}

namespace passlab::data {

enum class Split { train, val, test };
const char* to_string(Split s);

// A subset of one raw split of a store. Position i of the view is store row rows()[i] of
// raw_split(); loaders report view positions as Batch::indices.
class SplitView {
 public:
  SplitView() = default;
  SplitView(std::shared_ptr<const Store> store, std::string raw_split, std::vector<int64_t> rows, std::string name);
  const std::shared_ptr<const Store>& store() const { return store_; }
  const std::string& raw_split() const { return raw_split_; }
  const std::string& name() const { return name_; }
  int64_t size() const { return static_cast<int64_t>(rows_.size()); }
  int64_t row(int64_t i) const { return rows_.at(static_cast<size_t>(i)); }
  const std::vector<int64_t>& rows() const { return rows_; }
  int64_t label(int64_t i) const;

 private:
  std::shared_ptr<const Store> store_;
  std::string raw_split_, name_;
  std::vector<int64_t> rows_;
};

// Default seed of the validation hold-out: a property of the dataset, not of the experiment, so
// every run of a sweep tunes on the same images.
inline constexpr uint64_t kValSplitSeed = 0x5041535356414cULL;  // "PASSVAL"

struct SplitOptions {
  double val_fraction = 0.1;      // of the (limited) train split, per class, rounded
  int64_t limit_train = 0;        // 0: all; else the first N rows of the store's train split
  int64_t limit_test = 0;         // 0: all; else the first N rows of test
  uint64_t seed = kValSplitSeed;  // hold-out seed
};

struct Splits {
  SplitView train, val, test;
  const SplitView& get(Split s) const { return s == Split::train ? train : s == Split::val ? val : test; }
};

// Validation takes round(val_fraction * n_c) rows of every class c (at least 1 when
// val_fraction > 0 and the class has >= 2 rows), chosen by permutation(n_c, derive_seed(seed, c));
// train keeps the rest. Both views are sorted by row.
Splits make_splits(std::shared_ptr<const Store> store, const SplitOptions& opt = {});
// From [data]: opens config.resolved_store() (or `store_path` when given) and splits it.
Splits open_splits(const config::DataConfig& cfg, const std::string& store_path);

}  // namespace passlab::data
