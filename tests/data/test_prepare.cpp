// passlab prepare: round trips with known pixels for every format, bad input, real Fashion-MNIST.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "data_fixtures.hpp"
#include "passlab/core/error.hpp"
#include "passlab/core/files.hpp"
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

std::vector<uint8_t> read_split(const Store& s, const std::string& split) {
  std::vector<uint8_t> out(static_cast<size_t>(s.rows(split) * s.info().image_bytes()));
  s.read_images(split, 0, s.rows(split), out.data());
  return out;
}

// Per-channel mean/std of HWC pixels in [0,1], computed the obvious way.
void expect_stats(const std::vector<uint8_t>& px, int64_t c, const StoreInfo& info) {
  for (int64_t ch = 0; ch < c; ++ch) {
    double s = 0, sq = 0;
    size_t n = 0;
    for (size_t i = static_cast<size_t>(ch); i < px.size(); i += static_cast<size_t>(c), ++n) {
      s += px[i] / 255.0;
      sq += (px[i] / 255.0) * (px[i] / 255.0);
    }
    const double mean = s / static_cast<double>(n);
    EXPECT_NEAR(info.mean[static_cast<size_t>(ch)], mean, 1e-9);
    EXPECT_NEAR(info.std[static_cast<size_t>(ch)], std::sqrt(sq / static_cast<double>(n) - mean * mean), 1e-9);
  }
}

// Runs prepare expecting a DataError/IOError whose message contains `needle`; no store, no .tmp.
template <class Err = Error>
void expect_refused(const std::string& format, const fs::path& src, const fs::path& out, const std::string& needle,
                    PrepareOptions opt = {}) {
  try {
    prepare(format, src, out, opt);
    ADD_FAILURE() << "prepare " << format << " " << src << " succeeded; expected: " << needle;
  } catch (const Err& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(out)) << out;
  EXPECT_FALSE(fs::exists(out.string() + ".tmp")) << out;
}

}  // namespace

TEST(PrepareIdx, RoundTripPlainAndGzip) {
  for (bool gz : {false, true}) {
    TempDir t;
    write_idx_dataset(t / "raw", 23, 11, 5, 4, gz);
    PrepareOptions o;
    o.gzip = gz ? 4 : 0;  // the HDF5 deflate path too
    StoreInfo w = prepare("mnist", t / "raw", t / "m.h5", o);
    EXPECT_EQ(w.train_size, 23);
    auto st = Store::open(t / "m.h5");
    const StoreInfo& info = st->info();
    EXPECT_EQ(info.format, "mnist");
    EXPECT_EQ(info.height, 5);
    EXPECT_EQ(info.width, 4);
    EXPECT_EQ(info.channels, 1);
    ASSERT_EQ(info.classes.size(), 10u);
    EXPECT_EQ(info.classes[3], "3");
    EXPECT_EQ(st->rows("train"), 23);
    EXPECT_EQ(st->rows("test"), 11);
    const auto train = read_split(*st, "train"), test = read_split(*st, "test");
    EXPECT_EQ(train, known_images(23, 5, 4, 1, 0));
    EXPECT_EQ(test, known_images(11, 5, 4, 1, 1000));
    for (int64_t i = 0; i < 23; ++i) EXPECT_EQ(st->labels("train")[static_cast<size_t>(i)], i % 10);
    for (int64_t i = 0; i < 11; ++i) EXPECT_EQ(st->labels("test")[static_cast<size_t>(i)], (1000 + i) % 10);
    expect_stats(train, 1, info);
    EXPECT_EQ(info.checksum, w.checksum);
    EXPECT_EQ(st->compute_checksum(), info.checksum);
    EXPECT_EQ(info.checksum.rfind("fnv1a64:", 0), 0u);
  }
}

TEST(PrepareIdx, FashionNamesAndResize) {
  PASSLAB_SKIP_WITHOUT_OPENCV();
  TempDir t;
  write_idx_dataset(t / "raw", 10, 10, 8, 8, true);
  PrepareOptions o;
  o.size = 4;
  o.threads = 3;
  prepare("fashion-mnist", t / "raw", t / "f.h5", o);
  auto st = Store::open(t / "f.h5");
  EXPECT_EQ(st->info().classes[0], "T-shirt/top");
  EXPECT_EQ(st->info().classes[9], "Ankle boot");
  EXPECT_EQ(st->info().height, 4);
  // Downscaling 8x8 -> 4x4 with INTER_AREA averages 2x2 blocks: check against that.
  const auto px = read_split(*st, "train");
  const auto src = known_images(10, 8, 8, 1);
  for (int64_t i = 0; i < 10; ++i)
    for (int64_t y = 0; y < 4; ++y)
      for (int64_t x = 0; x < 4; ++x) {
        auto at = [&](int64_t yy, int64_t xx) { return src[static_cast<size_t>(i * 64 + yy * 8 + xx)]; };
        const double avg = (at(2 * y, 2 * x) + at(2 * y, 2 * x + 1) + at(2 * y + 1, 2 * x) + at(2 * y + 1, 2 * x + 1)) / 4.0;
        EXPECT_NEAR(px[static_cast<size_t>(i * 16 + y * 4 + x)], avg, 1.0) << i << " " << y << " " << x;
      }
}

// The transfer benchmark's stores (docs/transfer.md): a class subset relabelled in the order
// given, and the inverted domain, checked image by image against the raw records.
TEST(PrepareIdx, ClassSubsetAndInvertedShift) {
  TempDir t;
  write_idx_dataset(t / "raw", 300, 100, 6, 5, true);  // label of record i: i % 10 (test: (1000 + i) % 10)
  PrepareOptions o;
  o.classes = {7, 2, 9};
  o.shift = "invert";
  prepare("fashion-mnist", t / "raw", t / "target.h5", o);
  auto st = Store::open(t / "target.h5");
  EXPECT_EQ(st->info().classes, (std::vector<std::string>{"Sneaker", "Pullover", "Ankle boot"}));
  EXPECT_NE(st->info().source.find("classes 7,2,9"), std::string::npos) << st->info().source;
  EXPECT_NE(st->info().source.find("shift invert"), std::string::npos) << st->info().source;
  EXPECT_EQ(st->compute_checksum(), st->info().checksum);
  for (auto [split, n, first] : {std::tuple{"train", int64_t{300}, int64_t{0}}, std::tuple{"test", int64_t{100}, int64_t{1000}}}) {
    // The raw records of the kept classes, in order, with their new labels.
    std::vector<int64_t> records, labels;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t raw = (first + i) % 10;
      if (raw == 7 || raw == 2 || raw == 9) {
        records.push_back(first + i);
        labels.push_back(raw == 7 ? 0 : raw == 2 ? 1 : 2);
      }
    }
    ASSERT_EQ(st->rows(split), static_cast<int64_t>(records.size())) << split;
    EXPECT_EQ(st->labels(split), labels) << split;
    const auto px = read_split(*st, split);
    for (size_t r = 0; r < records.size(); ++r)
      for (int64_t y = 0; y < 6; ++y)
        for (int64_t x = 0; x < 5; ++x)
          ASSERT_EQ(px[r * 30 + static_cast<size_t>(y * 5 + x)], 255 - known_pixel(records[r], y, x, 0)) << split << " " << r;
    if (std::string(split) == "train") expect_stats(px, 1, st->info());
  }
  // Subset without shift keeps the pixels; bad lists are refused before anything is written.
  o.shift = "none";
  o.classes = {4};
  prepare("mnist", t / "raw", t / "four.h5", o);
  auto four = Store::open(t / "four.h5");
  EXPECT_EQ(four->rows("train"), 30);
  EXPECT_EQ(read_split(*four, "train")[0], known_pixel(4, 0, 0, 0));
  o.classes = {3, 10};
  expect_refused<ConfigError>("mnist", t / "raw", t / "bad.h5", "--classes lists 10, outside [0, 10)", o);
  o.classes = {3, 3};
  expect_refused<ConfigError>("mnist", t / "raw", t / "bad.h5", "--classes lists 3 twice", o);
  o.classes = {};
  o.shift = "rotate";
  expect_refused<ConfigError>("mnist", t / "raw", t / "bad.h5", "unknown --shift 'rotate'", o);
}

// The few-shot training split: the first N records of each kept class, in the source's order,
// relabelled; the test split whole. Records 0..299 have label i % 10, so class 7's first 4 are
// records 7, 17, 27, 37 and class 2's are 2, 12, 22, 32.
TEST(PrepareIdx, TrainPerClassKeepsTheFirstRecordsOfEachClass) {
  TempDir t;
  write_idx_dataset(t / "raw", 300, 100, 6, 5, true);
  PrepareOptions o;
  o.classes = {7, 2};
  o.train_per_class = 4;
  prepare("fashion-mnist", t / "raw", t / "few.h5", o);
  auto st = Store::open(t / "few.h5");
  EXPECT_NE(st->info().source.find("first 4 training images per class"), std::string::npos) << st->info().source;
  EXPECT_EQ(st->compute_checksum(), st->info().checksum);
  const std::vector<int64_t> records = {2, 7, 12, 17, 22, 27, 32, 37};
  ASSERT_EQ(st->rows("train"), 8);
  EXPECT_EQ(st->labels("train"), (std::vector<int64_t>{1, 0, 1, 0, 1, 0, 1, 0}));
  const auto px = read_split(*st, "train");
  for (size_t r = 0; r < records.size(); ++r) ASSERT_EQ(px[r * 30], known_pixel(records[r], 0, 0, 0)) << r;
  EXPECT_EQ(st->rows("test"), 20);  // 100 test records, 10 of each kept class
  expect_stats(px, 1, st->info());
  // Each class must have N training images (30 of each here): refused before anything is written.
  o.train_per_class = 31;
  expect_refused<ConfigError>("fashion-mnist", t / "raw", t / "bad.h5",
                              "--train-per-class 31: class 'Sneaker' has only 30 training images", o);
}

TEST(PrepareIdx, BadInput) {
  TempDir t;
  write_idx_dataset(t / "ok", 12, 6, 3, 3, false);
  auto copy = [&](const std::string& name) {
    remove_tree(t / name);
    fs::copy(t / "ok", t / name);
    return t / name;
  };
  // Truncated image file.
  {
    auto d = copy("trunc");
    auto b = read_all(d / "train-images-idx3-ubyte");
    b.resize(b.size() - 5);
    write_bytes(d / "train-images-idx3-ubyte", b);
    expect_refused<DataError>("mnist", d, t / "o.h5", "truncated IDX");
    expect_refused<DataError>("mnist", d, t / "o.h5", "train-images-idx3-ubyte");
  }
  // Truncated gzip.
  {
    auto d = copy("truncgz");
    auto b = read_all(d / "train-images-idx3-ubyte");
    fs::remove(d / "train-images-idx3-ubyte");
    write_bytes(d / "train-images-idx3-ubyte.gz", b, true);
    auto gz = read_all(d / "train-images-idx3-ubyte.gz");
    gz.resize(gz.size() / 2);
    write_bytes(d / "train-images-idx3-ubyte.gz", gz);
    expect_refused<DataError>("mnist", d, t / "o.h5", "train-images-idx3-ubyte.gz: ");
  }
  // Corrupt gzip (garbage after the magic bytes).
  {
    auto d = copy("badgz");
    fs::remove(d / "t10k-labels-idx1-ubyte");
    write_bytes(d / "t10k-labels-idx1-ubyte.gz", {0x1f, 0x8b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
    expect_refused<DataError>("mnist", d, t / "o.h5", "t10k-labels-idx1-ubyte.gz: corrupt or truncated gzip");
  }
  // Bad magic.
  {
    auto d = copy("magic");
    auto b = read_all(d / "train-labels-idx1-ubyte");
    b[0] = 7;
    write_bytes(d / "train-labels-idx1-ubyte", b);
    expect_refused<DataError>("mnist", d, t / "o.h5", "bad magic");
  }
  // Label/image count mismatch.
  {
    auto d = copy("count");
    std::vector<uint8_t> labels(11, 1);
    write_bytes(d / "train-labels-idx1-ubyte", idx_bytes({11}, labels));
    expect_refused<DataError>("mnist", d, t / "o.h5", "count mismatch");
  }
  // Label out of range.
  {
    auto d = copy("label");
    std::vector<uint8_t> labels(12, 1);
    labels[7] = 10;
    write_bytes(d / "train-labels-idx1-ubyte", idx_bytes({12}, labels));
    expect_refused<DataError>("mnist", d, t / "o.h5", "record 7 has label 10");
  }
  // Missing file and missing directory.
  {
    auto d = copy("missing");
    fs::remove(d / "t10k-images-idx3-ubyte");
    expect_refused<DataError>("mnist", d, t / "o.h5", "missing t10k-images-idx3-ubyte");
    expect_refused<DataError>("mnist", t / "nope", t / "o.h5", "does not exist");
  }
  // Unwritable output: its parent is a regular file.
  {
    test::write_text(t / "file", "x");
    expect_refused<IOError>("mnist", t / "ok", t / "file" / "o.h5", "file");
  }
  // Existing output without --force is kept untouched.
  {
    test::write_text(t / "exists.h5", "precious");
    try {
      prepare("mnist", t / "ok", t / "exists.h5", {});
      ADD_FAILURE() << "overwrote an existing store";
    } catch (const IOError& e) {
      EXPECT_NE(std::string(e.what()).find("--force"), std::string::npos);
    }
    EXPECT_EQ(test::read_text(t / "exists.h5"), "precious");
    PrepareOptions f;
    f.force = true;
    prepare("mnist", t / "ok", t / "exists.h5", f);
    EXPECT_EQ(Store::open(t / "exists.h5")->rows("train"), 12);
  }
  EXPECT_THROW(prepare("bogus", t / "ok", t / "o.h5", {}), ConfigError);
}

TEST(PrepareCifar, RoundTrip10) {
  TempDir t;
  const fs::path d = t / "cifar-10-batches-bin";
  fs::create_directories(d);
  for (int b = 1; b <= 5; ++b) write_bytes(d / ("data_batch_" + std::to_string(b) + ".bin"), cifar_bytes(3, (b - 1) * 3, 1, 10));
  write_bytes(d / "test_batch.bin", cifar_bytes(4, 100, 1, 10));
  test::write_text(d / "batches.meta.txt", "a0\na1\na2\na3\na4\na5\na6\na7\na8\na9\n\n");
  prepare("cifar10", t.path(), t / "c.h5", {});  // finds cifar-10-batches-bin inside
  auto st = Store::open(t / "c.h5");
  EXPECT_EQ(st->info().channels, 3);
  EXPECT_EQ(st->info().height, 32);
  EXPECT_EQ(st->info().classes[4], "a4");
  const auto train = read_split(*st, "train");
  EXPECT_EQ(train, known_images(15, 32, 32, 3, 0));
  EXPECT_EQ(read_split(*st, "test"), known_images(4, 32, 32, 3, 100));
  for (int64_t i = 0; i < 15; ++i) EXPECT_EQ(st->labels("train")[static_cast<size_t>(i)], i % 10);
  for (int64_t i = 0; i < 4; ++i) EXPECT_EQ(st->labels("test")[static_cast<size_t>(i)], (100 + i) % 10);
  expect_stats(train, 3, st->info());
  EXPECT_EQ(st->compute_checksum(), st->info().checksum);
}

TEST(PrepareCifar, RoundTrip100FineLabels) {
  TempDir t;
  write_bytes(t / "train.bin", cifar_bytes(7, 0, 2, 100));
  write_bytes(t / "test.bin", cifar_bytes(5, 95, 2, 100));
  prepare("cifar100", t.path(), t / "c.h5", {});
  auto st = Store::open(t / "c.h5");
  EXPECT_EQ(st->info().num_classes(), 100);
  EXPECT_EQ(st->info().classes[99], "worm");
  EXPECT_EQ(read_split(*st, "train"), known_images(7, 32, 32, 3, 0));
  EXPECT_EQ(read_split(*st, "test"), known_images(5, 32, 32, 3, 95));
  for (int64_t i = 0; i < 5; ++i) EXPECT_EQ(st->labels("test")[static_cast<size_t>(i)], (95 + i) % 100);  // fine, not coarse
}

TEST(PrepareCifar, BadInput) {
  TempDir t;
  auto make = [&](const std::string& name) {
    const fs::path d = t / name;
    fs::create_directories(d);
    for (int b = 1; b <= 5; ++b) write_bytes(d / ("data_batch_" + std::to_string(b) + ".bin"), cifar_bytes(2, 0, 1, 10));
    write_bytes(d / "test_batch.bin", cifar_bytes(2, 0, 1, 10));
    return d;
  };
  {
    auto d = make("trunc");
    auto b = read_all(d / "data_batch_3.bin");
    b.resize(b.size() - 100);
    write_bytes(d / "data_batch_3.bin", b);
    expect_refused<DataError>("cifar10", d, t / "o.h5", "data_batch_3.bin: size 6046 is not a multiple of the 3073-byte record");
  }
  {
    auto d = make("label");
    auto b = read_all(d / "test_batch.bin");
    b[3073] = 12;  // second record's label
    write_bytes(d / "test_batch.bin", b);
    expect_refused<DataError>("cifar10", d, t / "o.h5", "test_batch.bin: record 1 has label 12");
  }
  {
    auto d = make("missing");
    fs::remove(d / "data_batch_5.bin");
    expect_refused<DataError>("cifar10", d, t / "o.h5", "missing data_batch_5.bin");
  }
  {
    auto d = make("empty");
    write_bytes(d / "data_batch_1.bin", {});
    expect_refused<DataError>("cifar10", d, t / "o.h5", "data_batch_1.bin: empty file");
  }
  {
    auto d = t / "c100";
    fs::create_directories(d);
    write_bytes(d / "train.bin", cifar_bytes(2, 0, 2, 100));
    auto b = cifar_bytes(2, 0, 2, 100);
    b.pop_back();
    write_bytes(d / "test.bin", b);
    expect_refused<DataError>("cifar100", d, t / "o.h5", "test.bin: size 6147 is not a multiple of the 3074-byte record");
  }
}

#ifndef PASSLAB_WITHOUT_OPENCV

namespace {
// root/{train,test}/<class>/<i>.png with known pixels; returns per split the images in the order
// prepare must store them (classes sorted, files sorted).
void write_folder(const fs::path& root, int h, int w, int c, const std::string& ext, std::vector<int>* n_train_out = nullptr) {
  const std::vector<std::string> classes = {"cat", "dog", "emu"};
  int64_t id = 0;
  for (const char* split : {"train", "test"})
    for (size_t k = 0; k < classes.size(); ++k) {
      fs::create_directories(root / split / classes[k]);
      const int n = std::string(split) == "train" ? 2 + static_cast<int>(k) : 1;
      for (int j = 0; j < n; ++j, ++id)
        write_image(root / split / classes[k] / ("img" + std::to_string(j) + ext), known_images(1, h, w, c, id), h, w, c);
    }
  (void)n_train_out;
}
}  // namespace

TEST(PrepareImageFolder, PngRoundTripExact) {
  for (int c : {3, 1}) {
    TempDir t;
    write_folder(t / "root", 6, 5, c, ".png");
    test::write_text(t / "root" / "train" / "dog" / "README.txt", "not an image");  // ignored
    PrepareOptions o;
    o.channels = c;
    o.threads = 2;
    prepare("imagefolder", t / "root", t / "s.h5", o);
    auto st = Store::open(t / "s.h5");
    const auto& info = st->info();
    EXPECT_EQ(info.classes, (std::vector<std::string>{"cat", "dog", "emu"}));
    EXPECT_EQ(info.height, 6);
    EXPECT_EQ(info.width, 5);
    EXPECT_EQ(info.channels, c);
    // Train: cat 2 (ids 0,1), dog 3 (ids 2..4), emu 4 (ids 5..8); test: one each (ids 9..11).
    EXPECT_EQ(read_split(*st, "train"), known_images(9, 6, 5, c, 0));
    EXPECT_EQ(read_split(*st, "test"), known_images(3, 6, 5, c, 9));
    EXPECT_EQ(st->labels("train"), (std::vector<int64_t>{0, 0, 1, 1, 1, 2, 2, 2, 2}));
    EXPECT_EQ(st->labels("test"), (std::vector<int64_t>{0, 1, 2}));
    expect_stats(read_split(*st, "train"), c, info);
  }
}

TEST(PrepareImageFolder, JpegAndResizeCentreCrop) {
  TempDir t;
  // A 12x24 (h x w) image of three vertical bands of 8 columns: red | green | blue. With
  // --size 6 the shorter side goes 12 -> 6 (width 24 -> 12) and the centre crop keeps columns 3..8
  // of the 12: one column of red/green mixing at each edge... use the inner columns.
  auto bands = [](int h, int w) {
    std::vector<uint8_t> v(static_cast<size_t>(h * w * 3), 0);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) v[static_cast<size_t>((y * w + x) * 3 + x / (w / 3))] = 200;
    return v;
  };
  for (const char* split : {"train", "test"}) {
    fs::create_directories(t / "r" / split / "a");
    write_image(t / "r" / split / "a" / "x.png", bands(12, 24), 12, 24, 3);
    std::vector<uint8_t> flat(16 * 16 * 3, 0);
    for (size_t i = 0; i < flat.size(); i += 3) { flat[i] = 10; flat[i + 1] = 120; flat[i + 2] = 240; }
    write_image(t / "r" / split / "a" / "y.jpg", flat, 16, 16, 3, {cv::IMWRITE_JPEG_QUALITY, 95});
  }
  PrepareOptions o;
  o.size = 6;
  prepare("imagefolder", t / "r", t / "s.h5", o);
  auto st = Store::open(t / "s.h5");
  ASSERT_EQ(st->info().height, 6);
  const auto px = read_split(*st, "train");
  // x.png: 12x24 -> 6x12 by INTER_AREA (exact 2x2 averages, bands 4 columns wide), centre crop
  // columns 3..8: column 3 red, 4..7 green, 8 blue.
  for (int y = 0; y < 6; ++y) {
    auto at = [&](int x, int ch) { return px[static_cast<size_t>((y * 6 + x) * 3 + ch)]; };
    EXPECT_EQ(at(0, 0), 200);
    EXPECT_EQ(at(0, 1), 0);
    for (int x = 1; x <= 4; ++x) {
      EXPECT_EQ(at(x, 1), 200);
      EXPECT_EQ(at(x, 0), 0);
    }
    EXPECT_EQ(at(5, 2), 200);
  }
  // y.jpg: a flat colour survives JPEG and INTER_AREA within a few levels.
  for (int p = 0; p < 36; ++p) {
    EXPECT_NEAR(px[static_cast<size_t>(108 + p * 3 + 0)], 10, 4);
    EXPECT_NEAR(px[static_cast<size_t>(108 + p * 3 + 1)], 120, 4);
    EXPECT_NEAR(px[static_cast<size_t>(108 + p * 3 + 2)], 240, 4);
  }
}

TEST(PrepareImageFolder, BadInput) {
  TempDir t;
  auto make = [&](const std::string& name) {
    write_folder(t / name, 4, 4, 3, ".png");
    return t / name;
  };
  {
    auto d = make("notest");
    remove_tree(d / "test");
    expect_refused<DataError>("imagefolder", d, t / "o.h5", "test does not exist");
  }
  expect_refused<DataError>("imagefolder", t / "absent", t / "o.h5", "absent does not exist");
  {
    auto d = make("emptyclass");
    fs::create_directories(d / "train" / "zebra");
    expect_refused<DataError>("imagefolder", d, t / "o.h5", "zebra: empty class");
  }
  {
    auto d = make("extraclass");
    fs::create_directories(d / "test" / "yak");
    write_image(d / "test" / "yak" / "a.png", known_images(1, 4, 4, 3), 4, 4, 3);
    expect_refused<DataError>("imagefolder", d, t / "o.h5", "'yak' does not exist in the train split");
  }
  {
    auto d = make("corrupt");
    write_bytes(d / "train" / "dog" / "img1.png", {1, 2, 3, 4, 5, 6, 7, 8, 9});
    expect_refused<DataError>("imagefolder", d, t / "o.h5", "img1.png: cannot decode image");
  }
  {
    auto d = make("truncpng");
    auto b = read_all(d / "test" / "emu" / "img0.png");
    b.resize(b.size() / 2);
    write_bytes(d / "test" / "emu" / "img0.png", b);
    expect_refused<DataError>("imagefolder", d, t / "o.h5", "emu/img0.png: cannot decode image");
  }
  {
    auto d = make("truncjpg");
    std::vector<uint8_t> noise(32 * 32 * 3);
    for (size_t i = 0; i < noise.size(); ++i) noise[i] = static_cast<uint8_t>(i * 131 % 251);
    write_image(d / "train" / "cat" / "z.jpg", noise, 32, 32, 3);
    auto b = read_all(d / "train" / "cat" / "z.jpg");
    b.resize(b.size() * 2 / 3);
    write_bytes(d / "train" / "cat" / "z.jpg", b);
    PrepareOptions o;
    o.size = 4;
    expect_refused<DataError>("imagefolder", d, t / "o.h5", "z.jpg: truncated JPEG", o);
    // Complete again, plus trailing bytes after the end marker (as some cameras write), and a PNG
    // named .jpg: both accepted.
    write_image(d / "train" / "cat" / "z.jpg", noise, 32, 32, 3);
    auto full = read_all(d / "train" / "cat" / "z.jpg");
    full.insert(full.end(), 300, 0);
    write_bytes(d / "train" / "cat" / "z.jpg", full);
    write_image(d / "train" / "dog" / "p.png", noise, 32, 32, 3);
    fs::rename(d / "train" / "dog" / "p.png", d / "train" / "dog" / "p.jpg");
    prepare("imagefolder", d, t / "ok.h5", o);
    EXPECT_EQ(Store::open(t / "ok.h5")->rows("train"), 11);
  }
  {
    // A progressive JPEG (several scans) cut inside a later scan.
    auto d = make("progressive");
    std::vector<uint8_t> noise(48 * 48 * 3);
    for (size_t i = 0; i < noise.size(); ++i) noise[i] = static_cast<uint8_t>(i * 97 % 253);
    write_image(d / "test" / "dog" / "q.jpg", noise, 48, 48, 3, {cv::IMWRITE_JPEG_PROGRESSIVE, 1});
    PrepareOptions o;
    o.size = 4;
    prepare("imagefolder", d, t / "prog.h5", o);  // complete: fine
    auto b = read_all(d / "test" / "dog" / "q.jpg");
    b.resize(b.size() - 40);
    write_bytes(d / "test" / "dog" / "q.jpg", b);
    expect_refused<DataError>("imagefolder", d, t / "o.h5", "q.jpg: truncated JPEG", o);
  }
  {
    auto d = make("sizes");
    write_image(d / "train" / "emu" / "big.png", known_images(1, 8, 8, 3), 8, 8, 3);
    expect_refused<DataError>("imagefolder", d, t / "o.h5", "give --size");
  }
}

#else  // a build without OpenCV: the image-folder tests skip, and its errors are tested instead

TEST(PrepareImageFolder, PngRoundTripExact) { PASSLAB_SKIP_WITHOUT_OPENCV(); }
TEST(PrepareImageFolder, JpegAndResizeCentreCrop) { PASSLAB_SKIP_WITHOUT_OPENCV(); }
TEST(PrepareImageFolder, BadInput) { PASSLAB_SKIP_WITHOUT_OPENCV(); }

TEST(PrepareWithoutOpenCV, ImagesAndResizingAreRefusedClearly) {
  TempDir t;
  for (auto [name, head] : {std::pair<std::string, std::vector<uint8_t>>{"a.png", {0x89, 'P', 'N', 'G', 13, 10, 26, 10}},
                            {"a.jpg", {0xFF, 0xD8, 0xFF, 0xE0}}}) {
    const fs::path d = t / ("folder_" + name);
    for (const char* split : {"train", "test"}) {
      fs::create_directories(d / split / "cat");
      write_bytes(d / split / "cat" / name, head);
    }
    const std::string format = name == "a.png" ? "PNG" : "JPEG";
    expect_refused<NotImplementedError>("imagefolder", d, t / "o.h5",
                                        "built without OpenCV: cannot decode " + format + "; rebuild with OpenCV");
  }
  // --size resizes: refused; the native size needs no resizing.
  write_idx_dataset(t / "raw", 10, 10, 8, 8, true);
  PrepareOptions o;
  o.size = 4;
  expect_refused<NotImplementedError>("fashion-mnist", t / "raw", t / "f.h5", "built without OpenCV: cannot resize images", o);
  o.size = 8;
  prepare("fashion-mnist", t / "raw", t / "f.h5", o);
  EXPECT_EQ(Store::open(t / "f.h5")->info().height, 8);
}

#endif  // PASSLAB_WITHOUT_OPENCV

TEST(PrepareCli, ExitCodesAndMessages) {
  const std::string bin = test::env_or("PASSLAB_BINARY", "");
  if (bin.empty() || !fs::exists(bin)) GTEST_SKIP() << "passlab binary not built";
  TempDir t;
  write_idx_dataset(t / "raw", 12, 6, 3, 3, true);
  auto ok = test::run_command(bin + " prepare mnist " + (t / "raw").string() + " --out " + (t / "m.h5").string());
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_EQ(Store::open(t / "m.h5")->rows("test"), 6);
  write_bytes(t / "raw" / "t10k-labels-idx1-ubyte.gz", {0x1f, 0x8b, 8, 0, 1, 2, 3});
  auto bad = test::run_command(bin + " prepare mnist " + (t / "raw").string() + " --out " + (t / "b.h5").string());
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_NE(bad.output.find("t10k-labels-idx1-ubyte.gz"), std::string::npos) << bad.output;
  EXPECT_FALSE(fs::exists(t / "b.h5"));
  EXPECT_FALSE(fs::exists(t / "b.h5.tmp"));
  auto usage = test::run_command(bin + " prepare nosuchformat x --out " + (t / "c.h5").string());
  EXPECT_EQ(usage.exit_code, 2) << usage.output;
}

TEST(PrepareRealFashionMnist, DebianPackage) {
  const fs::path src = default_source("fashion-mnist");
  if (!fs::exists(src / "train-images-idx3-ubyte.gz")) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  TempDir t;
  PrepareOptions o;
  StoreInfo info = prepare("fashion-mnist", "", t / "fm.h5", o);  // source found automatically
  auto st = Store::open(t / "fm.h5");
  EXPECT_EQ(st->rows("train"), 60000);
  EXPECT_EQ(st->rows("test"), 10000);
  EXPECT_EQ(st->info().height, 28);
  EXPECT_EQ(st->info().checksum, info.checksum);
  std::vector<int64_t> per_class(10, 0);
  for (int64_t l : st->labels("train")) ++per_class[static_cast<size_t>(l)];
  for (int64_t c : per_class) EXPECT_EQ(c, 6000);
  // Published pixel statistics of Fashion-MNIST's training set.
  EXPECT_NEAR(st->info().mean[0], 0.2860, 5e-4);
  EXPECT_NEAR(st->info().std[0], 0.3530, 5e-4);

  // The loader over the whole train split: every image exactly once, and normalised with the
  // store's own statistics the pixels have mean 0 and standard deviation 1.
  SplitOptions so;
  so.val_fraction = 0;
  LoaderOptions lo;
  lo.batch_size = 1000;
  lo.shuffle = true;
  lo.seed = 5;
  Loader loader(make_splits(st, so).train, lo);
  loader.start_epoch(0);
  double sum = 0, sumsq = 0, n = 0;
  std::vector<char> seen(60000, 0);
  while (auto b = loader.next()) {
    auto x = b->images.to(at::kDouble);
    sum += x.sum().item<double>();
    sumsq += (x * x).sum().item<double>();
    n += static_cast<double>(x.numel());
    const at::Tensor idx = b->indices;
    auto ia = idx.accessor<int64_t, 1>();
    for (int64_t k = 0; k < ia.size(0); ++k) ++seen[static_cast<size_t>(ia[k])];
  }
  EXPECT_EQ(n, 60000.0 * 784);
  EXPECT_NEAR(sum / n, 0.0, 1e-4);
  EXPECT_NEAR(std::sqrt(sumsq / n - (sum / n) * (sum / n)), 1.0, 1e-4);
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), 60000);
}
