#pragma once
// Typed errors. Every failure that reaches a user says what kind of thing went wrong
// (bad config, bad data, I/O, distributed runtime) so the CLI can report it and exit cleanly.
#include <stdexcept>
#include <string>

namespace passlab {

enum class ErrorKind { Config, Data, IO, Distributed, Internal, NotImplemented, Diverged };

const char* to_string(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

struct ConfigError : Error {
  explicit ConfigError(const std::string& w) : Error(ErrorKind::Config, w) {}
};
struct DataError : Error {
  explicit DataError(const std::string& w) : Error(ErrorKind::Data, w) {}
};
struct IOError : Error {
  explicit IOError(const std::string& w) : Error(ErrorKind::IO, w) {}
};
struct DistError : Error {
  explicit DistError(const std::string& w) : Error(ErrorKind::Distributed, w) {}
};
struct InternalError : Error {
  explicit InternalError(const std::string& w) : Error(ErrorKind::Internal, w) {}
};
struct NotImplementedError : Error {
  explicit NotImplementedError(const std::string& w) : Error(ErrorKind::NotImplemented, w) {}
};
// A training stage (dense, search, fine-tune) reached a non-finite loss or parameter. Thrown by
// the trainer before anything is written from that state, so no file is committed from it.
struct TrainingDiverged : Error {
  explicit TrainingDiverged(const std::string& w) : Error(ErrorKind::Diverged, w) {}
};

}  // namespace passlab
