#include "passlab/io/result_file.hpp"

#include <cmath>
#include <system_error>

#include "passlab/core/clock.hpp"
#include "passlab/core/error.hpp"
#include "passlab/io/digest.hpp"
#include "passlab/io/hdf5.hpp"
#include "passlab/io/run_schema.hpp"

namespace passlab::io::run_file {
namespace {

constexpr char kNonFinite[] = "non-finite values in ";
constexpr char kNoDigest[] =
    "no content digest: written before digests (passlab 431f8cf or older); `passlab seal DIR` verifies such a "
    "file and adds one";

std::string optional_string(const Group& g, const char* name) {
  try {
    return g.has_attr(name) ? g.attr_string(name) : "";
  } catch (const IOError&) {
    return "";
  }
}

// The summary's numbers that the schema's types cannot bound.
void check_summary(const Group& root, const std::string& kind, std::vector<std::string>& problems) {
  if (!root.has(kSummary) || !root.is_group(kSummary)) return;  // reported by the schema
  const Group s = root.open_group(kSummary);
  auto number = [&](const char* name) {
    try {
      return s.has_attr(name) ? s.attr_double(name) : NAN;
    } catch (const IOError&) {
      return static_cast<double>(NAN);  // a wrong type is reported by the schema
    }
  };
  const double top1 = number(kTop1);
  if (!(top1 >= 0 && top1 <= 1)) problems.push_back("summary top1 is " + std::to_string(top1) + ", not in [0, 1]");
  int64_t macs = 0;
  try {
    macs = s.has_attr(kMacs) ? s.attr_int(kMacs) : 0;
  } catch (const IOError&) {  // a wrong type is reported by the schema
  }
  if (macs <= 0) problems.push_back("summary macs missing or not positive");
  if (kind == kPruneKind) {
    const double ratio = number(kMacRatio);
    if (!(ratio > 0 && ratio <= 1.0 + 1e-9)) problems.push_back("summary mac_ratio is " + std::to_string(ratio));
  }
}

std::string name_list(const std::vector<std::string>& names, size_t shown = 6) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < shown; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > shown) out += " and " + std::to_string(names.size() - shown) + " more";
  return out;
}

// check() without the digest comparison: what `seal` requires of a file before digesting it.
Verdict check_content(const File& f, ContentScan* scan_out) {
  Verdict v;
  const Group& root = f.root();
  std::string status;
  try {
    if (!root.has_attr(kStatus)) {
      v.problems.push_back("no status attribute: not written by passlab, or damaged");
      return v;
    }
    status = root.attr_string(kStatus);
    v.kind = optional_string(root, kKind);
    if (status != kComplete && status != kFailed) {
      v.problems.push_back("status '" + status + "': the task did not finish");
      return v;
    }
    for (auto& p : validate(f)) v.problems.push_back(p);
    ContentScan scan = scan_content(f);
    if (!scan.non_finite.empty()) v.problems.push_back(kNonFinite + name_list(scan.non_finite));
    if (status == kComplete) check_summary(root, v.kind, v.problems);
    else if (optional_string(root, kError).empty()) v.problems.push_back("failed without an error attribute");
    if (scan_out) *scan_out = std::move(scan);
  } catch (const std::exception& e) {  // HDF5 could not read a part of it
    v.problems.push_back(std::string("unreadable: ") + e.what());
  }
  if (v.problems.empty()) v.state = status == kComplete ? Verdict::State::complete : Verdict::State::failed;
  return v;
}

}  // namespace

std::string Verdict::reason() const {
  std::string out;
  for (auto& p : problems) out += (out.empty() ? "" : "; ") + p;
  return out;
}

Verdict check(const File& f) {
  ContentScan scan;
  Verdict v = check_content(f, &scan);
  if (scan.digest.empty()) return v;  // unreadable or unfinished: already unusable
  std::string stored;
  try {
    stored = f.root().has_attr(kDigest) ? f.root().attr_string(kDigest) : "";
  } catch (const IOError&) {
    stored = "(not a string)";
  }
  const bool complete = optional_string(f.root(), kStatus) == kComplete;
  if (stored.empty()) {
    if (!complete) return v;  // failure records written before digests still count attempts
    v.no_digest = true;
    v.problems.push_back(kNoDigest);
  } else if (stored != scan.digest) {
    v.problems.push_back("content digest mismatch: the file says " + stored + ", its content gives " + scan.digest +
                         " (changed after it was written)");
  }
  if (!v.problems.empty()) v.state = Verdict::State::unusable;
  return v;
}

Verdict check(const std::filesystem::path& file) {
  try {
    return check(File::open(file));
  } catch (const std::exception& e) {
    Verdict v;
    v.problems.push_back(e.what());
    return v;
  }
}

File open_usable(const std::filesystem::path& file) {
  File f = File::open(file);
  Verdict v = check(f);
  if (!v.usable()) throw IOError(file.string() + " is not a usable result: " + v.reason());
  return f;
}

void commit_result(AtomicWriter& w, const std::string& status) {
  AtomicWriter::Checks checks;
  checks.before_close = [](File& f) { write_digest(f); };
  checks.before_rename = [&](const std::filesystem::path& tmp) {
    Verdict v = check(tmp);
    const bool as_wanted = status == kComplete ? v.state == Verdict::State::complete : v.state == Verdict::State::failed;
    if (as_wanted) return;
    const std::string what = "refusing to record " + w.final_path().string() + " as " + status + ": " + v.reason();
    for (auto& p : v.problems)
      if (p.rfind(kNonFinite, 0) == 0) throw TrainingDiverged(what);
    throw IOError(what);
  };
  w.commit(status, checks);
}

Verdict seal(const std::filesystem::path& file, bool* sealed) {
  if (sealed) *sealed = false;
  Verdict before = check(file);
  if (!before.no_digest) return before;
  // Everything but the digest must hold before the file is vouched for.
  Verdict rest;
  try {
    rest = check_content(File::open(file), nullptr);
  } catch (const std::exception& e) {
    rest.problems.push_back(e.what());
  }
  if (!rest.usable()) return rest;
  // A copy gets the digest and replaces the file in one rename: a killed seal leaves the original.
  const std::filesystem::path tmp = file.string() + ".seal.tmp";
  std::error_code ec;
  std::filesystem::copy_file(file, tmp, std::filesystem::copy_options::overwrite_existing, ec);
  if (ec) throw IOError("cannot copy " + file.string() + " to " + tmp.string() + ": " + ec.message());
  try {
    File f = File::open(tmp, Mode::read_write);
    f.root().set_attr(kSealedAt, utc_now());
    write_digest(f);
    f.flush();
    f.close();
    fsync_file(tmp);
    Verdict after = check(tmp);
    if (!after.usable()) throw IOError("sealed copy " + tmp.string() + " does not check: " + after.reason());
    std::filesystem::rename(tmp, file, ec);
    if (ec) throw IOError("cannot rename " + tmp.string() + " to " + file.string() + ": " + ec.message());
  } catch (...) {
    std::filesystem::remove(tmp, ec);
    throw;
  }
  if (sealed) *sealed = true;
  return check(file);
}

}  // namespace passlab::io::run_file
