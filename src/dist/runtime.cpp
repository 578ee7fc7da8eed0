#include "passlab/dist/runtime.hpp"

#include <csignal>

#include <ATen/Parallel.h>
#include <sched.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <unistd.h>
#include <vector>

#include "passlab/core/error.hpp"
#include "passlab/core/exit_codes.hpp"
#include "passlab/core/log.hpp"
#include "passlab/core/mpi_check.hpp"
#include "passlab/core/process.hpp"
#include "passlab/dist/agreement.hpp"
#include "passlab/dist/communicator.hpp"
#include "passlab/dist/stop_relay.hpp"

#ifdef PASSLAB_WITH_CUDA
#include "passlab/cuda/cuda_check.hpp"
#include "passlab/cuda/device.hpp"
#endif

namespace passlab::dist {

// ---------------------------------------------------------------------------------------------
// Helpers

namespace {

int usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

std::string this_host() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0) return "?";
  return buf;
}

// Every rank's host name, gathered over `comm` (collective).
std::vector<std::string> hosts_of(MPI_Comm comm, int size) {
  constexpr int kLen = 256;
  std::string me = this_host();
  std::vector<char> mine(kLen, 0), all(static_cast<size_t>(kLen) * size, 0);
  std::copy_n(me.begin(), std::min<size_t>(me.size(), kLen - 1), mine.begin());
  MPI_CHECK(MPI_Allgather(mine.data(), kLen, MPI_CHAR, all.data(), kLen, MPI_CHAR, comm));
  std::vector<std::string> hosts;
  for (int r = 0; r < size; ++r) hosts.emplace_back(&all[size_t(r) * kLen]);
  return hosts;
}

// "hostA (ranks 0-3), hostB (ranks 4-7)": the ranks on each host, as runs of consecutive ranks
// (a host appears twice if ranks interleave).
std::string describe_hosts(const std::vector<std::string>& hosts) {
  std::string out;
  for (size_t first = 0; first < hosts.size();) {
    size_t last = first;
    while (last + 1 < hosts.size() && hosts[last + 1] == hosts[first]) ++last;
    if (!out.empty()) out += ", ";
    out += hosts[first] + (first == last ? " (rank " + std::to_string(first) + ")"
                                         : " (ranks " + std::to_string(first) + "-" + std::to_string(last) + ")");
    first = last + 1;
  }
  return out;
}

bool mpi_usable() {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  return init && !fin;
}

[[noreturn]] void abort_job(const std::string& message, int code) {
  auto id = process_identity();
  PL_ERROR("fatal: {} — aborting the job", message);
  if (auto l = spdlog::default_logger()) l->flush();
  std::fprintf(stderr, "passlab: rank %d/%d on %s failed: %s\n", id.rank, id.world, this_host().c_str(),
               message.c_str());
  std::fflush(stderr);
  if (mpi_usable()) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

// --- collective watchdog -----------------------------------------------------------------------
struct Watchdog {
  std::mutex mu;
  std::condition_variable cv;
  std::thread thread;
  bool stop = false;
  double timeout_s = 0;
  std::atomic<int> depth{0};
  std::atomic<int64_t> since_ns{0};
  std::atomic<const char*> what{""};
  std::string peers;  // "rank 1 on hostB, ...": set before the thread starts, read-only after
};
Watchdog& watchdog() {
  static Watchdog w;
  return w;
}
std::unique_ptr<StopRelay>& stop_relay() {
  static std::unique_ptr<StopRelay> relay;
  return relay;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

CollectiveScope::CollectiveScope(const char* what) {
  auto& w = watchdog();
  if (w.depth.fetch_add(1) == 0) {
    w.what.store(what);
    w.since_ns.store(now_ns());
  }
}

CollectiveScope::~CollectiveScope() {
  auto& w = watchdog();
  if (w.depth.fetch_sub(1) == 1) w.since_ns.store(0);
}

bool start_watchdog(double timeout_s, const std::string& peers) {
  auto& w = watchdog();
  std::lock_guard<std::mutex> lock(w.mu);
  if (w.thread.joinable() || timeout_s <= 0) return false;
  w.stop = false;
  w.peers = peers;
  w.timeout_s = timeout_s;
  w.thread = std::thread([&w] {
    std::unique_lock<std::mutex> lk(w.mu);
    while (!w.stop) {
      w.cv.wait_for(lk, std::chrono::milliseconds(250));
      int64_t since = w.since_ns.load();
      if (since != 0 && double(now_ns() - since) * 1e-9 > w.timeout_s) {
        abort_job(std::string("collective '") + w.what.load() + "' did not complete within dist.timeout_s = " +
                      std::to_string(w.timeout_s) + " s (a peer is dead or hung" +
                      (w.peers.empty() ? "" : "; the other ranks of this rank's run group: " + w.peers) + ")",
                  exit_code::timed_out);
      }
    }
  });
  return true;
}

void stop_watchdog() {
  auto& w = watchdog();
  {
    std::lock_guard<std::mutex> lock(w.mu);
    w.stop = true;
  }
  w.cv.notify_all();
  if (w.thread.joinable()) w.thread.join();
}

// ---------------------------------------------------------------------------------------------
// Runtime

RuntimeOptions RuntimeOptions::from(const config::DistConfig& c) {
  RuntimeOptions o;
  o.ranks_per_run = c.ranks_per_run;
  o.device = c.device;
  o.threads_per_rank = c.threads_per_rank;
  o.timeout_s = c.timeout_s;
  return o;
}

std::string detect_launcher() {
  auto has = [](const char* n) {
    const char* v = std::getenv(n);
    return v && *v;
  };
  if (has("OMPI_COMM_WORLD_SIZE")) return "mpirun";
  if (has("SLURM_STEP_ID") && (has("PMIX_RANK") || has("PMI_RANK") || has("SLURM_PROCID"))) return "srun";
  if (has("PMIX_RANK")) return "pmix";
  return "singleton";
}

// The launcher is read before MPI_Init (a singleton MPI_Init sets PMIX_* itself).
Runtime::Runtime(const RuntimeOptions& opt, int* argc, char*** argv)
    : launcher_(detect_launcher()), mpi_(argc, argv) {
  // A write to the socket of a peer that died (a node lost mid-task, MPI over TCP) must fail and
  // be reported, or be caught by the collective watchdog with the lost rank named; with the
  // default action SIGPIPE ends this rank silently (exit 141, seen under srun across two nodes).
  std::signal(SIGPIPE, SIG_IGN);
  world_ = MpiComm::dup(MPI_COMM_WORLD);
  world_rank_ = world_.rank();
  world_size_ = world_.size();
  set_process_identity(world_rank_, world_size_);
  log::refresh_prefix();

  // Ranks on this node.
  MPI_Comm local = MPI_COMM_NULL;
  MPI_CHECK(MPI_Comm_split_type(world_.get(), MPI_COMM_TYPE_SHARED, world_rank_, MPI_INFO_NULL, &local));
  local_ = MpiComm(local);
  MPI_CHECK(MPI_Comm_set_errhandler(local, MPI_ERRORS_RETURN));
  local_rank_ = local_.rank();
  local_size_ = local_.size();

  // Run groups of ranks_per_run consecutive ranks.
  int64_t rpr = opt.ranks_per_run <= 0 ? world_size_ : opt.ranks_per_run;
  if (rpr > world_size_) {
    PL_WARN("dist.ranks_per_run = {} but the job has {} ranks: one group of {}", rpr, world_size_, world_size_);
    rpr = world_size_;
  }
  if (world_size_ % rpr != 0)
    throw ConfigError("dist.ranks_per_run = " + std::to_string(rpr) + " does not divide the job's " +
                      std::to_string(world_size_) + " ranks; launch a multiple of it");
  group_count_ = int(world_size_ / rpr);
  group_index_ = int(world_rank_ / rpr);
  MPI_Comm group = MPI_COMM_NULL;
  MPI_CHECK(MPI_Comm_split(world_.get(), group_index_, world_rank_, &group));
  group_ = MpiComm(group);
  MPI_CHECK(MPI_Comm_set_errhandler(group, MPI_ERRORS_RETURN));
  group_rank_ = group_.rank();
  group_size_ = group_.size();

  // Device: one GPU per local rank.
  int gpus = 0;
#ifdef PASSLAB_WITH_CUDA
  gpus = cuda::device_count();
#endif
  if (opt.device == "cuda" && gpus == 0)
    throw ConfigError("dist.device = \"cuda\" but no CUDA device is visible" +
                      std::string(
#ifdef PASSLAB_WITH_CUDA
                          ""
#else
                          " (this build has no CUDA support)"
#endif
                          ));
  if (opt.device != "auto" && opt.device != "cpu" && opt.device != "cuda")
    throw ConfigError("dist.device must be auto, cpu or cuda, not \"" + opt.device + "\"");
  if (opt.device != "cpu" && gpus > 0) {
    int index = local_rank_ % gpus;
    if (local_size_ > gpus && local_rank_ == 0)
      PL_WARN("{} ranks on this node share {} GPUs", local_size_, gpus);
#ifdef PASSLAB_WITH_CUDA
    CUDA_CHECK(cudaSetDevice(index));
#endif
    device_ = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
  }

  // Intra-op threads: ranks × threads ≤ cores on this node, and no more than the cores this
  // rank is bound to (mpirun/srun binding: the affinity mask is then already per rank).
  const int hw = std::max(1, int(std::thread::hardware_concurrency()));
  threads_ = opt.threads_per_rank > 0 ? int(opt.threads_per_rank)
                                      : std::max(1, std::min(usable_cores(), hw / local_size_));
  at::set_num_threads(threads_);

  // Where every rank runs: logged by rank 0, and named by the collective watchdog, so that a job
  // ended by a lost peer says which rank on which host it waited for (abort_job names its own).
  std::string peers;
  if (world_size_ > 1) {
    const auto hosts = hosts_of(world_.get(), world_size_);
    for (int r = group_index_ * int(rpr); r < (group_index_ + 1) * int(rpr); ++r)
      if (r != world_rank_)
        peers += (peers.empty() ? "" : ", ") + ("rank " + std::to_string(r) + " on " + hosts[size_t(r)]);
    PL_INFO("dist: hosts: {}", describe_hosts(hosts));
  }
  timeout_s_ = opt.timeout_s;
  if (world_size_ > 1 && timeout_s_ > 0) owns_watchdog_ = start_watchdog(timeout_s_, peers);
  // One relay per process, where this Runtime initialised MPI (and so finalises it after the
  // relay stopped); a Runtime that adopted MPI (a test main) leaves stop requests local.
  if (mpi_.owns()) stop_relay() = std::make_unique<StopRelay>(world_.get());
  PL_INFO("dist: {} ranks via {} ({} per node), {} run group(s) of {}, device {}, {} thread(s) per rank", world_size_,
          launcher_, local_size_, group_count_, group_size_, device_.str(), threads_);
}

Runtime::~Runtime() {
  if (mpi_.owns()) stop_relay().reset();
  if (owns_watchdog_) stop_watchdog();
  group_.reset();
  local_.reset();
  world_.reset();
}  // mpi_ (the first member) finalises MPI last, when it initialised it

void Runtime::abort(const std::string& message, int code) const { abort_job(message, code); }

int run_or_abort(const Runtime& rt, const std::function<int()>& body) {
  try {
    return body();
  } catch (const TimedOut& e) {
    if (rt.world_size() > 1) rt.abort(e.what(), exit_code::timed_out);
    throw;
  } catch (const std::exception& e) {
    if (rt.world_size() > 1) rt.abort(e.what(), exit_code::failed);
    throw;
  } catch (...) {
    if (rt.world_size() > 1) rt.abort("unknown exception", exit_code::failed);
    throw;
  }
}

void install_abort_on_terminate() {
  std::set_terminate([] {
    std::string msg = "std::terminate";
    if (auto ep = std::current_exception()) {
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        msg = std::string("uncaught exception: ") + e.what();
      } catch (...) {
        msg = "uncaught non-standard exception";
      }
    }
    abort_job(msg, exit_code::failed);
  });
}

}  // namespace passlab::dist
