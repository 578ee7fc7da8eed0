#pragma once
#include <string>

namespace passlab {
// passlab's own version and the git sha it was built from ("<sha>[-dirty]" or "unknown").
const char* version();
const char* git_sha();
}  // namespace passlab
