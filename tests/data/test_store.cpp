// Store reader validation and the train/val/test split views.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include "data_fixtures.hpp"
#include "passlab/config/config.hpp"
#include "passlab/core/error.hpp"
#include "passlab/data/prepare.hpp"
#include "passlab/data/split.hpp"
#include "passlab/data/store.hpp"
#include "passlab/io/digest.hpp"
#include "support/test_util.hpp"

namespace fs = std::filesystem;
using namespace passlab;
using namespace passlab::data;
using passlab::test::TempDir;
using namespace passlab::test;

namespace {
fs::path good_store(const TempDir& t, const std::string& name, int64_t n_train = 40) {
  write_idx_dataset(t / ("raw_" + name), n_train, 10, 3, 3, false);
  prepare("mnist", t / ("raw_" + name), t / (name + ".h5"), {});
  return t / (name + ".h5");
}

template <class Err>
void expect_open_fails(const fs::path& p, const std::string& needle) {
  try {
    Store::open(p);
    ADD_FAILURE() << "opened " << p << "; expected: " << needle;
  } catch (const Err& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_NE(msg.find(p.filename().string()), std::string::npos) << "message does not name the file: " << msg;
  }
}
}  // namespace

TEST(StoreReader, RefusesDamagedStores) {
  TempDir t;
  {
    auto p = good_store(t, "missing");
    io::File f = io::File::open(p, io::Mode::read_write);
    H5_CHECK(H5Ldelete(f.root().id(), "test/labels", H5P_DEFAULT));
    f.close();
    expect_open_fails<DataError>(p, "missing dataset /test/labels");
  }
  {
    auto p = good_store(t, "range");
    io::File f = io::File::open(p, io::Mode::read_write);
    int64_t bad = 10;
    f.root().open_dataset("train/labels").write_rows<int64_t>(5, 1, &bad);
    f.close();
    expect_open_fails<DataError>(p, "/train/labels[5] = 10 is outside [0, 10)");
  }
  {
    auto p = good_store(t, "dtype");
    io::File f = io::File::open(p, io::Mode::read_write);
    H5_CHECK(H5Ldelete(f.root().id(), "train/labels", H5P_DEFAULT));
    f.root().write<int32_t>("train/labels", std::vector<int32_t>(40, 1));
    f.close();
    expect_open_fails<DataError>(p, "/train/labels holds int32, expected int64");
  }
  {
    auto p = good_store(t, "shape");
    io::File f = io::File::open(p, io::Mode::read_write);
    H5_CHECK(H5Ldelete(f.root().id(), "test/labels", H5P_DEFAULT));
    f.root().write<int64_t>("test/labels", std::vector<int64_t>(9, 1));
    f.close();
    expect_open_fails<DataError>(p, "/test/labels has shape [9] for 10 images");
  }
  {
    auto p = good_store(t, "imgshape");
    io::File f = io::File::open(p, io::Mode::read_write);
    H5_CHECK(H5Ldelete(f.root().id(), "test/images", H5P_DEFAULT));
    std::vector<uint8_t> px(10 * 3 * 4, 0);
    f.root().write<uint8_t>("test/images", px.data(), io::Shape{10, 3, 4, 1});
    f.close();
    expect_open_fails<DataError>(p, "/test/images has shape [10,3,4,1], expected [N,3,3,1]");
  }
  {
    auto p = good_store(t, "incomplete");
    io::File f = io::File::open(p, io::Mode::read_write);
    f.root().set_attr("status", std::string("incomplete"));
    f.close();
    expect_open_fails<IOError>(p, "status 'incomplete'");
  }
  {
    auto p = good_store(t, "classes");
    io::File f = io::File::open(p, io::Mode::read_write);
    H5_CHECK(H5Adelete(f.root().id(), "classes"));
    f.close();
    expect_open_fails<DataError>(p, "missing attribute 'classes'");
  }
  expect_open_fails<IOError>(t / "absent.h5", "no such file");
  test::write_text(t / "text.h5", "not hdf5");
  expect_open_fails<IOError>(t / "text.h5", "not an HDF5 file");
}

TEST(Splits, ValidationHeldOutDeterministicallyAndStratified) {
  TempDir t;
  auto store = Store::open(good_store(t, "s", 200));  // labels i % 10: 20 per class
  SplitOptions o;
  o.val_fraction = 0.1;
  Splits a = make_splits(store, o), b = make_splits(store, o);
  EXPECT_EQ(a.val.rows(), b.val.rows());
  EXPECT_EQ(a.val.size(), 20);
  EXPECT_EQ(a.train.size(), 180);
  EXPECT_EQ(a.test.size(), 10);
  // Disjoint, together all of train, sorted, two per class in val.
  std::set<int64_t> all(a.train.rows().begin(), a.train.rows().end());
  for (int64_t r : a.val.rows()) EXPECT_TRUE(all.insert(r).second) << r;
  EXPECT_EQ(all.size(), 200u);
  EXPECT_TRUE(std::is_sorted(a.val.rows().begin(), a.val.rows().end()));
  std::vector<int> per_class(10, 0);
  for (int64_t i = 0; i < a.val.size(); ++i) ++per_class[static_cast<size_t>(a.val.label(i))];
  for (int c : per_class) EXPECT_EQ(c, 2);
  EXPECT_EQ(a.val.raw_split(), "train");
  // A different hold-out seed picks different rows; no validation when the fraction is 0.
  o.seed = 7;
  EXPECT_NE(make_splits(store, o).val.rows(), a.val.rows());
  o.val_fraction = 0;
  EXPECT_EQ(make_splits(store, o).val.size(), 0);
  EXPECT_EQ(make_splits(store, o).train.size(), 200);
}

TEST(Splits, LimitsAndConfig) {
  TempDir t;
  auto path = good_store(t, "l", 100);
  config::DataConfig cfg;
  cfg.val_fraction = 0.2;
  cfg.limit_train = 50;
  cfg.limit_test = 4;
  Splits s = open_splits(cfg, path.string());
  EXPECT_EQ(s.train.size() + s.val.size(), 50);
  EXPECT_EQ(s.val.size(), 10);
  EXPECT_EQ(s.test.size(), 4);
  EXPECT_LT(*std::max_element(s.train.rows().begin(), s.train.rows().end()), 50);
}

TEST(StoreReader, BadStatisticsAndChangedImagesArePreciseStoreErrors) {
  TempDir t;
  {
    // mean = [nan]: a store error naming the statistic, not a diverged loss later on.
    auto p = good_store(t, "mean");
    io::File f = io::File::open(p, io::Mode::read_write);
    set_double_array_attr(f.root(), "mean", {NAN});
    f.close();
    expect_open_fails<DataError>(p, "mean nan is not in [0, 1]");
  }
  {
    auto p = good_store(t, "std");
    io::File f = io::File::open(p, io::Mode::read_write);
    set_double_array_attr(f.root(), "std", {INFINITY});
    f.close();
    expect_open_fails<DataError>(p, "std inf is not in (0, 1]");
  }
  {
    // Images overwritten after prepare: the content digest no longer matches.
    auto p = good_store(t, "images");
    EXPECT_TRUE(check_store(p).empty());
    io::File f = io::File::open(p, io::Mode::read_write);
    std::vector<uint8_t> px(2 * 3 * 3, 200);
    f.root().open_dataset("train/images").write_rows<uint8_t>(3, 2, px.data());
    f.close();
    expect_open_fails<DataError>(p, "content digest mismatch");
    auto problems = check_store(p);
    ASSERT_EQ(problems.size(), 1u);
    EXPECT_NE(problems[0].find("content digest mismatch"), std::string::npos) << problems[0];
  }
  {
    // A store written before digests (its checksum only): the checksum catches the change.
    auto p = good_store(t, "legacy");
    io::File f = io::File::open(p, io::Mode::read_write);
    H5_CHECK(H5Adelete(f.root().id(), io::kDigestAttr));
    f.close();
    EXPECT_TRUE(check_store(p).empty());
    EXPECT_NO_THROW(Store::open(p));
    io::File g = io::File::open(p, io::Mode::read_write);
    std::vector<uint8_t> px(3 * 3, 17);
    g.root().open_dataset("test/images").write_rows<uint8_t>(0, 1, px.data());
    g.close();
    expect_open_fails<DataError>(p, "checksum mismatch");
    EXPECT_FALSE(check_store(p).empty());
  }
}
