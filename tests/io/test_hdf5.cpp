#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "passlab/core/error.hpp"
#include "passlab/io/hdf5.hpp"
#include "support/test_util.hpp"

using namespace passlab;
using namespace passlab::io;
namespace fs = std::filesystem;

namespace {
template <class T>
std::vector<T> ramp(size_t n, double scale, double offset) {
  std::vector<T> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<T>(offset + scale * static_cast<double>(i));
  return v;
}
}  // namespace

TEST(Hdf5, RoundTripEveryTypeWithChunkingAndGzip) {
  test::TempDir dir;
  auto path = dir / "types.h5";
  auto u8 = ramp<uint8_t>(2 * 3 * 4, 1, 7);
  auto i32 = ramp<int32_t>(10, -3, 5);
  auto i64 = ramp<int64_t>(5, 1e12, -2);
  auto f32 = ramp<float>(6, 0.25, -1);
  auto f64 = ramp<double>(3, 1.0 / 3.0, 0.1);
  {
    File f = File::create(path);
    f.root().write<uint8_t>("train/images", u8.data(), {2, 3, 4}, WriteOptions{1, 4, false});
    f.root().write("a/b/ints", i32, WriteOptions{4, 0, false});
    f.root().write("longs", i64);
    f.root().write<float>("floats", f32.data(), {2, 3}, WriteOptions{0, 9, false});
    f.root().write("doubles", f64);
    double scalar = 2.5;
    f.root().write<double>("scalar", &scalar, {});
    f.root().write<float>("empty", nullptr, {0, 3});
    f.close();
  }
  File f = File::open(path);
  Shape s;
  EXPECT_EQ(f.root().read<uint8_t>("train/images", &s), u8);
  EXPECT_EQ(s, (Shape{2, 3, 4}));
  EXPECT_EQ(f.root().read<int32_t>("a/b/ints"), i32);
  EXPECT_EQ(f.root().read<int64_t>("longs"), i64);
  EXPECT_EQ(f.root().read<float>("floats", &s), f32);
  EXPECT_EQ(s, (Shape{2, 3}));
  EXPECT_EQ(f.root().read<double>("doubles"), f64);
  EXPECT_EQ(f.root().read<double>("scalar", &s), std::vector<double>{2.5});
  EXPECT_TRUE(s.empty());
  EXPECT_TRUE(f.root().read<float>("empty").empty());
  EXPECT_EQ(f.root().open_dataset("train/images").dtype(), DType::u8);
  EXPECT_TRUE(f.root().is_group("a/b"));
  EXPECT_FALSE(f.root().is_group("longs"));
  EXPECT_EQ(f.root().children(), (std::vector<std::string>{"a", "doubles", "empty", "floats", "longs", "scalar", "train"}));
}

TEST(Hdf5, ReadingWithWrongTypeIsRefused) {
  test::TempDir dir;
  File f = File::create(dir / "t.h5");
  f.root().write("x", std::vector<float>{1, 2});
  try {
    f.root().read<double>("x");
    FAIL();
  } catch (const IOError& e) {
    EXPECT_NE(std::string(e.what()).find("holds float32, expected float64"), std::string::npos) << e.what();
  }
  EXPECT_THROW(f.root().read<float>("missing"), IOError);
}

TEST(Hdf5, RowSlicesAndAppend) {
  test::TempDir dir;
  File f = File::create(dir / "rows.h5");
  Dataset d = f.root().create_dataset("labels", DType::i64, {0}, WriteOptions{4, 1, true});
  for (int64_t start = 0; start < 10; start += 3) {
    std::vector<int64_t> chunk;
    for (int64_t i = start; i < std::min<int64_t>(start + 3, 10); ++i) chunk.push_back(i * i);
    d.append_rows<int64_t>(chunk.size(), chunk.data());
  }
  EXPECT_EQ(d.shape(), (Shape{10}));
  std::vector<int64_t> mid(4);
  d.read_rows<int64_t>(3, 4, mid.data());
  EXPECT_EQ(mid, (std::vector<int64_t>{9, 16, 25, 36}));
  std::vector<int64_t> over(2);
  EXPECT_THROW(d.read_rows<int64_t>(9, 2, over.data()), IOError);
  std::vector<int64_t> patch = {-1, -2};
  d.write_rows<int64_t>(0, 2, patch.data());
  EXPECT_EQ(f.root().read<int64_t>("labels")[1], -2);
}

TEST(Hdf5, StringsAndAttributes) {
  test::TempDir dir;
  auto path = dir / "attrs.h5";
  std::string config = "[dense]\nlr = 0.1\n# ünïcödé\n";
  {
    File f = File::create(path);
    f.root().write_string("config", config);
    f.root().set_attr("run_id", "abc123");
    f.root().set_attr("seed", int64_t{42});
    f.root().set_attr("budget", 0.3);
    f.root().set_attr("seed", int64_t{43});  // replaces
    auto g = f.root().create_group("summary");
    g.set_attr("top1", 91.25);
  }
  File f = File::open(path);
  EXPECT_EQ(f.root().read_string("config"), config);
  EXPECT_EQ(f.root().attr_string("run_id"), "abc123");
  EXPECT_EQ(f.root().attr_int("seed"), 43);
  EXPECT_DOUBLE_EQ(f.root().attr_double("budget"), 0.3);
  EXPECT_DOUBLE_EQ(f.root().open_group("summary").attr_double("top1"), 91.25);
  EXPECT_THROW(f.root().attr_int("run_id"), IOError);
  EXPECT_THROW(f.root().attr_string("nope"), IOError);
  auto names = f.root().attr_names();
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"budget", "run_id", "seed"}));
}

TEST(Hdf5, ArrayAttributesAreRefusedNotOverrun) {
  test::TempDir dir;
  File f = File::create(dir / "arr.h5");
  {
    // A 3-element double attribute and a 2-element string attribute, as h5py or the dataset
    // stores write them (mean/std, classes).
    hsize_t n = 3;
    SpaceId space(H5Screate_simple(1, &n, nullptr));
    AttrId a(H5Acreate2(f.root().id(), "mean", H5T_NATIVE_DOUBLE, space.get(), H5P_DEFAULT, H5P_DEFAULT));
    double v[3] = {0.1, 0.2, 0.3};
    ASSERT_GE(H5Awrite(a.get(), H5T_NATIVE_DOUBLE, v), 0);
    hsize_t m = 2;
    SpaceId space2(H5Screate_simple(1, &m, nullptr));
    TypeId t(H5Tcopy(H5T_C_S1));
    H5Tset_size(t.get(), H5T_VARIABLE);
    AttrId b(H5Acreate2(f.root().id(), "classes", t.get(), space2.get(), H5P_DEFAULT, H5P_DEFAULT));
    const char* names[2] = {"cat", "dog"};
    ASSERT_GE(H5Awrite(b.get(), t.get(), names), 0);
  }
  for (const char* name : {"mean", "classes"}) {
    try {
      f.root().attr_string(name);
      FAIL() << name;
    } catch (const IOError& e) {
      EXPECT_NE(std::string(e.what()).find("values, not one"), std::string::npos) << e.what();
    }
    EXPECT_THROW(f.root().attr_double(name), IOError);
    EXPECT_THROW(f.root().attr_int(name), IOError);
  }
}

TEST(Hdf5, OpenRefusesMissingAndNonHdf5Files) {
  test::TempDir dir;
  try {
    File::open(dir / "nope.h5");
    FAIL();
  } catch (const IOError& e) {
    EXPECT_NE(std::string(e.what()).find("no such file"), std::string::npos);
  }
  test::write_text(dir / "fake.h5", "this is not HDF5");
  try {
    File::open(dir / "fake.h5");
    FAIL();
  } catch (const IOError& e) {
    EXPECT_NE(std::string(e.what()).find("is not an HDF5 file"), std::string::npos) << e.what();
  }
  EXPECT_THROW(File::create(dir / "no/such/dir/x.h5"), IOError);
}

TEST(Hdf5, TruncatedFileIsReportedNotHalfRead) {
  test::TempDir dir;
  auto path = dir / "full.h5";
  {
    AtomicWriter w(path);
    w.root().write("big", ramp<float>(200000, 1, 0), WriteOptions{10000, 0, false});
    w.commit();
  }
  auto size = fs::file_size(path);
  fs::resize_file(path, size / 2);
  bool reported = false;
  try {
    File f = open_complete(path);
    f.root().read<float>("big");
  } catch (const IOError& e) {
    reported = true;
  }
  EXPECT_TRUE(reported);
}

TEST(AtomicWriter, CommitRenamesAndSetsStatusLast) {
  test::TempDir dir;
  auto path = dir / "sub" / "run.h5";
  {
    AtomicWriter w(path);
    EXPECT_TRUE(fs::exists(tmp_path_for(path)));
    EXPECT_FALSE(fs::exists(path));
    w.root().write("x", std::vector<int64_t>{1, 2, 3});
    {
      // While writing, the tmp file says incomplete.
      File peek = File::open(w.tmp_path());
      EXPECT_EQ(peek.root().attr_string("status"), "incomplete");
    }
    w.commit();
  }
  EXPECT_TRUE(fs::exists(path));
  EXPECT_FALSE(fs::exists(tmp_path_for(path)));
  File f = open_complete(path);
  EXPECT_EQ(f.root().read<int64_t>("x"), (std::vector<int64_t>{1, 2, 3}));
}

TEST(AtomicWriter, AbandonedWriterRemovesItsTmp) {
  test::TempDir dir;
  auto path = dir / "run.h5";
  try {
    AtomicWriter w(path);
    w.root().write("x", std::vector<int64_t>{1});
    throw std::runtime_error("task failed");
  } catch (const std::runtime_error&) {
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(tmp_path_for(path)));
}

TEST(AtomicWriter, FailedStatusIsReadableOnlyWhenAsked) {
  test::TempDir dir;
  auto path = dir / "failed.h5";
  {
    AtomicWriter w(path);
    w.root().set_attr("error", "NaN loss at step 12");
    w.commit("failed");
  }
  try {
    open_complete(path);
    FAIL();
  } catch (const IOError& e) {
    EXPECT_NE(std::string(e.what()).find("has status 'failed', expected 'complete'"), std::string::npos) << e.what();
  }
  File f = open_complete(path, {"complete", "failed"});
  EXPECT_EQ(f.root().attr_string("error"), "NaN loss at step 12");
}

TEST(AtomicWriter, FileWithoutStatusIsRefused) {
  test::TempDir dir;
  { File::create(dir / "plain.h5"); }
  try {
    open_complete(dir / "plain.h5");
    FAIL();
  } catch (const IOError& e) {
    EXPECT_NE(std::string(e.what()).find("has no 'status' attribute"), std::string::npos);
  }
}

TEST(AtomicWriter, KilledMidWriteLeavesOnlyTmpWhichTheNextWriterReplaces) {
  test::TempDir dir;
  auto path = dir / "run.h5";
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Child: start writing, tell the parent, then keep writing until killed.
    close(ready[0]);
    AtomicWriter w(path);
    auto data = ramp<float>(1 << 16, 1, 0);
    w.root().write("first", data);
    w.root().set_attr("marker", "child");
    char c = 'x';
    if (write(ready[1], &c, 1) != 1) _exit(3);
    for (int i = 0;; ++i) w.root().write("block" + std::to_string(i), data);
    _exit(0);  // unreachable
  }
  close(ready[1]);
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  close(ready[0]);
  usleep(50 * 1000);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_FALSE(fs::exists(path)) << "a killed writer must not leave a final file";
  EXPECT_TRUE(fs::exists(tmp_path_for(path)));
  EXPECT_THROW(open_complete(path), IOError);

  {
    AtomicWriter w(path);
    w.root().write("x", std::vector<int64_t>{7});
    w.commit();
  }
  EXPECT_FALSE(fs::exists(tmp_path_for(path)));
  File f = open_complete(path);
  EXPECT_EQ(f.root().read<int64_t>("x"), std::vector<int64_t>{7});
  EXPECT_FALSE(f.root().has("first"));
  EXPECT_FALSE(f.root().has_attr("marker"));
}
