// The HDF5 loader: exact values, augmentation invariants, determinism for any thread count,
// sharding, resume, shutdown mid-epoch.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <filesystem>
#include <set>

#include "data_fixtures.hpp"
#include "passlab/config/config.hpp"
#include "passlab/core/error.hpp"
#include "passlab/core/rng.hpp"
#include "passlab/data/augment.hpp"
#include "passlab/data/loader.hpp"
#include "passlab/data/prepare.hpp"
#include "passlab/data/store.hpp"
#include "support/test_util.hpp"

namespace fs = std::filesystem;
using namespace passlab;
using namespace passlab::data;
using passlab::test::TempDir;
using namespace passlab::test;

namespace {
constexpr int64_t kN = 37, kS = 8, kC = 3;

// A store of kN known 8x8x3 images, labels i % 4, written with StoreWriter.
fs::path make_store(const TempDir& t) {
  StoreWriter::Meta m;
  m.format = "test";
  m.source = "test";
  m.classes = {"a", "b", "c", "d"};
  m.height = m.width = kS;
  m.channels = kC;
  StoreWriter w(t / "s.h5", m);
  for (auto [name, n, first] : {std::tuple{"train", kN, int64_t{0}}, std::tuple{"test", int64_t{5}, int64_t{500}}}) {
    w.begin_split(name, n);
    std::vector<int64_t> labels;
    for (int64_t i = 0; i < n; ++i) labels.push_back((first + i) % 4);
    w.write(n, known_images(n, kS, kS, kC, first).data(), labels.data());
  }
  w.commit();
  return t / "s.h5";
}

SplitView whole_train(const fs::path& p) {
  SplitOptions o;
  o.val_fraction = 0;
  return make_splits(Store::open(p), o).train;
}

std::vector<Batch> epoch(Loader& l, int64_t e, int64_t start = 0) {
  l.start_epoch(e, start);
  std::vector<Batch> out;
  while (auto b = l.next()) out.push_back(*b);
  return out;
}

void expect_same(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(at::equal(a[i].images, b[i].images)) << "batch " << i;
    EXPECT_TRUE(at::equal(a[i].labels, b[i].labels)) << "batch " << i;
    EXPECT_TRUE(at::equal(a[i].indices, b[i].indices)) << "batch " << i;
  }
}
}  // namespace

TEST(Loader, EvalBatchesHoldExactNormalisedPixels) {
  TempDir t;
  auto view = whole_train(make_store(t));
  const auto& info = view.store()->info();
  LoaderOptions o;
  o.batch_size = 5;
  o.shuffle = false;
  o.threads = 2;
  Loader l(view, o);
  EXPECT_EQ(l.batches_per_epoch(), 8);
  EXPECT_EQ(l.samples_per_epoch(), kN);
  EXPECT_EQ(l.dataset_size(), kN);
  auto batches = epoch(l, 0);
  ASSERT_EQ(batches.size(), 8u);
  EXPECT_EQ(batches.back().images.size(0), 2);
  int64_t next = 0;
  for (auto& b : batches) {
    ASSERT_EQ(b.images.dim(), 4);
    EXPECT_EQ(b.images.size(1), kC);
    auto img = b.images.accessor<float, 4>();
    for (int64_t k = 0; k < b.images.size(0); ++k, ++next) {
      EXPECT_EQ(b.indices[k].item<int64_t>(), next);
      EXPECT_EQ(b.labels[k].item<int64_t>(), next % 4);
      for (int64_t c = 0; c < kC; ++c)
        for (int64_t y = 0; y < kS; ++y)
          for (int64_t x = 0; x < kS; ++x) {
            const double want = (known_pixel(next, y, x, c) / 255.0 - info.mean[c]) / info.std[c];
            ASSERT_NEAR(img[k][c][y][x], want, 1e-5);
          }
    }
  }
  EXPECT_EQ(next, kN);
}

// A gray image normalised per output channel (ImageNet statistics on a replicated gray store):
// channel c is (v/255 - mean_c)/std_c of the one gray value.
TEST(Transform, GrayReplicatedWithPerChannelStatistics) {
  TransformSpec s;
  s.in_h = s.in_w = 4;
  s.in_c = 1;
  s.out_c = 3;
  s.mean = {0.1, 0.5, 0.9};
  s.std = {0.2, 0.3, 0.4};
  finalize(s);
  const auto img = known_images(1, 4, 4, 1);
  std::vector<float> out(3 * 16);
  passlab::Rng rng(1);
  transform_sample(s, img.data(), rng, out.data());
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t p = 0; p < 16; ++p)
      EXPECT_NEAR(out[static_cast<size_t>(c * 16 + p)], (img[static_cast<size_t>(p)] / 255.0 - s.mean[c]) / s.std[c], 1e-6)
          << c << " " << p;
  // Two values for a 1-channel store are neither per store channel nor per output channel.
  TransformSpec bad = s;
  bad.mean = bad.std = {0.5, 0.5};
  EXPECT_THROW(finalize(bad), DataError);
}

TEST(Loader, DeterministicForAnyThreadCount) {
  TempDir t;
  auto view = whole_train(make_store(t));
  for (Augment aug : {Augment::crop_flip, Augment::rrc_flip}) {
    if (aug == Augment::rrc_flip && !kHaveOpenCV) continue;  // resizes: needs OpenCV
    LoaderOptions o;
    o.batch_size = 6;
    o.augment = aug;
    o.seed = 9;
    o.threads = 1;
    o.prefetch_batches = 1;
    Loader one(view, o);
    o.threads = 4;
    o.prefetch_batches = 7;
    Loader four(view, o);
    auto a = epoch(one, 3), b = epoch(four, 3);
    expect_same(a, b);
    // Another epoch: another order and other augmentations.
    auto c = epoch(four, 4);
    EXPECT_FALSE(at::equal(a[0].indices, c[0].indices));
    // Same sample, different epochs: different augmentation (almost surely, over a whole epoch).
    auto sorted = [](const std::vector<Batch>& bs) {
      std::vector<at::Tensor> imgs, idx;
      for (auto& b : bs) imgs.push_back(b.images), idx.push_back(b.indices);
      auto all = at::cat(imgs), ids = at::cat(idx);
      return all.index_select(0, at::argsort(ids));
    };
    EXPECT_FALSE(at::equal(sorted(a), sorted(c))) << to_string(aug);
  }
}

TEST(Loader, CropFlipIsAPaddedShiftOrItsMirror) {
  TempDir t;
  auto view = whole_train(make_store(t));
  const auto& info = view.store()->info();
  LoaderOptions o;
  o.batch_size = 8;
  o.augment = Augment::crop_flip;
  o.crop_padding = 2;
  o.seed = 1;
  Loader l(view, o);
  int flips = 0, shifts = 0, total = 0;
  for (auto& b : epoch(l, 0)) {
    for (int64_t k = 0; k < b.images.size(0); ++k, ++total) {
      const int64_t id = b.indices[k].item<int64_t>();
      const at::Tensor sample = b.images[k];
      auto img = sample.accessor<float, 3>();
      bool found = false;
      for (int64_t dy = -2; dy <= 2 && !found; ++dy)
        for (int64_t dx = -2; dx <= 2 && !found; ++dx)
          for (int flip = 0; flip < 2 && !found; ++flip) {
            bool ok = true;
            for (int64_t c = 0; c < kC && ok; ++c)
              for (int64_t y = 0; y < kS && ok; ++y)
                for (int64_t x = 0; x < kS && ok; ++x) {
                  const int64_t sy = y + dy, sx = (flip ? kS - 1 - x : x) + dx;
                  const int v = (sy >= 0 && sy < kS && sx >= 0 && sx < kS) ? known_pixel(id, sy, sx, c) : 0;
                  ok = std::abs(img[c][y][x] - (v / 255.0 - info.mean[c]) / info.std[c]) < 1e-5;
                }
            if (ok) {
              found = true;
              flips += flip;
              shifts += (dy != 0 || dx != 0);
            }
          }
      EXPECT_TRUE(found) << "sample " << id << " is not a padded crop of its image";
    }
  }
  EXPECT_EQ(total, kN);
  EXPECT_GT(flips, 0);
  EXPECT_LT(flips, total);
  EXPECT_GT(shifts, 0);
}

TEST(Loader, ResizedCropAndGrayToRgb) {
  PASSLAB_SKIP_WITHOUT_OPENCV();
  TempDir t;
  write_idx_dataset(t / "raw", 20, 4, 6, 6, false);
  prepare("mnist", t / "raw", t / "g.h5", {});
  SplitOptions so;
  so.val_fraction = 0;
  auto view = make_splits(Store::open(t / "g.h5"), so).train;
  LoaderOptions o;
  o.batch_size = 7;
  o.augment = Augment::rrc_flip;
  o.out_size = 12;
  o.out_channels = 3;
  Loader l(view, o);
  auto bs = epoch(l, 0);
  ASSERT_EQ(bs.size(), 3u);
  EXPECT_EQ(bs[0].images.sizes(), (at::IntArrayRef{7, 3, 12, 12}));
  for (auto& b : bs) {
    EXPECT_TRUE(at::equal(b.images.select(1, 0), b.images.select(1, 1)));
    EXPECT_TRUE(at::equal(b.images.select(1, 0), b.images.select(1, 2)));
  }
  // Eval at another resolution: resized, 3 identical channels.
  o.augment = Augment::none;
  o.shuffle = false;
  Loader e(view, o);
  auto eb = epoch(e, 0);
  EXPECT_EQ(eb[0].images.sizes(), (at::IntArrayRef{7, 3, 12, 12}));
}

TEST(Loader, RanksShareAnEpochExactly) {
  TempDir t;
  auto view = whole_train(make_store(t));
  for (int64_t world = 1; world <= 4; ++world) {
    std::multiset<int64_t> seen;
    int64_t per = -1;
    for (int64_t r = 0; r < world; ++r) {
      LoaderOptions o;
      o.batch_size = 4;
      o.augment = Augment::crop_flip;
      o.rank = r;
      o.world = world;
      o.seed = 3;
      Loader l(view, o);
      if (per < 0) per = l.samples_per_epoch();
      EXPECT_EQ(l.samples_per_epoch(), per);
      int64_t got = 0;
      for (auto& b : epoch(l, 2)) {
        got += b.indices.size(0);
        for (int64_t k = 0; k < b.indices.size(0); ++k) seen.insert(b.indices[k].item<int64_t>());
      }
      EXPECT_EQ(got, per);
    }
    std::set<int64_t> unique(seen.begin(), seen.end());
    EXPECT_EQ(static_cast<int64_t>(unique.size()), kN) << "world " << world;
    EXPECT_EQ(static_cast<int64_t>(seen.size()), per * world);
  }
}

TEST(Loader, SameSampleSameAugmentationOnAnyWorldSize) {
  PASSLAB_SKIP_WITHOUT_OPENCV();
  TempDir t;
  auto view = whole_train(make_store(t));
  auto by_index = [&](int64_t world) {
    std::map<int64_t, at::Tensor> out;
    for (int64_t r = 0; r < world; ++r) {
      LoaderOptions o;
      o.batch_size = 5;
      o.augment = Augment::rrc_flip;
      o.rank = r;
      o.world = world;
      o.seed = 8;
      Loader l(view, o);
      for (auto& b : epoch(l, 1))
        for (int64_t k = 0; k < b.indices.size(0); ++k) out[b.indices[k].item<int64_t>()] = b.images[k];
    }
    return out;
  };
  auto one = by_index(1), three = by_index(3);
  ASSERT_EQ(one.size(), three.size());
  for (auto& [i, img] : one) EXPECT_TRUE(at::equal(img, three.at(i))) << i;
}

TEST(Loader, ResumeAndDropLastAndShutdown) {
  TempDir t;
  auto view = whole_train(make_store(t));
  LoaderOptions o;
  o.batch_size = 5;
  o.augment = Augment::crop_flip;
  o.drop_last_batch = true;
  o.seed = 4;
  o.threads = 3;
  Loader l(view, o);
  EXPECT_EQ(l.batches_per_epoch(), 7);
  EXPECT_EQ(l.samples_per_epoch(), 35);
  auto full = epoch(l, 5);
  ASSERT_EQ(full.size(), 7u);
  for (auto& b : full) EXPECT_EQ(b.images.size(0), 5);
  auto rest = epoch(l, 5, 3);
  expect_same(std::vector<Batch>(full.begin() + 3, full.end()), rest);
  // Position for checkpoints.
  l.start_epoch(5);
  l.next();
  l.next();
  EXPECT_EQ(l.position(), 2);
  // Restarting mid-epoch and destroying mid-epoch must not hang.
  l.start_epoch(6);
  l.next();
  l.start_epoch(7);
  {
    o.prefetch_batches = 2;
    Loader early(view, o);
    early.start_epoch(0);
    early.next();
  }
  Loader never(view, o);  // destroyed before any epoch
  // A shard smaller than one batch keeps its partial batch even with drop_last_batch.
  o.batch_size = 64;
  Loader small(view, o);
  EXPECT_EQ(small.batches_per_epoch(), 1);
  EXPECT_EQ(small.samples_per_epoch(), kN);
}

TEST(Loader, OptionsFromConfig) {
  TempDir t;
  auto view = whole_train(make_store(t));
  config::DataConfig cfg;
  cfg.augment = "auto";
  cfg.loader_threads = 3;
  auto tr = loader_options(cfg, view.store()->info(), true, 32, 7, 1, 2, 3);
  EXPECT_EQ(tr.augment, Augment::crop_flip);  // 8 px < 64
  EXPECT_TRUE(tr.shuffle);
  EXPECT_TRUE(tr.drop_last_batch);
  EXPECT_EQ(tr.threads, 3);
  EXPECT_EQ(tr.rank, 1);
  cfg.input_size = 96;
  EXPECT_EQ(loader_options(cfg, view.store()->info(), true, 32, 7, 0, 1).augment, Augment::rrc_flip);
  auto ev = loader_options(cfg, view.store()->info(), false, 32, 7, 0, 1);
  EXPECT_EQ(ev.augment, Augment::none);
  EXPECT_FALSE(ev.shuffle);
  EXPECT_FALSE(ev.drop_last_batch);
}

#ifdef PASSLAB_WITHOUT_OPENCV
TEST(LoaderWithoutOpenCV, ResizingIsRefusedWhenTheLoaderIsMade) {
  TempDir t;
  auto view = whole_train(make_store(t));
  auto refused = [&](LoaderOptions o, const std::string& needle) {
    try {
      Loader l(view, o);
      ADD_FAILURE() << "loader made; expected: " << needle;
    } catch (const NotImplementedError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  LoaderOptions o;
  o.batch_size = 4;
  o.augment = Augment::rrc_flip;
  refused(o, "built without OpenCV: cannot resize images (augment = rrc_flip)");
  o.augment = Augment::none;
  o.out_size = 12;
  refused(o, "built without OpenCV: cannot resize images (the store's 8x8 images to input_size 12)");
  o.out_size = kS;  // the store's own size: no resizing
  o.augment = Augment::crop_flip;
  Loader ok(view, o);
  EXPECT_EQ(epoch(ok, 0).front().images.size(2), kS);
}
#endif
