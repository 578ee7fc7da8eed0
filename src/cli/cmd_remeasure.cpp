// passlab remeasure <results dir> [--set k=v] [--device auto|cpu|cuda] [--threads N] [--force] [--max-runs N]
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "passlab/core/error.hpp"
#include "passlab/core/process.hpp"
#include "passlab/dist/runtime.hpp"
#include "passlab/pipeline/remeasure.hpp"

namespace passlab::cli {

Command add_remeasure_command(CLI::App& app) {
  struct Opts {
    std::string dir;
    std::vector<std::string> sets;
    std::string device = "auto", progress = "auto";
    int64_t threads = 0, max_runs = -1;
    bool force = false;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand(
      "remeasure", "Time every usable run file's dense and compact network again on this machine; write the numbers to "
                   "<results>/measurements.h5 (docs/measurements.md), which the analysis prefers");
  sub->add_option("results", o->dir, "Results directory (output.dir of a sweep)")->required()->check(CLI::ExistingDirectory);
  add_set_option(sub, o->sets, "of each run's config (e.g. data.root=data where the stores moved, or eval.latency_repeats=30)");
  sub->add_option("--device", o->device, "auto|cpu|cuda: where to time (auto: a GPU when one is visible)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  sub->add_option("--threads", o->threads, "Intra-op threads (0: the cores of this machine)")->check(CLI::Range(0, 4096));
  sub->add_flag("--force", o->force, "Time runs already measured on this machine (host and device) again");
  sub->add_option("--max-runs", o->max_runs, "Time at most this many runs, then stop (a later call continues)")
      ->check(CLI::Range(int64_t{0}, INT64_MAX));
  sub->add_option("--progress", o->progress, "auto|bar|lines|none (auto: a bar on a terminal, log lines otherwise)")
      ->check(CLI::IsMember({"auto", "bar", "lines", "none"}));
  sub->footer(
      "Runs as one process (not under mpirun with more than one rank: processes timing side by side would measure their "
      "contention). Each run is timed with its own eval.* settings (interleaved rounds, inference form); runs measured "
      "on this host and device before are skipped, and each entry is written as soon as it is taken, so an interrupted "
      "call loses nothing. The run files are not changed.");
  return {sub, [o](const Context&) {
            const auto who = identity_from_environment();
            if (who.world > 1)
              throw ConfigError("passlab remeasure runs as one process, not " + std::to_string(who.world) +
                                " (processes timing side by side would measure their contention): run it without a launcher");
            dist::RuntimeOptions ro;
            ro.ranks_per_run = 0;
            ro.device = o->device;
            ro.threads_per_rank = o->threads;
            dist::Runtime rt(ro);
            pipeline::RemeasureOptions opt;
            opt.overrides = o->sets;
            opt.force = o->force;
            opt.max_runs = o->max_runs;
            opt.progress = o->progress;
            return dist::run_or_abort(rt, [&] {
              const auto report = pipeline::remeasure_results(o->dir, rt, opt);
              for (const auto& why : report.unusable) std::printf("not usable: %s\n", why.c_str());
              std::printf("%s\n", report.summary().c_str());
              std::fflush(stdout);
              return 0;
            });
          }};
}

}  // namespace passlab::cli
