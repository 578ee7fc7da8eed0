#include "passlab/core/error.hpp"

#include <string>

#include "passlab/core/check.hpp"
#include "passlab/core/process.hpp"
#include "passlab/core/rethrow.hpp"

namespace passlab {

const char* to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::Config: return "config error";
    case ErrorKind::Data: return "data error";
    case ErrorKind::IO: return "I/O error";
    case ErrorKind::Distributed: return "distributed error";
    case ErrorKind::Internal: return "internal error";
    case ErrorKind::NotImplemented: return "not implemented";
    case ErrorKind::Diverged: return "training diverged";
  }
  return "error";
}

namespace detail {

std::string where(const char* file, int line) {
  std::string s = " [" + std::string(file) + ":" + std::to_string(line);
  ProcessIdentity id = process_identity();
  if (id.known) s += ", rank " + std::to_string(id.rank) + "/" + std::to_string(id.world);
  return s + "]";
}

void throw_check(ErrorKind kind, const char* api, const char* expr, const std::string& detail, const char* file,
                 int line) {
  std::string msg = std::string(expr) + " failed";
  if (!detail.empty()) msg += ": " + detail;
  msg += where(file, line);
  (void)api;
  throw_as(kind, msg);
}

}  // namespace detail

void throw_as(ErrorKind kind, const std::string& msg) {
  switch (kind) {
    case ErrorKind::Config: throw ConfigError(msg);
    case ErrorKind::Data: throw DataError(msg);
    case ErrorKind::IO: throw IOError(msg);
    case ErrorKind::Distributed: throw DistError(msg);
    case ErrorKind::NotImplemented: throw NotImplementedError(msg);
    case ErrorKind::Diverged: throw TrainingDiverged(msg);
    case ErrorKind::Internal: break;
  }
  throw InternalError(msg);
}

}  // namespace passlab
