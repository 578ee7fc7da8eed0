#pragma once
// File-based task claims shared by every launcher of a sweep (one mpirun, several mpiruns, a
// SLURM job array) over one results directory: <results>/claims/<task id>.claim.
//
//  * A claim is taken by creating its file with O_CREAT|O_EXCL (atomic on local file systems
//    and NFSv3+), so at most one holder gets it. The file holds "host pid start-ticks label".
//  * While held, a thread refreshes the file's mtime (the heartbeat) every timeout/4 (at most
//    every 30 s) and checks that the file is still its own (same inode).
//  * A claim is stale when its mtime is older than the timeout, or at once when its holder ran
//    on this host and that process (pid and start time) no longer exists. A stale claim is
//    taken over: renamed to a private name (atomic; one taker wins), checked to be the stale
//    file that was seen (inode), removed, then claimed afresh with O_EXCL. A taker that grabbed
//    a fresh claim by mistake (lost a race) links it back.
//  * Releasing removes the file (only if it is still the holder's own).
// Heartbeat age uses the file's mtime against this host's clock: hosts sharing a results
// directory need clocks in sync well within the timeout (NTP). A ClaimDir measures this host's
// clock against the file system's (a probe file's mtime) and warns when they differ by more than
// the heartbeat margin (clock_skew_warning).
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace passlab::sweep {

// Who holds a claim.
struct Holder {
  std::string host;
  long long pid = 0;
  long long start_ticks = 0;  // /proc/<pid>/stat field 22: tells a reused pid apart
  std::string label;          // e.g. "g0" (the run group)
  std::string text() const;   // "host pid start label"
  static Holder parse(const std::string& text);  // empty host when unreadable
  static Holder self(const std::string& label);
  bool alive_here() const;  // same host and the process still exists (unknown host: true)
};

class Claim;

// Seconds between two heartbeats of a claim with this timeout.
double heartbeat_interval_s(double timeout_s);
// Empty when a clock skew of skew_s (this host minus the claims' file system) is within the
// heartbeat margin, timeout - interval (a live claim's mtime is at most one interval old, so a
// larger skew makes live claims look stale, or dead ones live for longer); else the warning.
std::string clock_skew_warning(double skew_s, double timeout_s);

class ClaimDir {
 public:
  ClaimDir(std::filesystem::path dir, double timeout_s, std::string label);
  enum class State { free, live, stale };
  // The state of `id`'s claim as seen now; `holder` (optional) receives its holder.
  State state(const std::string& id, Holder* holder = nullptr) const;
  // Claims `id` (taking over a stale claim); null when someone else holds it.
  std::unique_ptr<Claim> try_claim(const std::string& id);
  const std::filesystem::path& dir() const { return dir_; }
  const Holder& holder() const { return me_; }
  double timeout_s() const { return timeout_s_; }
  // This host's clock minus the file system's, measured when constructed.
  double clock_skew_s() const { return skew_s_; }
  std::filesystem::path path_of(const std::string& id) const { return dir_ / (id + ".claim"); }

 private:
  bool create_exclusive(const std::filesystem::path& p) const;
  std::filesystem::path dir_;
  double timeout_s_;
  Holder me_;
  double skew_s_ = 0;
};

// A held claim: heartbeats until released or destroyed.
class Claim {
 public:
  Claim(std::filesystem::path path, double heartbeat_s);
  ~Claim();
  Claim(const Claim&) = delete;
  Claim& operator=(const Claim&) = delete;
  // Whether the file was found to belong to someone else (or missing) at some heartbeat.
  bool lost() const { return lost_.load(); }
  const std::filesystem::path& path() const { return path_; }
  void release();

 private:
  void beat();
  std::filesystem::path path_;
  unsigned long long ino_ = 0;
  double heartbeat_s_;
  std::atomic<bool> lost_{false};
  bool released_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace passlab::sweep
