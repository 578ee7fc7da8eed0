#pragma once
// Wall-clock timestamps written into result files and the sweep journal.
#include <string>

namespace passlab {

// Now in UTC, ISO 8601 to the second: "2026-11-30T01:25:00Z".
std::string utc_now();

}  // namespace passlab
