#pragma once
// Shared by the benchmarks that run a PyTorch reference script side by side: run a command and
// read one number from the JSON line it prints.
#include <cstdio>
#include <cstdlib>
#include <string>

// Where the reference scripts and the project's Python are, and passlab's allocator (tcmalloc;
// empty when the build has none): bench/CMakeLists.txt sets them.
#ifndef PASSLAB_BENCH_SOURCE_DIR
#define PASSLAB_BENCH_SOURCE_DIR "."
#endif
#ifndef PASSLAB_BENCH_PYTHON
#define PASSLAB_BENCH_PYTHON "python3"
#endif
#ifndef PASSLAB_BENCH_TCMALLOC
#define PASSLAB_BENCH_TCMALLOC ""
#endif

namespace passlab::bench {

// stdout (and whatever the command redirects into it) of `cmd` run by the shell; empty if it
// cannot start.
inline std::string run_capture(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

// A shell prefix that runs a reference script with passlab's allocator preloaded, so that it and
// passlab allocate alike; "" when the build has no tcmalloc.
inline std::string tcmalloc_preload() {
  const std::string lib = PASSLAB_BENCH_TCMALLOC;
  return lib.empty() ? "" : "LD_PRELOAD=" + lib + " ";
}

// The number after "key": in `json`; -1 when the key is absent.
inline double json_number(const std::string& json, const std::string& key) {
  auto k = json.find("\"" + key + "\":");
  if (k == std::string::npos) return -1;
  return std::strtod(json.c_str() + k + key.size() + 3, nullptr);
}

}  // namespace passlab::bench
