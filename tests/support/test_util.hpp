#pragma once
// Helpers shared by passlab's tests.
#include <cstdio>
#include <filesystem>
#include <string>

namespace passlab::test {

// A fresh directory under the system temp dir, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

void write_text(const std::filesystem::path& p, const std::string& text);
std::string read_text(const std::filesystem::path& p);

// Environment variable or a default.
std::string env_or(const char* name, const std::string& fallback);
std::filesystem::path source_dir();  // PASSLAB_SOURCE_DIR (set by ctest)

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};
// Runs a shell command, capturing its output.
CommandResult run_command(const std::string& cmd);

}  // namespace passlab::test
