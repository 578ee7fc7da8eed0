// core/files: recursive removal and walking without std::filesystem's recursive functions.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <stdexcept>

#include "passlab/core/files.hpp"
#include "support/test_util.hpp"

namespace fs = std::filesystem;
using namespace passlab;

namespace {
// a/x, a/b/y, a/b/c/ (empty), a/link -> outside (a file that must survive)
fs::path make_tree(const fs::path& root, const fs::path& outside) {
  fs::create_directories(root / "a" / "b" / "c");
  test::write_text(root / "a" / "x", "1");
  test::write_text(root / "a" / "b" / "y", "2");
  test::write_text(outside, "keep me");
  fs::create_symlink(outside, root / "a" / "link");
  return root / "a";
}
}  // namespace

TEST(Files, RemoveTreeRemovesEverythingBelowAndNotLinkTargets) {
  test::TempDir t;
  auto a = make_tree(t.path(), t.path() / "outside.txt");
  std::error_code ec;
  // a, a/x, a/b, a/b/y, a/b/c, a/link: six entries.
  EXPECT_EQ(remove_tree(a, ec), 6u);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_FALSE(fs::exists(fs::symlink_status(a)));
  EXPECT_EQ(test::read_text(t.path() / "outside.txt"), "keep me");
}

TEST(Files, RemoveTreeOfAbsentPathIsNoError) {
  test::TempDir t;
  std::error_code ec;
  EXPECT_EQ(remove_tree(t.path() / "absent", ec), 0u);
  EXPECT_FALSE(ec);
  EXPECT_EQ(remove_tree(t.path() / "absent"), 0u);
}

TEST(Files, RemoveTreeReportsWhatItCannotRemove) {
  // Entries of /proc cannot be unlinked, not even by root.
  const fs::path proc = "/proc/self/status";
  if (!fs::exists(proc)) GTEST_SKIP() << "no /proc";
  std::error_code ec;
  EXPECT_EQ(remove_tree(proc, ec), 0u);
  EXPECT_TRUE(ec);
  EXPECT_THROW(remove_tree(proc), fs::filesystem_error);
  EXPECT_TRUE(fs::exists(proc));
}

TEST(Files, ForEachFileVisitsRegularFilesRecursively) {
  test::TempDir t;
  auto a = make_tree(t.path(), t.path() / "outside.txt");
  std::set<std::string> seen;
  for_each_file(a, [&](const fs::path& p) { seen.insert(fs::relative(p, a).string()); });
  EXPECT_EQ(seen, (std::set<std::string>{"x", "b/y"}));  // the link is not followed, c is a directory
  EXPECT_THROW(for_each_file(a, [](const fs::path&) { throw std::runtime_error("stop"); }), std::runtime_error);
  EXPECT_THROW(for_each_file(t.path() / "absent", [](const fs::path&) {}), fs::filesystem_error);
}
