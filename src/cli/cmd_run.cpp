#include <cstdio>
#include <map>
#include <memory>
#include <set>

#include "commands.hpp"
#include "passlab/config/config.hpp"
#include "passlab/core/error.hpp"
#include "passlab/core/process.hpp"
#include "passlab/core/stop.hpp"
#include "passlab/dist/runtime.hpp"
#include "passlab/sweep/plan.hpp"
#include "passlab/sweep/runner.hpp"

namespace passlab::cli {

Command add_run_command(CLI::App& app) {
  struct Opts {
    std::string path;
    std::vector<std::string> sets;
    bool dry_run = false;
    bool retry_failed = false;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("run", "Run an experiment (one task or a sweep) from a TOML config");
  sub->add_option("config", o->path, "Experiment TOML")->required()->check(CLI::ExistingFile);
  add_set_option(sub, o->sets, "of the config");
  sub->add_flag("--dry-run", o->dry_run, "Validate the config and print the planned tasks; train nothing");
  sub->add_flag("--retry-failed", o->retry_failed,
                "Give tasks that failed for good (after sweep.max_retries) a fresh set of attempts");
  sub->footer(
      "Exit status: 0 every task complete; 1 a task failed for good (or is blocked by a failed dense model); "
      "2 bad configuration (an unusable output.dir, a selection that plans no task); 4 a collective timed out "
      "(dist.timeout_s: a rank died or hung) and the job was aborted; 75 stopped by SIGTERM, SIGINT, SIGUSR1 or "
      "SIGUSR2 to any rank: the running stage checkpointed, relaunch to continue (a second signal 2 s or more later "
      "ends it at once).");
  return {sub, [o](const Context& ctx) {
            config::Config c = config::load_file(o->path, o->sets);
            log::init(ctx.cli_level, log::parse_level(c.output.log_level));
            auto tasks = sweep::planned_tasks(c);  // none planned: exit 2 naming the filters
            std::set<std::string> dense;
            for (auto& t : tasks) dense.insert(config::dense_id(t));
            PL_INFO("config {}: {} prune tasks over {} dense models; results in {}", o->path, tasks.size(), dense.size(),
                    c.output.dir);
            const bool leader = process_identity().rank == 0;  // before MPI_Init: from the launcher
            if (leader) std::printf("%-13s %-13s %-14s %-12s %-18s %-7s %s\n", "run_id", "dense_id", "dataset", "arch", "method", "budget",
                        "seed");
            for (auto& t : tasks)
              if (leader) std::printf("%-13s %-13s %-14s %-12s %-18s %-7.3f %lld\n", config::run_id(t).c_str(), config::dense_id(t).c_str(),
                          t.data.dataset.c_str(), t.model.arch.c_str(), t.prune.method.c_str(), t.prune.budget,
                          static_cast<long long>(t.experiment.seed));
            if (o->dry_run) {
              if (leader) {
                auto plan = sweep::make_plan(c);
                double work = 0;
                std::string order;
                for (auto& t : plan.tasks) {
                  work += t.cost;
                  if (order.size() < 400) order += (order.empty() ? "" : ", ") + std::string(t.kind_name()) + " " + t.id;
                }
                std::printf("hand-out order (longest critical path first): %s%s\n", order.c_str(),
                            order.size() >= 400 ? ", ..." : "");
                std::printf("estimated work: %.3g MAC (3 x forward MACs x images, every stage of every task)\n", work);
                std::map<std::string, const config::Config*> stores;  // one task per distinct store
                for (auto& t : plan.tasks) stores.emplace(t.cfg.resolved_store(), &t.cfg);
                for (auto& [store, cfg] : stores)
                  if (!sweep::store_readable(*cfg))
                    std::printf("store %s is not readable here: its tasks' estimates assume %.0f training images\n", store.c_str(),
                              sweep::kAssumedTrainImages);
                std::printf("dry run: the configuration is valid and plans %zu tasks.\n", tasks.size());
              }
              return 0;
            }
            sweep::prepare_results_dir(c);  // before MPI starts: a bad folder exits 2 on every rank
            // Preemption and Ctrl-C (Slurm --signal, scancel, mpirun forwarding SIGUSR1 or sending
            // SIGTERM, a signal to one rank): the group checkpoints its stage and exits 75.
            // Before MPI starts, so a signal during start-up is not lost.
            stop::install_handlers();
            dist::Runtime rt(c.dist);
            dist::install_abort_on_terminate();  // an exception escaping a thread ends the whole job
            log::init(ctx.cli_level, log::parse_level(c.output.log_level));  // prefix with the true rank
            sweep::SweepOptions so;
            so.retry_failed = o->retry_failed;
            return dist::run_or_abort(rt, [&] {
              auto report = sweep::run_sweep(c, rt, so);
              if (rt.is_world_leader()) {
                std::printf("\n%s\n%s", sweep::summary_table(c.output.dir).c_str(), report.summary().c_str());
                std::fflush(stdout);
              }
              return report.exit_code();
            });
          }};
}

}  // namespace passlab::cli
