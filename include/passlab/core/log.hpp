#pragma once
// Logging through spdlog with a "[rank/world]" prefix on every line.
// Default levels: rank 0 logs info, other ranks warn; at debug every rank logs.
// Level precedence: command line > PASSLAB_LOG environment variable > config > default.
#include <spdlog/spdlog.h>

#include <optional>
#include <string>

namespace passlab::log {

enum class Level { trace, debug, info, warn, error, off };

// Parses "trace|debug|info|warn|error|off" (case-insensitive); nullopt when not one of those.
std::optional<Level> parse_level(const std::string& text);
const char* to_string(Level level);

// (Re)configures the default logger for this process. `requested` is the level asked for by the
// CLI/config; the effective level follows the precedence above and the per-rank default.
void init(std::optional<Level> cli_level = std::nullopt, std::optional<Level> config_level = std::nullopt);
// Re-reads the process identity (after MPI_Init) so the prefix shows the true rank.
void refresh_prefix();
Level effective_level();

}  // namespace passlab::log

// Terse aliases used across passlab.
#define PL_TRACE(...) SPDLOG_TRACE(__VA_ARGS__)
#define PL_DEBUG(...) ::spdlog::debug(__VA_ARGS__)
#define PL_INFO(...) ::spdlog::info(__VA_ARGS__)
#define PL_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define PL_ERROR(...) ::spdlog::error(__VA_ARGS__)
