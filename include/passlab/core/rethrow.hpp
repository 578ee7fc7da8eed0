#pragma once
// An error that crossed between ranks as its kind and message (dist::on_leader) is rethrown on
// every rank as the class it was, so each rank's handlers treat it alike.
#include <string>

#include "passlab/core/error.hpp"

namespace passlab {

[[noreturn]] void throw_as(ErrorKind kind, const std::string& what);

}  // namespace passlab
