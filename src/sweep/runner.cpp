#include "passlab/sweep/runner.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "passlab/core/error.hpp"
#include "passlab/core/exit_codes.hpp"
#include "passlab/core/files.hpp"
#include "passlab/core/log.hpp"
#include "passlab/core/stop.hpp"
#include "passlab/dist/agreement.hpp"
#include "passlab/dist/communicator.hpp"
#include "passlab/dist/runtime.hpp"
#include "passlab/io/hdf5.hpp"
#include "passlab/pipeline/paths.hpp"
#include "passlab/pipeline/tasks.hpp"
#include "passlab/sweep/claims.hpp"
#include "passlab/sweep/eta.hpp"
#include "passlab/sweep/plan.hpp"
#include "passlab/sweep/results.hpp"
#include "passlab/train/progress.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace passlab::sweep {
namespace {

constexpr int64_t kWait = -1, kDone = -2, kStopped = -3;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// ---- test-only hooks ---------------------------------------------------------------------
std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep))
    if (!cur.empty()) out.push_back(cur);
  return out;
}

void test_hooks(const std::string& id, int64_t attempt) {
  if (const char* hold = std::getenv("PASSLAB_TEST_HOLD_TASK")) {
    for (auto& entry : split(hold, ',')) {
      auto eq = entry.find('=');
      if (eq == std::string::npos || entry.substr(0, eq) != id) continue;
      const auto t0 = Clock::now();
      for (auto& f : split(entry.substr(eq + 1), ':')) {
        while (!fs::exists(f)) {
          if (since(t0) > 300) throw InternalError("PASSLAB_TEST_HOLD_TASK: " + f + " did not appear within 300 s");
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
      }
    }
  }
  if (const char* fail = std::getenv("PASSLAB_TEST_FAIL_TASK")) {
    for (auto& entry : split(fail, ',')) {
      auto at = entry.find('@');
      std::string tid = entry.substr(0, at);
      int64_t upto = at == std::string::npos ? INT64_MAX : std::stoll(entry.substr(at + 1));
      if (tid == id && attempt <= upto)
        throw InternalError("injected failure (PASSLAB_TEST_FAIL_TASK) in task " + id + ", attempt " +
                            std::to_string(attempt));
    }
  }
}

// ---- the leader's view of the sweep --------------------------------------------------------
struct View {
  const Plan& plan;
  int64_t max_retries;
  std::map<int, ResultState> cache;  // complete states never change back
  // Failures that could not be recorded at the task's path (a folder in the way, no space):
  // final for this launch, since the path refuses every result; reported with the rest.
  std::map<int, ResultState> unrecorded;

  ResultState state(int i) {
    if (auto u = unrecorded.find(i); u != unrecorded.end()) return u->second;
    auto it = cache.find(i);
    if (it != cache.end()) return it->second;
    ResultState s = read_state(plan.tasks[i].path);
    if (s.kind == ResultState::Kind::complete) cache[i] = s;
    return s;
  }
  bool final_failed(const ResultState& s) const { return s.kind == ResultState::Kind::failed && s.attempts > max_retries; }
  bool finished(int i) {
    auto s = state(i);
    return s.kind == ResultState::Kind::complete || final_failed(s);
  }
  bool blocked(int i) {
    const Task& t = plan.tasks[i];
    return t.dep >= 0 && final_failed(state(t.dep));
  }
};

struct Choice {
  int64_t cmd = kDone;
  int64_t prev_attempts = 0;
  std::unique_ptr<Claim> claim;
};

Choice choose(View& v, ClaimDir& claims) {
  Choice c;
  if (stop::requested() != 0) {  // this rank's signal, or one relayed from any rank of the job
    c.cmd = kStopped;
    return c;
  }
  bool waiting = false;
  for (size_t i = 0; i < v.plan.tasks.size(); ++i) {
    const Task& t = v.plan.tasks[i];
    if (v.finished(static_cast<int>(i)) || v.blocked(static_cast<int>(i))) continue;
    if (t.dep >= 0 && v.state(t.dep).kind != ResultState::Kind::complete) {
      waiting = true;  // its dense model is still to come (here or elsewhere)
      continue;
    }
    if (claims.state(t.id) == ClaimDir::State::live) continue;  // another group or launcher has it
    auto claim = claims.try_claim(t.id);
    if (!claim) continue;
    // Re-read under the claim: its previous holder may have finished it just now.
    v.cache.erase(static_cast<int>(i));
    ResultState s = v.state(static_cast<int>(i));
    if (s.kind == ResultState::Kind::complete || v.final_failed(s)) continue;  // releases the claim
    if (s.kind == ResultState::Kind::damaged)
      PL_WARN("{} {}: result file is damaged ({}); redoing it", t.kind_name(), t.id, s.error);
    c.cmd = static_cast<int64_t>(i);
    c.prev_attempts = s.kind == ResultState::Kind::failed ? s.attempts : 0;
    c.claim = std::move(claim);
    return c;
  }
  c.cmd = waiting ? kWait : kDone;
  return c;
}

}  // namespace

int SweepReport::exit_code() const {
  // Stopped first: the launch did not finish, and a relaunch (a requeue) is what it needs.
  namespace code = passlab::exit_code;  // the member function hides the namespace's name
  if (stopped) return code::stopped;
  if (failed > 0 || blocked > 0) return code::failed;
  return code::ok;  // pending tasks are held by other launchers, which report them
}

std::string SweepReport::summary() const {
  std::string s = "sweep: " + std::to_string(complete) + "/" + std::to_string(total) + " tasks complete";
  if (failed) s += ", " + std::to_string(failed) + " failed";
  if (blocked) s += ", " + std::to_string(blocked) + " blocked by a failed dense model";
  if (pending) s += ", " + std::to_string(pending) + " still held by other launchers or not started";
  if (stopped) s += " (stopped by " + stop::describe() + ": relaunch to continue)";
  s += "\n";
  for (auto& id : failed_ids) s += "  failed:  " + id + "\n";
  for (auto& id : blocked_ids) s += "  blocked: " + id + "\n";
  return s;
}

void prepare_results_dir(const config::Config& cfg) {
  const fs::path dir = cfg.output.dir;
  // One error_code per folder: a shared one was cleared by the next success, so a file at
  // output.dir/dense went unnoticed until the dense model had trained and could not be written.
  for (const fs::path& p : {dir, dir / "dense", dir / "runs", dir / "work", dir / "claims"}) {
    std::error_code ec;
    fs::create_directories(p, ec);
    std::string why = ec ? ec.message() : "";
    if (why.empty() && !fs::is_directory(p, ec)) why = "exists and is not a directory";
    if (why.empty() && ::access(p.c_str(), W_OK | X_OK) != 0) why = std::string("not writable: ") + std::strerror(errno);
    if (!why.empty()) throw ConfigError("output.dir: cannot use " + p.string() + " as a results folder: " + why);
  }
}

SweepReport run_sweep(const config::Config& cfg, const dist::Runtime& rt, const SweepOptions& opt) {
  Plan plan = make_plan(cfg);
  const fs::path dir = cfg.output.dir;
  prepare_results_dir(cfg);
  if (opt.retry_failed && rt.is_world_leader()) {
    for (auto& t : plan.tasks)
      if (read_state(t.path).kind == ResultState::Kind::failed) {
        PL_INFO("{} {}: failed before; retrying it (--retry-failed)", t.kind_name(), t.id);
        fs::remove(t.path);
      }
  }
  // Control planes over the world and over this run group (the task's communicator `comm` is
  // remade after a failure). Their votes wait politely: a rank waiting here for other groups
  // leaves the cores to the ranks that work.
  auto world = dist::make_mpi_communicator(rt.world(), rt.timeout_s());
  world->vote_barrier();
  PL_INFO("sweep {}: {} dense and {} prune tasks over {} run group(s) of {} rank(s); results in {}", cfg.experiment.name,
          plan.dense_count(), plan.tasks.size() - plan.dense_count(), rt.group_count(), rt.group_size(), dir.string());

  auto group = dist::make_mpi_communicator(rt.group(), rt.timeout_s());
  const bool leader = rt.is_group_leader();
  std::unique_ptr<ClaimDir> claims;
  std::string holder;
  if (leader) {
    claims = std::make_unique<ClaimDir>(dir / "claims", cfg.sweep.heartbeat_timeout_s, "g" + std::to_string(rt.group_index()));
    holder = claims->holder().text();
  }
  View view{plan, cfg.sweep.max_retries, {}, {}};
  auto comm = dist::make_communicator(cfg.dist.backend, rt);
  const bool tty = ::isatty(STDERR_FILENO) && cfg.output.progress != "none" && cfg.output.progress != "lines";
  const bool show = cfg.output.progress != "none";
  const std::string tag = "[sweep g" + std::to_string(rt.group_index()) + "]";
  EtaModel eta;
  SweepReport report;
  bool stopped = false;

  for (;;) {
    Choice choice;
    if (leader) choice = choose(view, *claims);
    std::vector<int64_t> msg = {choice.cmd, choice.prev_attempts};
    group->vote_broadcast(msg);
    const int64_t cmd = msg[0];
    if (cmd == kDone) break;
    if (cmd == kStopped) {
      stopped = true;
      break;
    }
    if (cmd == kWait) {
      if (leader) std::this_thread::sleep_for(std::chrono::duration<double>(opt.poll_s));
      continue;
    }
    const Task& t = plan.tasks[static_cast<size_t>(cmd)];
    int64_t attempt = msg[1] + 1;
    const auto t0 = Clock::now();
    if (leader) {
      journal(dir, holder, "start", t.id, t.describe() + " attempt " + std::to_string(attempt));
      if (show) {
        std::printf("%s %s %s (%s) starts%s\n", tag.c_str(), t.kind_name(), t.id.c_str(), t.describe().c_str(),
                    attempt > 1 ? (" — attempt " + std::to_string(attempt)).c_str() : "");
        std::fflush(stdout);
      }
    }
    int64_t failed = 0;
    bool stopped_here = false;
    std::string error;
    try {
      test_hooks(t.id, attempt);
      if (t.kind == Task::Kind::dense) pipeline::run_dense_task(t.cfg, rt, *comm);
      else pipeline::run_prune_task(t.cfg, rt, *comm);
      // A diverged stage throws TrainingDiverged before its task writes anything.
    } catch (const StopRequested& e) {
      stopped_here = true;  // agreed by the group at a step boundary, its checkpoint written
      error = e.what();
    } catch (const std::exception& e) {
      failed = 1;
      error = e.what();
    }
    // Every rank of the group must agree before anything else happens. A rank that failed
    // alone cannot rejoin its peers (they wait inside the task's collectives): it ends the job
    // after the runtime's timeout rather than hang.
    std::vector<int> failed_ranks;
    try {
      failed_ranks = group->vote(failed != 0, rt.timeout_s() > 0 ? rt.timeout_s() : 0);
    } catch (const DistError& e) {
      rt.abort("task " + t.id + (failed ? " failed on this rank (" + error + ")" : " ended on this rank") +
                   " while the other ranks of its run group went on (" + e.what() + "); ending the job",
               dynamic_cast<const dist::TimedOut*>(&e) ? exit_code::timed_out : exit_code::failed);
    }
    if (failed_ranks.empty() && !group->vote(stopped_here).empty()) {
      // Stopped, not failed: nothing is recorded, the claim is released, the work folder with
      // the stage's checkpoint is kept, and a relaunch resumes the task there.
      if (leader) {
        journal(dir, holder, "stop", t.id, "attempt " + std::to_string(attempt) + ": " + error);
        std::printf("%s %s %s stopped after %s (%s): %s; a relaunch resumes it\n", tag.c_str(), t.kind_name(),
                    t.id.c_str(), train::format_duration(since(t0)).c_str(), stop::describe().c_str(), error.c_str());
        std::fflush(stdout);
      }
      stopped = true;
      break;  // the claim is released with `choice`
    }
    const double secs = since(t0);
    TaskOutcome o{t.kind_name(), t.id, t.path.string(), failed_ranks.empty() ? "complete" : "failed", "", secs};
    if (!failed_ranks.empty()) {
      // The first failing rank's message.
      const int first = failed_ranks.front();
      group->broadcast_bytes(error, first);
      if (first != 0) error = "on group rank " + std::to_string(first) + ": " + error;
      o.error = error;
      if (leader) {
        try {
          write_failure(t.path, t.cfg, t.kind_name(), t.id, error, attempt, secs);
        } catch (const std::exception& e) {
          // The path refuses a result (the error above is often the same): final for this
          // launch, reported at the end, never a reason to leave the group waiting.
          PL_ERROR("{} {}: cannot record the failure at {}: {}", t.kind_name(), t.id, t.path.string(), e.what());
          error += " (the failure could not be recorded either: " + std::string(e.what()) + ")";
          view.unrecorded[static_cast<int>(cmd)] = ResultState{ResultState::Kind::failed, cfg.sweep.max_retries + 1, error};
          attempt = cfg.sweep.max_retries + 1;
        }
        // A retry starts clean: a checkpoint taken after a NaN would fail the same way.
        std::error_code ec;  // best effort, as before
        remove_tree(pipeline::work_dir(t.cfg, t.id), ec);
        journal(dir, holder, "fail", t.id, "attempt " + std::to_string(attempt) + ": " + error);
        const bool final = attempt > cfg.sweep.max_retries;
        std::printf("%s %s %s FAILED (attempt %lld of %lld%s) after %s: %s\n", tag.c_str(), t.kind_name(), t.id.c_str(),
                    static_cast<long long>(attempt), static_cast<long long>(cfg.sweep.max_retries + 1),
                    final ? ", final" : ", will retry", train::format_duration(secs).c_str(), error.c_str());
        std::fflush(stdout);
      }
      comm = dist::make_communicator(cfg.dist.backend, rt);  // a failure may leave it mid-operation
    } else if (leader) {
      Row row = read_row(t.path, dir);
      journal(dir, holder, "end", t.id, "top1 " + std::to_string(row.top1));
      eta.observe(t, secs);
      if (show) {
        std::printf("%s %s %s done: top-1 %.2f%%%s in %s\n", tag.c_str(), t.kind_name(), t.id.c_str(), 100 * row.top1,
                    t.kind == Task::Kind::prune ? (", " + std::to_string(static_cast<int>(std::lround(100 * row.mac_ratio))) +
                                                   "% MACs, " + std::to_string(row.speedup).substr(0, 4) + "x")
                                                      .c_str()
                                                : "",
                    train::format_duration(secs).c_str());
      }
    }
    if (leader) {
      choice.claim.reset();  // released after the result file is final
      if (show) {
        // Overall progress from the files (every launcher's work), ETA from this group's rates.
        int done = 0;
        double left = 0, all_cost = 0;
        std::vector<const Task*> unfinished;
        for (size_t i = 0; i < plan.tasks.size(); ++i) {
          all_cost += plan.tasks[i].cost;
          if (view.finished(static_cast<int>(i)) || view.blocked(static_cast<int>(i))) {
            ++done;
          } else {
            left += plan.tasks[i].cost;
            unfinished.push_back(&plan.tasks[i]);
          }
        }
        const auto secs_left = eta.seconds_left(unfinished, rt.group_count());
        std::string eta_text = secs_left ? train::format_duration(*secs_left) : "?";
        if (tty)
          std::fprintf(stderr, "sweep %s %d/%zu tasks, %.0f%% of the work, ETA %s\n", train::text_bar(1 - left / std::max(all_cost, 1.0)).c_str(),
                       done, plan.tasks.size(), 100 * (1 - left / std::max(all_cost, 1.0)), eta_text.c_str());
        else
          std::printf("%s progress: %d/%zu tasks finished, ETA %s\n", tag.c_str(), done, plan.tasks.size(), eta_text.c_str());
      }
      std::fflush(stdout);
    }
    report.ran.push_back(std::move(o));
  }

  world->vote_barrier();
  // The final account, from the files, made once and shared so every rank exits alike.
  std::vector<int64_t> counts = {0, 0, 0, 0, 0, world->vote(stopped).empty() ? 0 : 1};
  // Failures no file could record, from every group leader: "index\terror\0" each.
  std::string unrecorded;
  for (auto& [i, st] : view.unrecorded) unrecorded += std::to_string(i) + '\t' + st.error + '\0';
  const auto unrecorded_by_rank = world->gather_bytes(unrecorded, 0);
  if (rt.is_world_leader()) {
    View fresh{plan, cfg.sweep.max_retries, {}, {}};
    for (const std::string& part : unrecorded_by_rank)
      for (size_t at = 0, end; (end = part.find('\0', at)) != std::string::npos; at = end + 1) {
        const size_t tab = part.find('\t', at);
        fresh.unrecorded[std::stoi(part.substr(at, tab - at))] =
            ResultState{ResultState::Kind::failed, cfg.sweep.max_retries + 1, part.substr(tab + 1, end - tab - 1)};
      }
    for (size_t i = 0; i < plan.tasks.size(); ++i) {
      auto s = fresh.state(static_cast<int>(i));
      if (s.kind == ResultState::Kind::complete) ++counts[1];
      else if (fresh.final_failed(s)) {
        ++counts[2];
        report.failed_ids.push_back(plan.tasks[i].id + " (" + plan.tasks[i].describe() + "): " + s.error);
      } else if (fresh.blocked(static_cast<int>(i))) {
        ++counts[3];
        report.blocked_ids.push_back(plan.tasks[i].id + " (" + plan.tasks[i].describe() + ")");
      } else {
        ++counts[4];
      }
    }
    counts[0] = static_cast<int64_t>(plan.tasks.size());
    try {
      ClaimDir index_claims(dir / "claims", cfg.sweep.heartbeat_timeout_s, "index");
      if (auto c = index_claims.try_claim("_sweep_index")) write_index(dir);
    } catch (const std::exception& e) {
      PL_WARN("could not rebuild {}: {}", (dir / "sweep.h5").string(), e.what());
    }
  }
  world->vote_broadcast(counts);
  report.total = static_cast<int>(counts[0]);
  report.complete = static_cast<int>(counts[1]);
  report.failed = static_cast<int>(counts[2]);
  report.blocked = static_cast<int>(counts[3]);
  report.pending = static_cast<int>(counts[4]);
  report.stopped = counts[5] != 0;
  return report;
}

std::string summary_table(const std::string& results_dir) { return format_table(scan_rows(results_dir), false); }

}  // namespace passlab::sweep
