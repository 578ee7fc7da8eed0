#include "passlab/core/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "passlab/core/process.hpp"

namespace passlab::log {
namespace {
Level g_effective = Level::info;
std::optional<Level> g_cli, g_config;

spdlog::level::level_enum to_spd(Level l) {
  switch (l) {
    case Level::trace: return spdlog::level::trace;
    case Level::debug: return spdlog::level::debug;
    case Level::info: return spdlog::level::info;
    case Level::warn: return spdlog::level::warn;
    case Level::error: return spdlog::level::err;
    case Level::off: return spdlog::level::off;
  }
  return spdlog::level::info;
}

void apply() {
  ProcessIdentity id = process_identity();
  std::optional<Level> requested = g_cli;
  if (!requested) {
    if (const char* env = std::getenv("PASSLAB_LOG")) requested = parse_level(env);
  }
  if (!requested) requested = g_config;
  // Without an explicit request rank 0 speaks at info and the others only warn; an explicit
  // info/warn/error applies to rank 0 alone, debug and trace to every rank.
  Level level = requested.value_or(Level::info);
  if (id.rank != 0 && level > Level::debug) level = std::max(level, Level::warn);
  g_effective = level;

  auto logger = spdlog::default_logger();
  if (!logger || logger->name() != "passlab") {
    logger = spdlog::stderr_color_mt("passlab");
    spdlog::set_default_logger(logger);
  }
  std::string prefix = "[" + std::to_string(id.rank) + "/" + std::to_string(id.world) + "]";
  logger->set_pattern("[%Y-%m-%d %H:%M:%S.%e] " + prefix + " [%^%l%$] %v");
  logger->set_level(to_spd(level));
  logger->flush_on(spdlog::level::warn);
}
}  // namespace

std::optional<Level> parse_level(const std::string& text) {
  std::string t = text;
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
  if (t == "trace") return Level::trace;
  if (t == "debug") return Level::debug;
  if (t == "info") return Level::info;
  if (t == "warn" || t == "warning") return Level::warn;
  if (t == "error") return Level::error;
  if (t == "off") return Level::off;
  return std::nullopt;
}

const char* to_string(Level l) {
  switch (l) {
    case Level::trace: return "trace";
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
    case Level::off: return "off";
  }
  return "info";
}

void init(std::optional<Level> cli_level, std::optional<Level> config_level) {
  g_cli = cli_level;
  g_config = config_level;
  apply();
}

void refresh_prefix() { apply(); }

Level effective_level() { return g_effective; }

}  // namespace passlab::log
