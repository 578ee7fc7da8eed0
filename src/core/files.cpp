#include "passlab/core/files.hpp"

#include <ftw.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <exception>
#include <utility>

namespace passlab {
namespace {

// nftw's callback takes no user pointer: the walk's state lives in thread-local variables.
thread_local std::uintmax_t g_removed = 0;
thread_local int g_errno = 0;
thread_local const std::function<void(const std::filesystem::path&)>* g_visit = nullptr;
thread_local std::exception_ptr g_visit_error;

int remove_entry(const char* path, const struct stat*, int, struct FTW*) {
  if (std::remove(path) != 0) {
    g_errno = errno;
    return 1;  // stops the walk
  }
  ++g_removed;
  return 0;
}

// An exception must not unwind through nftw's C frames: it is kept and rethrown after the walk.
int visit_entry(const char* path, const struct stat*, int type, struct FTW*) {
  if (type != FTW_F) return 0;
  try {
    (*g_visit)(path);
  } catch (...) {
    g_visit_error = std::current_exception();
    return 1;
  }
  return 0;
}

}  // namespace

std::uintmax_t remove_tree(const std::filesystem::path& path, std::error_code& ec) {
  ec.clear();
  std::error_code exists_ec;
  if (!std::filesystem::exists(std::filesystem::symlink_status(path, exists_ec))) return 0;
  g_removed = 0;
  g_errno = 0;
  // FTW_DEPTH: children before their directory; FTW_PHYS: a link is an entry, never followed.
  int rc = nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  if (rc != 0) ec = std::error_code(g_errno != 0 ? g_errno : errno, std::generic_category());
  return g_removed;
}

std::uintmax_t remove_tree(const std::filesystem::path& path) {
  std::error_code ec;
  std::uintmax_t n = remove_tree(path, ec);
  if (ec) throw std::filesystem::filesystem_error("remove_tree", path, ec);
  return n;
}

void for_each_file(const std::filesystem::path& dir, const std::function<void(const std::filesystem::path&)>& visit) {
  g_visit = &visit;
  g_visit_error = nullptr;
  int rc = nftw(dir.c_str(), visit_entry, 16, FTW_PHYS);
  const int walk_errno = errno;
  g_visit = nullptr;
  if (g_visit_error) std::rethrow_exception(std::exchange(g_visit_error, nullptr));
  if (rc != 0) throw std::filesystem::filesystem_error("for_each_file", dir, std::error_code(walk_errno, std::generic_category()));
}

}  // namespace passlab
