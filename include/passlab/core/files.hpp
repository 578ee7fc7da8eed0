#pragma once
// File-tree helpers that do not go through std::filesystem's recursive functions.
//
// Why: LibTorch's libtorch_cpu.so exports unversioned copies of libstdc++'s std::filesystem
// functions (pytorch issue 133437). Where a process binds remove_all or a
// recursive_directory_iterator to those copies, they call libstdc++ internals that the machine's
// libstdc++ may lack and jump to address 0 (seen with LibTorch 2.11 on Debian 12, and on the GPU
// machine's Ubuntu 24.04 test binaries). The plain, non-recursive functions are not affected.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <system_error>

namespace passlab {

// Removes `path` and everything below it (symbolic links are removed, not followed). A path that
// does not exist is not an error. Returns the number of entries removed; on failure sets `ec` to
// the first error and returns what was removed until then.
std::uintmax_t remove_tree(const std::filesystem::path& path, std::error_code& ec);
// As above; throws std::filesystem::filesystem_error on failure.
std::uintmax_t remove_tree(const std::filesystem::path& path);

// Calls `visit` for every regular file below `dir` (recursively, links not followed), in no
// particular order. Throws std::filesystem::filesystem_error when `dir` cannot be walked.
void for_each_file(const std::filesystem::path& dir, const std::function<void(const std::filesystem::path&)>& visit);

}  // namespace passlab
