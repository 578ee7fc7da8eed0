#include "passlab/sweep/claims.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#include "passlab/core/error.hpp"
#include "passlab/core/log.hpp"

namespace fs = std::filesystem;

namespace passlab::sweep {
namespace {

std::string errno_text(const std::string& what, const fs::path& p) {
  return what + " " + p.string() + ": " + std::strerror(errno);
}

// /proc/<pid>/stat fields 3 (state) and 22 (start time in clock ticks); state '?' and -1 when
// unreadable.
struct ProcStat {
  char state = '?';
  long long start_ticks = -1;
};

ProcStat proc_stat(long long pid) {
  ProcStat ps;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return ps;
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Field 2 (comm) may contain spaces: fields after it start behind the last ')'.
  auto close = s.rfind(')');
  if (close == std::string::npos || close + 2 >= s.size()) return ps;
  ps.state = s[close + 2];
  std::istringstream rest(s.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22; ++i)
    if (!(rest >> field)) return ps;
  try {
    ps.start_ticks = std::stoll(field);
  } catch (const std::exception&) {
  }
  return ps;
}

long long start_ticks_of(long long pid) { return proc_stat(pid).start_ticks; }

std::string host_name() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown-host";
  return buf;
}

struct FileStat {
  bool exists = false;
  unsigned long long ino = 0;
  double age_s = 0;  // now - mtime
};

FileStat stat_file(const fs::path& p) {
  struct stat st {};
  FileStat r;
  if (::stat(p.c_str(), &st) != 0) {
    if (errno == ENOENT) return r;
    throw IOError(errno_text("cannot stat claim", p));
  }
  r.exists = true;
  r.ino = static_cast<unsigned long long>(st.st_ino);
  struct timespec now {};
  clock_gettime(CLOCK_REALTIME, &now);
  r.age_s = double(now.tv_sec - st.st_mtim.tv_sec) + 1e-9 * double(now.tv_nsec - st.st_mtim.tv_nsec);
  return r;
}

std::string read_small(const fs::path& p) {
  std::ifstream in(p);
  std::string s;
  std::getline(in, s);
  return s;
}

// This host's clock minus the file system's: the mtime the file system gives a file written now.
double measure_clock_skew(const fs::path& dir, const Holder& me) {
  const fs::path probe = dir / (".clock." + me.host + "." + std::to_string(me.pid));
  int fd = ::open(probe.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) throw IOError(errno_text("cannot create the clock probe", probe));
  // Writing sets the mtime on the server of a network file system (and a stat after it reads it).
  const ssize_t n = ::write(fd, "t\n", 2);
  int werr = errno;
  if (::close(fd) != 0 || n != 2) {
    errno = n < 0 ? werr : EIO;
    std::string msg = errno_text("cannot write the clock probe", probe);
    ::unlink(probe.c_str());
    throw IOError(msg);
  }
  FileStat st = stat_file(probe);
  ::unlink(probe.c_str());
  return st.age_s;
}

}  // namespace

double heartbeat_interval_s(double timeout_s) { return std::clamp(timeout_s / 4.0, 0.05, 30.0); }

std::string clock_skew_warning(double skew_s, double timeout_s) {
  const double margin = timeout_s - heartbeat_interval_s(timeout_s);
  if (std::abs(skew_s) <= margin) return "";
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "the clock of host %s is %.1f s %s the results file system's, more than the heartbeat margin of %.1f s "
                "(sweep.heartbeat_timeout_s %.1f s minus the heartbeat interval %.1f s): %s; "
                "synchronise the clocks (NTP)",
                host_name().c_str(), std::abs(skew_s), skew_s > 0 ? "ahead of" : "behind", margin, timeout_s,
                heartbeat_interval_s(timeout_s),
                skew_s > 0 ? "live claims of other launchers will look stale and be taken over"
                           : "claims of dead launchers will be taken over late");
  return buf;
}

std::string Holder::text() const {
  return host + " " + std::to_string(pid) + " " + std::to_string(start_ticks) + " " + label;
}

Holder Holder::parse(const std::string& text) {
  Holder h;
  std::istringstream in(text);
  if (!(in >> h.host >> h.pid >> h.start_ticks)) return Holder{};
  in >> h.label;
  return h;
}

Holder Holder::self(const std::string& label) {
  Holder h;
  h.host = host_name();
  h.pid = static_cast<long long>(getpid());
  h.start_ticks = start_ticks_of(h.pid);
  h.label = label;
  return h;
}

bool Holder::alive_here() const {
  if (host.empty() || host != host_name()) return true;  // cannot tell from here
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return false;
  ProcStat ps = proc_stat(pid);
  // A killed process whose parent has not reaped it yet (ranks orphaned by a killed mpirun,
  // reparented to an init that reaps late) is a zombie: dead, though kill(pid, 0) succeeds.
  if (ps.state == 'Z' || ps.state == 'X') return false;
  long long t = ps.start_ticks;
  // A pid that exists with another start time was reused by a new process.
  return !(t >= 0 && start_ticks >= 0 && t != start_ticks);
}

ClaimDir::ClaimDir(fs::path dir, double timeout_s, std::string label)
    : dir_(std::move(dir)), timeout_s_(timeout_s), me_(Holder::self(label)) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw IOError("cannot create the claims directory " + dir_.string() + ": " + ec.message());
  skew_s_ = measure_clock_skew(dir_, me_);
  if (auto w = clock_skew_warning(skew_s_, timeout_s_); !w.empty()) PL_WARN("claims in {}: {}", dir_.string(), w);
}

ClaimDir::State ClaimDir::state(const std::string& id, Holder* holder) const {
  fs::path p = path_of(id);
  FileStat st = stat_file(p);
  if (!st.exists) return State::free;
  Holder h = Holder::parse(read_small(p));
  if (holder) *holder = h;
  if (st.age_s > timeout_s_) return State::stale;
  // An empty or unreadable content is a claim being written right now: live.
  if (!h.host.empty() && !h.alive_here()) return State::stale;
  return State::live;
}

bool ClaimDir::create_exclusive(const fs::path& p) const {
  int fd = ::open(p.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (errno == EEXIST) return false;
    throw IOError(errno_text("cannot create claim", p));
  }
  std::string line = me_.text() + "\n";
  ssize_t n = ::write(fd, line.data(), line.size());
  int werr = errno;
  if (::close(fd) != 0 || n != static_cast<ssize_t>(line.size())) {
    errno = n < 0 ? werr : EIO;
    std::string msg = errno_text("cannot write claim", p);
    ::unlink(p.c_str());
    throw IOError(msg);
  }
  return true;
}

std::unique_ptr<Claim> ClaimDir::try_claim(const std::string& id) {
  const fs::path p = path_of(id);
  const double beat = heartbeat_interval_s(timeout_s_);
  if (create_exclusive(p)) return std::make_unique<Claim>(p, beat);
  // Held: take it over only when stale.
  Holder old;
  FileStat seen = stat_file(p);
  if (!seen.exists) return create_exclusive(p) ? std::make_unique<Claim>(p, beat) : nullptr;
  if (state(id, &old) != State::stale) return nullptr;
  const fs::path priv = dir_ / (id + ".claim.takeover." + me_.host + "." + std::to_string(me_.pid));
  if (::rename(p.c_str(), priv.c_str()) != 0) {
    if (errno == ENOENT) return nullptr;  // another taker was faster
    throw IOError(errno_text("cannot take over claim", p));
  }
  FileStat got = stat_file(priv);
  if (got.ino != seen.ino) {
    // Lost a race: what was renamed is someone's fresh claim. Put it back (no-replace link).
    if (::link(priv.c_str(), p.c_str()) != 0)
      PL_WARN("claim {}: could not restore a fresh claim taken by mistake ({}); its holder will see it lost", p.string(),
              std::strerror(errno));
    ::unlink(priv.c_str());
    return nullptr;
  }
  ::unlink(priv.c_str());
  PL_WARN("claim of {} held by {} (pid {} on {}) is stale; taking it over", id, old.label, old.pid, old.host);
  return create_exclusive(p) ? std::make_unique<Claim>(p, beat) : nullptr;
}

Claim::Claim(fs::path path, double heartbeat_s) : path_(std::move(path)), heartbeat_s_(heartbeat_s) {
  FileStat st = stat_file(path_);
  if (!st.exists) throw IOError("claim " + path_.string() + " vanished right after it was created");
  ino_ = st.ino;
  thread_ = std::thread([this] { beat(); });
}

void Claim::beat() {
  std::unique_lock<std::mutex> lk(mu_);
  while (!stop_) {
    cv_.wait_for(lk, std::chrono::duration<double>(heartbeat_s_), [this] { return stop_; });
    if (stop_) break;
    FileStat st = {};
    try {
      st = stat_file(path_);
    } catch (const IOError& e) {
      PL_WARN("heartbeat: {}", e.what());
      continue;
    }
    if (!st.exists || st.ino != ino_) {
      if (!lost_.exchange(true)) PL_ERROR("claim {} is no longer this process's (taken over?)", path_.string());
      continue;
    }
    if (::utimensat(AT_FDCWD, path_.c_str(), nullptr, 0) != 0)
      PL_WARN("heartbeat: cannot touch {}: {}", path_.string(), std::strerror(errno));
  }
}

void Claim::release() {
  if (released_) return;
  released_ = true;
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  FileStat st = stat_file(path_);
  if (st.exists && st.ino == ino_ && ::unlink(path_.c_str()) != 0 && errno != ENOENT)
    throw IOError(errno_text("cannot release claim", path_));
}

Claim::~Claim() {
  try {
    release();
  } catch (const std::exception& e) {
    PL_WARN("{}", e.what());
  }
}

}  // namespace passlab::sweep
