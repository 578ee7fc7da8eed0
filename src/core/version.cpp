#include "passlab/core/version.hpp"

#include "git_sha.inc"

namespace passlab {
const char* version() { return PASSLAB_VERSION; }
const char* git_sha() { return PASSLAB_GIT_SHA; }
}  // namespace passlab
