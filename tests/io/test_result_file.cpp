// Content digests (io/digest.hpp) and the one notion of a usable result (io/result_file.hpp):
// the digest against the documented byte stream hashed by an independent FNV-1a, each kind of
// damage named, non-finite results refused at commit and by readers, files written before
// digests sealed only when sound, and a writer killed right after its rename.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>

#include "io/result_fixture.hpp"
#include "passlab/core/error.hpp"
#include "passlab/io/digest.hpp"
#include "passlab/io/hdf5.hpp"
#include "passlab/io/result_file.hpp"
#include "passlab/io/run_schema.hpp"
#include "support/test_util.hpp"

using namespace passlab;
namespace fs = std::filesystem;
namespace rf = passlab::io::run_file;
using test::write_minimal;

namespace {

// FNV-1a 64 as its authors publish it (offset basis 14695981039346656037, prime 1099511628211).
uint64_t reference_fnv(const std::string& bytes) {
  uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}
std::string le64(uint64_t v) {
  std::string s;
  for (int i = 0; i < 8; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}
std::string hex16(uint64_t v) {
  char b[17];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
  return b;
}

// A complete dense file as the writers commit it (digest, verified before the rename).
void write_result(const fs::path& p, const std::function<void(io::Group&)>& extra = {}) {
  write_minimal(p, rf::Files::dense, rf::kComplete, extra, [](io::AtomicWriter& w, const std::string& s) { rf::commit_result(w, s); });
}

void edit(const fs::path& p, const std::function<void(io::Group&)>& f) {
  io::File file = io::File::open(p, io::Mode::read_write);
  f(file.root());
  file.close();
}

bool has(const rf::Verdict& v, const std::string& needle) { return v.reason().find(needle) != std::string::npos; }

}  // namespace

TEST(ContentDigest, IsFnv1aOverTheDocumentedStream) {
  test::TempDir t;
  const fs::path p = t / "tiny.h5";
  {
    io::File f = io::File::create(p);
    f.root().set_attr("n", int64_t{5});
    f.root().write<float>("w", std::vector<float>{1.5f, -2.0f});
    f.root().open_dataset("w");
    f.close();
  }
  // "G" "/" NUL, attribute n (i8, rank 0, 5), dataset /w (f4, rank 1, extent 2, two floats).
  std::string stream = std::string("G/") + '\0' + "An" + '\0' + "i8" + '\0' + le64(0) + le64(5);
  float w[2] = {1.5f, -2.0f};
  stream += std::string("D/w") + '\0' + "f4" + '\0' + le64(1) + le64(2) + std::string(reinterpret_cast<char*>(w), 8);
  io::File f = io::File::open(p);
  const auto scan = io::scan_content(f);
  EXPECT_EQ(scan.digest, "fnv1a64:" + hex16(reference_fnv(stream)));
  EXPECT_TRUE(scan.non_finite.empty());
  io::ContentHash h;
  h.update(stream.data(), stream.size());
  EXPECT_EQ(h.hex(), scan.digest);
}

TEST(ContentDigest, SameContentSameDigestWhateverTheWriteOrderAndEveryValueCounts) {
  test::TempDir t;
  auto write = [&](const fs::path& p, bool reversed, double top1) {
    io::File f = io::File::create(p);
    auto body = [&] { f.root().write<int64_t>("keep/g", std::vector<int64_t>{0, 3}); };
    auto attrs = [&] {
      auto s = f.root().require_group("summary");
      s.set_attr("top1", top1);
      s.set_attr("macs", int64_t{7});
    };
    if (reversed) {
      attrs();
      body();
    } else {
      body();
      attrs();
    }
    f.close();
  };
  write(t / "a.h5", false, 0.5);
  write(t / "b.h5", true, 0.5);
  write(t / "c.h5", false, 0.5000001);
  auto digest = [](const fs::path& p) { return io::scan_content(io::File::open(p)).digest; };
  EXPECT_EQ(digest(t / "a.h5"), digest(t / "b.h5"));
  EXPECT_NE(digest(t / "a.h5"), digest(t / "c.h5"));
}

TEST(UsableResult, CommittedFileIsUsableAndEachDamageIsNamed) {
  test::TempDir t;
  const fs::path p = t / "dense.h5";
  write_result(p, [](io::Group& r) { r.write<float>("weights/conv.weight", std::vector<float>{0.1f, 0.2f, 0.3f}); });
  auto v = rf::check(p);
  ASSERT_TRUE(v.usable()) << v.reason();
  EXPECT_FALSE(v.no_digest);
  EXPECT_EQ(io::File::open(p).root().attr_string(rf::kDigest).rfind("fnv1a64:", 0), 0u);
  EXPECT_NO_THROW(rf::open_usable(p));

  auto damaged = [&](const std::string& name, const std::function<void(io::Group&)>& f, const std::string& needle) {
    const fs::path q = t / (name + ".h5");
    fs::copy_file(p, q);
    edit(q, f);
    auto w = rf::check(q);
    EXPECT_FALSE(w.usable()) << name;
    EXPECT_TRUE(has(w, needle)) << name << ": " << w.reason();
    try {
      rf::open_usable(q);
      ADD_FAILURE() << name << ": open_usable accepted it";
    } catch (const IOError& e) {
      EXPECT_NE(std::string(e.what()).find(q.string()), std::string::npos) << e.what();
    }
  };
  // One weight value changed (a flipped bit in a tensor).
  damaged("weight", [](io::Group& r) {
    float x = 0.2f + 1e-6f;
    r.open_dataset("weights/conv.weight").write_rows<float>(1, 1, &x);
  }, "content digest mismatch");
  // A result attribute changed.
  damaged("top1", [](io::Group& r) { r.open_group("summary").set_attr("top1", 0.51); }, "content digest mismatch");
  // The whole /summary deleted: named by the schema (and the digest).
  damaged("summary", [](io::Group& r) { H5_CHECK(H5Ldelete(r.id(), "summary", H5P_DEFAULT)); }, "/summary: missing");
  // A digest that is not that file's.
  damaged("digest", [](io::Group& r) { r.set_attr(rf::kDigest, "fnv1a64:0000000000000000"); }, "the file says fnv1a64:0000000000000000");
  // A non-finite weight written with a fresh digest (as a writer without the check would).
  damaged("nan", [](io::Group& r) {
    float x = NAN;
    r.open_dataset("weights/conv.weight").write_rows<float>(0, 1, &x);
  }, "content digest mismatch");
}

TEST(UsableResult, NonFiniteResultIsRefusedAtCommitAndByEveryReader) {
  test::TempDir t;
  // At commit: nothing appears under the final name, and the .tmp is gone.
  for (auto [name, poison] : std::vector<std::pair<std::string, std::function<void(io::Group&)>>>{
           {"weight", [](io::Group& r) { r.write<float>("weights/bn.running_var", std::vector<float>{1.f, INFINITY}); }},
           {"summary", [](io::Group& r) { r.open_group("summary").set_attr("val_top1", static_cast<double>(NAN)); }},
           {"curve", [](io::Group& r) { r.write<double>("metrics/dense_train_loss", std::vector<double>{2.3, NAN}); }}}) {
    const fs::path p = t / (name + ".h5");
    try {
      write_result(p, poison);
      ADD_FAILURE() << name << ": a non-finite result was committed";
    } catch (const TrainingDiverged& e) {
      EXPECT_NE(std::string(e.what()).find("non-finite values in"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(p)) << name;
    EXPECT_FALSE(fs::exists(io::tmp_path_for(p))) << name;
  }
  // A complete file holding NaN with a matching digest (a writer that skipped the check): refused.
  const fs::path p = t / "nan_sealed.h5";
  write_minimal(p, rf::Files::dense, rf::kComplete,
                [](io::Group& r) { r.write<float>("weights/w", std::vector<float>{NAN}); },
                [](io::AtomicWriter& w, const std::string& s) {
                  io::AtomicWriter::Checks c;
                  c.before_close = [](io::File& f) { io::write_digest(f); };
                  w.commit(s, c);
                });
  auto v = rf::check(p);
  EXPECT_FALSE(v.usable());
  EXPECT_EQ(v.reason(), "non-finite values in /weights/w");
  EXPECT_THROW(rf::open_usable(p), IOError);
  bool sealed = true;
  EXPECT_FALSE(rf::seal(p, &sealed).usable());
  EXPECT_FALSE(sealed);
}

TEST(UsableResult, FilesWrittenBeforeDigestsAreSealedOnlyWhenSound) {
  test::TempDir t;
  const fs::path old = t / "old.h5";
  write_minimal(old, rf::Files::prune, rf::kComplete);  // a plain commit, as 431f8cf wrote
  auto v = rf::check(old);
  EXPECT_FALSE(v.usable());
  EXPECT_TRUE(v.no_digest);
  ASSERT_EQ(v.problems.size(), 1u) << v.reason();
  EXPECT_TRUE(has(v, "written before digests")) << v.reason();
  bool sealed = false;
  auto after = rf::seal(old, &sealed);
  EXPECT_TRUE(sealed);
  EXPECT_TRUE(after.usable()) << after.reason();
  EXPECT_FALSE(io::File::open(old).root().attr_string(rf::kSealedAt).empty());
  EXPECT_TRUE(rf::validate(io::File::open(old)).empty());
  EXPECT_FALSE(fs::exists(old.string() + ".seal.tmp"));
  rf::seal(old, &sealed);  // has a digest now: left alone
  EXPECT_FALSE(sealed);
  // An old file with a non-finite value or a broken summary is not vouched for.
  const fs::path bad = t / "old_nan.h5";
  write_minimal(bad, rf::Files::prune, rf::kComplete, [](io::Group& r) { r.open_group("summary").set_attr("top1", 7.0); });
  auto refused = rf::seal(bad, &sealed);
  EXPECT_FALSE(sealed);
  EXPECT_TRUE(has(refused, "summary top1 is 7.000000, not in [0, 1]")) << refused.reason();
  EXPECT_FALSE(io::File::open(bad).root().has_attr(rf::kDigest));
  // A failure record written before digests still counts as one (its attempts).
  const fs::path failed = t / "failed.h5";
  write_minimal(failed, rf::Files::prune, rf::kFailed);
  EXPECT_EQ(rf::check(failed).state, rf::Verdict::State::failed) << rf::check(failed).reason();
}

TEST(UsableResult, WriterKilledRightAfterTheRenameLeavesOnlyUsableFiles) {
  // The job dies the instant a file gets its final name (the test hook of AtomicWriter::commit):
  // what is left under that name is usable, and a non-finite result never got that far.
  test::TempDir t;
  auto in_child = [&](const fs::path& p, const std::function<void()>& body) {
    pid_t pid = fork();
    if (pid == 0) {
      setenv("PASSLAB_TEST_KILL_AFTER_RENAME", p.filename().c_str(), 1);
      try {
        body();
      } catch (...) {
        _exit(3);
      }
      _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
  };
  const fs::path good = t / "good.h5";
  int status = in_child(good, [&] { write_result(good); });
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the hook did not fire: status " << status;
  EXPECT_TRUE(rf::check(good).usable()) << rf::check(good).reason();

  const fs::path nan = t / "nan.h5";
  status = in_child(nan, [&] { write_result(nan, [](io::Group& r) { r.write<float>("weights/w", std::vector<float>{NAN}); }); });
  ASSERT_TRUE(WIFEXITED(status)) << "killed: the non-finite file was renamed";
  EXPECT_EQ(WEXITSTATUS(status), 3);  // refused with an exception
  EXPECT_FALSE(fs::exists(nan));
}
