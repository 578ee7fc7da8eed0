// libFuzzer target: any byte string given to the config loader must either load or raise
// passlab::ConfigError — never crash, leak, hang or throw anything else. A config that loads
// must survive the canonical round trip: to_toml -> load -> to_toml is the identity, and the
// run id is unchanged.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "passlab/config/config.hpp"
#include "passlab/core/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  passlab::config::Config c;
  try {
    c = passlab::config::load_string(text, "fuzz.toml");
  } catch (const passlab::ConfigError&) {
    return 0;
  }
  std::string canon = passlab::config::to_toml(c);
  passlab::config::Config again = passlab::config::load_string(canon, "canonical.toml");  // must not throw
  if (passlab::config::to_toml(again) != canon || passlab::config::run_id(again) != passlab::config::run_id(c)) {
    std::fprintf(stderr, "canonical round trip changed the config:\n%s\n---\n%s\n", canon.c_str(),
                 passlab::config::to_toml(again).c_str());
    std::abort();
  }
  size_t product = 1;
  for (size_t n : {c.sweep.archs.size(), c.sweep.datasets.size(), c.sweep.budgets.size(), c.sweep.methods.size(),
                   c.sweep.seeds.size()})
    product *= std::max<size_t>(n, 1);
  if (product <= 4096) {
    auto tasks = passlab::config::expand_tasks(c);
    if (tasks.size() > product) std::abort();
  }
  return 0;
}
