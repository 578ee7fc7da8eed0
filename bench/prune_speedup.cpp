// Measured forward-latency speed-up of physically pruned networks against their MAC ratio, in
// the training form (BatchNorm layers) and the folded inference form (models/fold.hpp), with
// PyTorch's timing of the same exported networks beside passlab's (bench/prune_speedup_ref.py,
// analysis/load_pruned.py): "torch" with passlab's allocator (tcmalloc) preloaded, "torch_glibc"
// with glibc malloc; "torch.torchscript" times, in that same tcmalloc process, the TorchScript files
// analysis/load_pruned.save_torchscript writes (the form a user deploys, no Python dispatch per
// module). Random-initialised weights with l1_global plans: the speed-up
// depends only on the kept widths. Prints JSON.
//
//   bench_prune_speedup [--threads 2] [--batch 8] [--size 224] [--rounds 7] [--max-warmup 10]
//                       [--cases resnet18:0.5,resnet50:0.5,vgg16_bn:0.5,resnet20:0.3:r]
//                       [--forms training,auto] (also folded, folded_channels_last) [--device cpu|cuda]
//                       [--round-to 1] [--torch-ref 1|0] [--profile 1] [--export-dir DIR]
//
// A case is ARCH:BUDGET[:r] (r: residual groups pruned too). resnet20/56 run at 32 px with the
// CIFAR stem and 10 classes, the others at --size with the ImageNet stem and 1000 classes. Each
// (case, form) is one prune::measure_speedup call: dense and compact in interleaved rounds, the
// median per-round ratio and its spread, the machine's load before and after (the machine may be
// shared: read the ratios, measured side by side, rather than the absolute times).
// --profile 1 adds "profile" to each CPU result's "torch": where the time goes, per conv and linear
// layer of both networks with its MACs (prune_speedup_ref.py --profile, PyTorch eager on the
// same ATen kernels). --export-dir keeps the exported weight files (ARCH-BUDGET[-r]-dense.h5,
// ...-compact.h5) for analysis/load_pruned.py.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "passlab/core/log.hpp"
#include "passlab/io/hdf5.hpp"
#include "passlab/models/factory.hpp"
#include "passlab/models/weights.hpp"
#include "passlab/prune/allocate.hpp"
#include "passlab/prune/slice.hpp"
#include "passlab/prune/speedup.hpp"

using namespace passlab;

namespace {

std::vector<std::string> split(const std::string& s, char sep = ',') {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep)) out.push_back(item);
  return out;
}

struct Case {
  std::string arch;
  double budget = 0.5;
  bool prune_residual = false;
};

Case parse_case(const std::string& s) {
  const auto f = split(s, ':');
  if (f.size() < 2 || f.size() > 3 || (f.size() == 3 && f[2] != "r"))
    throw ConfigError("--cases: '" + s + "' is not ARCH:BUDGET[:r]");
  return {f[0], std::stod(f[1]), f.size() == 3};
}

// A weight file analysis/load_pruned.py reads: root attribute arch, the state_dict under /weights.
std::filesystem::path export_weights(const models::PrunableNetwork& net, const std::filesystem::path& path) {
  auto f = io::File::create(path);
  f.root().set_attr("arch", net.spec().arch);
  auto w = f.root().create_group("weights");
  models::save_weights(net, w);
  f.close();
  return path;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  int64_t batch = 8, size = 224, rounds = 7, max_warmup = 10, round_to = 1;
  std::vector<Case> cases;
  for (const char* c : {"resnet18:0.5", "resnet50:0.5", "vgg16_bn:0.5", "resnet20:0.3:r"}) cases.push_back(parse_case(c));
  std::vector<prune::InferenceForm> forms = {prune::InferenceForm::training, prune::InferenceForm::folded_auto};
  std::string device = "cpu";
  bool torch_ref = true, torch_profile = false;
  std::string export_dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--threads") threads = std::stoi(v);
    else if (k == "--batch") batch = std::stoll(v);
    else if (k == "--size") size = std::stoll(v);
    else if (k == "--rounds") rounds = std::stoll(v);
    else if (k == "--max-warmup") max_warmup = std::stoll(v);
    else if (k == "--round-to") round_to = std::stoll(v);
    else if (k == "--torch-ref") torch_ref = v == "1";
    else if (k == "--profile") torch_profile = v == "1";
    else if (k == "--export-dir") export_dir = v;
    else if (k == "--device") device = v;
    else if (k == "--cases") {
      cases.clear();
      for (auto& c : split(v)) cases.push_back(parse_case(c));
    } else if (k == "--forms") {
      forms.clear();
      for (auto& f : split(v)) forms.push_back(prune::parse_inference_form(f));
    } else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (device == "cuda" && !torch::cuda::is_available()) {
    std::fprintf(stderr, "--device cuda: no CUDA device available\n");
    return 2;
  }
  passlab::log::init(passlab::log::Level::warn);  // logs go to stdout: keep the JSON clean
  at::set_num_threads(threads);
  const at::Device dev = device == "cuda" ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
  const char* py_env = std::getenv("PASSLAB_PYTHON");
  const std::string python = py_env && *py_env ? py_env : PASSLAB_BENCH_PYTHON;
  const std::filesystem::path tmp = std::filesystem::temp_directory_path() / ("bench_prune_speedup_" + std::to_string(getpid()));
  std::filesystem::create_directories(tmp);

  std::printf("{\n  \"bench\": \"prune_speedup\",\n  \"method\": \"l1_global\",\n  \"device\": \"%s\",\n  \"threads\": %d,\n"
              "  \"batch\": %lld,\n  \"rounds\": %lld,\n  \"round_to\": %lld,\n  \"results\": [",
              device.c_str(), threads, static_cast<long long>(batch), static_cast<long long>(rounds),
              static_cast<long long>(round_to));
  bool first = true;
  for (const auto& c : cases) {
    const bool cifar = c.arch == "resnet20" || c.arch == "resnet56";
    const int64_t s = cifar ? 32 : size, classes = cifar ? 10 : 1000;
    at::manual_seed(0);  // same random weights, hence the same l1_global plan, on every run
    auto dense = models::make_model(c.arch, classes, 3, s, cifar ? "cifar" : "imagenet");
    prune::AllocationOptions opt;
    opt.budget = c.budget;
    opt.round_to = round_to;
    opt.prune_residual = c.prune_residual;
    const auto alloc = prune::allocate_baseline(*dense, "l1_global", opt);
    auto compact = prune::make_compact(*dense, alloc.keep);
    const auto dc = dense->count(), cc = compact->count();
    const double mac_ratio = static_cast<double>(dc.macs) / static_cast<double>(cc.macs);
    std::filesystem::path dense_h5, compact_h5;
    if (torch_ref || !export_dir.empty()) {
      const std::filesystem::path where = export_dir.empty() ? tmp : std::filesystem::path(export_dir);
      std::ostringstream stem;
      stem << c.arch << "-" << c.budget << (c.prune_residual ? "-r" : "");
      std::filesystem::create_directories(where);
      dense_h5 = export_weights(*dense, where / (stem.str() + "-dense.h5"));
      compact_h5 = export_weights(*compact, where / (stem.str() + "-compact.h5"));
    }
    dense->to(dev);
    compact->to(dev);
    for (auto form : forms) {
      prune::SpeedupOptions o;
      o.rounds = rounds;
      o.max_warmup = max_warmup;
      o.form = form;
      const auto r = prune::measure_speedup(*dense, *compact, batch, 3, s, o);
      // PyTorch's timing of the same exported networks, twice: with passlab's allocator preloaded
      // (tcmalloc: the like-for-like comparison of the kernels) and with glibc malloc (what a plain
      // Python process gets; at 224 px its page faults on every pass cost PyTorch ~20 %).
      auto torch_timing = [&](bool tcmalloc, bool profile) -> std::string {
        if (!torch_ref || !dev.is_cpu()) return "null";
        if (tcmalloc && bench::tcmalloc_preload().empty()) return "null";
        std::ostringstream cmd;
        if (tcmalloc) cmd << bench::tcmalloc_preload();
        cmd << python << " " << PASSLAB_BENCH_SOURCE_DIR << "/bench/prune_speedup_ref.py --dense " << dense_h5
            << " --compact " << compact_h5 << " --size " << s << " --batch " << batch << " --threads " << threads
            << " --rounds " << rounds << " --max-warmup " << max_warmup << " --form " << prune::to_string(r.form)
            << (tcmalloc ? " --torchscript" : "") << (profile ? " --profile" : "") << " 2>/dev/null";
        const std::string out = bench::run_capture(cmd.str());
        if (!(bench::json_number(out, "speedup") > 0)) return "{\"error\": \"prune_speedup_ref.py printed no result\"}";
        // One timing of the script's JSON (the first keys of `from`): its times, speed-up and
        // spread, and passlab's compact time over its compact time under `over_key`.
        auto timing = [&](const std::string& from, const char* over_key) {
          const double tc = bench::json_number(from, "compact_ms");
          std::ostringstream f;
          f << "\"dense_ms\": " << bench::json_number(from, "dense_ms") << ", \"compact_ms\": " << tc
            << ", \"speedup\": " << bench::json_number(from, "speedup") << ", \"spread\": " << bench::json_number(from, "spread")
            << ", \"" << over_key << "\": " << (tc > 0 ? r.compact_median_ms / tc : -1);
          return f.str();
        };
        std::ostringstream js;
        js << "{\"allocator\": \"" << (tcmalloc ? "tcmalloc" : "glibc") << "\", "
           << timing(out, "compact_ms_passlab_over_torch");
        // The TorchScript files of the same networks, timed in the same Python process (no
        // per-module Python dispatch): the form a user deploys.
        if (const auto at_script = out.find("\"torchscript\": "); at_script != std::string::npos)
          js << ", \"torchscript\": {" << timing(out.substr(at_script), "compact_ms_passlab_over_torchscript") << "}";
        // The profile is the last key of the script's one-line JSON object: copied as it is.
        const auto at = out.find("\"profile\": "), end = out.rfind('}');
        if (profile && at != std::string::npos && end != std::string::npos && end > at)
          js << ", \"profile\": " << out.substr(at + 11, end - at - 11);
        js << "}";
        return js.str();
      };
      const std::string ref = torch_timing(true, torch_profile), ref_glibc = torch_timing(false, false);
      std::printf("%s\n    {\"arch\": \"%s\", \"budget\": %.2f, \"prune_residual\": %s, \"input_size\": %lld, \"form\": \"%s\", \"requested_form\": \"%s\", "
                  "\"dense_macs\": %lld, \"pruned_macs\": %lld, \"mac_ratio\": %.3f, \"dense_params\": %lld, \"pruned_params\": %lld, "
                  "\"dense_ms\": %.3f, \"pruned_ms\": %.3f, \"speedup\": %.3f, \"spread\": %.3f, \"unreliable\": %s, "
                  "\"speedup_over_mac_ratio\": %.3f, \"warmup_passes\": %lld, \"load_1min\": [%.2f, %.2f], \"cores\": %lld, "
                  "\"torch\": %s, \"torch_glibc\": %s}",
                  first ? "" : ",", c.arch.c_str(), c.budget, c.prune_residual ? "true" : "false", static_cast<long long>(s),
                  prune::to_string(r.form), prune::to_string(form), static_cast<long long>(dc.macs), static_cast<long long>(cc.macs), mac_ratio,
                  static_cast<long long>(dc.params), static_cast<long long>(cc.params), r.dense_median_ms,
                  r.compact_median_ms, r.speedup, r.spread, r.unreliable ? "true" : "false", r.speedup / mac_ratio,
                  static_cast<long long>(r.warmup_passes), r.load_start.load_1min, r.load_end.load_1min,
                  static_cast<long long>(r.load_end.cores), ref.c_str(), ref_glibc.c_str());
      std::fflush(stdout);
      first = false;
    }
  }
  std::printf("\n  ]\n}\n");
  std::filesystem::remove_all(tmp);
  return 0;
}
