#pragma once
// Versions of passlab and of every library it was built with and runs on (for --version and
// the provenance attributes of run files).
#include <string>
#include <utility>
#include <vector>

namespace passlab {
std::vector<std::pair<std::string, std::string>> build_info();
}
