#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "passlab/config/config.hpp"
#include "passlab/core/error.hpp"
#include "passlab/dist/communicator.hpp"
#include "passlab/dist/runtime.hpp"
#include "passlab/pipeline/probe.hpp"

namespace passlab::cli {
namespace {

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

Command add_probe_command(CLI::App& app) {
  struct Opts {
    std::vector<std::string> files;
    std::vector<std::string> sets;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand(
      "probe", "Score the keep plans of finished run files without fine-tuning: BatchNorm recalibrated on a few training "
               "batches, validation top-1 (a fast tuning signal)");
  sub->add_option("run_files", o->files, "Prune run files (<results>/runs/<run_id>.h5); the dense model is read from <results>/dense/")
      ->required()
      ->check(CLI::ExistingFile);
  add_set_option(sub, o->sets, "of each file's config (e.g. data.root=data or eval.probe_batches=50)");
  sub->add_flag("--json", o->json, "Print a JSON array, one object per file, instead of the table");
  sub->footer(
      "Runs on every rank of the launch as one data-parallel group (e.g. mpirun -np 2); the first rank prints. "
      "Scores the plan alone (a kept prompt is not applied) and reads the validation split only.");
  return {sub, [o](const Context&) {
            dist::RuntimeOptions ro;
            ro.ranks_per_run = 0;  // the whole launch is one group
            dist::Runtime rt(ro);
            auto comm = dist::make_communicator("auto", rt);
            return dist::run_or_abort(rt, [&] {
              std::vector<std::pair<std::string, pipeline::RunFileProbe>> results;
              for (const auto& f : o->files) results.emplace_back(f, pipeline::probe_run_file(f, o->sets, rt, *comm));
              if (!rt.is_world_leader()) return 0;
              if (o->json) {
                std::printf("[");
                for (size_t i = 0; i < results.size(); ++i) {
                  const auto& [file, r] = results[i];
                  std::printf("%s\n  {\"file\": %s, \"run_id\": %s, \"method\": %s, \"budget\": %.17g, \"val_top1\": %.17g, ",
                              i ? "," : "", json_string(file).c_str(), json_string(r.run_id).c_str(),
                              json_string(r.method).c_str(), r.budget, r.val_top1);
                  if (r.probe)
                    std::printf("\"probe_val_top1\": %.17g, \"probe_batches\": %lld}", r.probe->val.top1(),
                                static_cast<long long>(r.probe->batches));
                  else
                    std::printf("\"probe_val_top1\": null, \"probe_batches\": 0}");
                }
                std::printf("\n]\n");
                return 0;
              }
              std::printf("%-13s %-20s %-7s %-15s %-8s %-16s %s\n", "run_id", "method", "budget", "probe_val_top1", "batches",
                          "val_top1 (tuned)", "file");
              for (const auto& [file, r] : results) {
                const std::string probe = r.probe ? std::to_string(100 * r.probe->val.top1()).substr(0, 6) + " %" : "-";
                const std::string tuned = r.val_top1 >= 0 ? std::to_string(100 * r.val_top1).substr(0, 6) + " %" : "-";
                std::printf("%-13s %-20s %-7.3f %-15s %-8lld %-16s %s\n", r.run_id.c_str(), r.method.c_str(), r.budget,
                            probe.c_str(), static_cast<long long>(r.probe ? r.probe->batches : 0), tuned.c_str(),
                            file.c_str());
              }
              std::fflush(stdout);
              return 0;
            });
          }};
}

}  // namespace passlab::cli
