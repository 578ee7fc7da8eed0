#pragma once
// One notion of a usable result (issue 19), for every reader that trusts a dense or run file:
// the sweep's finished-or-redo decision, `passlab inspect --check`, a prune task loading its
// dense model, the table; analysis/integrity.py mirrors it for the report. A complete file is
// usable when it is
//   complete      status "complete";
//   schema-valid  io::run_file::validate() finds nothing (docs/run-file.md);
//   digest-valid  its `digest` equals the digest of its content (io/digest.hpp);
//   finite        no floating value anywhere (weights, curves, summary) is NaN or infinite,
//                 and the summary's numbers are in range (top-1 in [0, 1], MACs > 0, ...).
// Anything else is redone by a relaunch, named by --check and left out of the report. Writers
// commit through commit_result(), which refuses a file that would not pass, so no path leaves
// a non-finite or otherwise unusable file under a result's name.
#include <filesystem>
#include <string>
#include <vector>

namespace passlab::io {

class AtomicWriter;
class File;

namespace run_file {

struct Verdict {
  enum class State { complete, failed, unusable };
  State state = State::unusable;
  std::string kind;                   // dense or prune, when readable
  std::vector<std::string> problems;  // why the file is unusable, each naming what is wrong
  bool no_digest = false;             // complete, but written before digests: `passlab seal` may seal it
  bool usable() const { return state == State::complete; }
  std::string reason() const;  // the problems, "; "-separated
};

// A failure record (status failed) is a valid file when it follows the schema, names its error
// and, when it has a digest, matches it. Never throws for a missing, unreadable or bad file.
Verdict check(const std::filesystem::path& file);
Verdict check(const File& f);

// Opens a usable complete file; IOError naming the file and every problem otherwise.
File open_usable(const std::filesystem::path& file);

// Commits a dense or run file (status complete or failed) written through `w`: writes its
// digest, then reopens the synced .tmp from disk and renames it only if check() gives that
// status. A non-finite value refuses it with TrainingDiverged naming the entries, any other
// problem with IOError.
void commit_result(AtomicWriter& w, const std::string& status);

// `passlab seal`: a complete file without a digest (written before digests) that passes every
// other part of check() gets its digest and `sealed_at`, through a copy renamed over it. A file
// that already has a digest is left alone. Returns the file's verdict afterwards; `sealed` says
// whether this call sealed it.
Verdict seal(const std::filesystem::path& file, bool* sealed = nullptr);

}  // namespace run_file
}  // namespace passlab::io
