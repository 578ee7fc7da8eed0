// Measured forward-latency speed-up of physically pruned networks against their MAC ratio.
// ResNet-18, ResNet-50 and VGG-16-BN at 224 px, batch 32, l1_global at 50 % and 30 % MACs kept
// (random-initialised weights: the speed-up depends only on the kept widths). Prints JSON.
//
//   bench_prune_speedup [--threads 2] [--batch 32] [--size 224] [--warmup 1] [--repeats 3]
//                       [--archs resnet18,resnet50,vgg16_bn] [--budgets 0.5,0.3] [--device cpu|cuda]
//                       [--channels-last 0|1] [--prune-residual 0|1]
//                       [--round-to 1]   (kept channel counts rounded up to a multiple; 8 suits SIMD kernels)
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "passlab/core/log.hpp"
#include "passlab/models/factory.hpp"
#include "passlab/prune/allocate.hpp"
#include "passlab/prune/latency.hpp"
#include "passlab/prune/slice.hpp"

using namespace passlab;

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(item);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  int64_t batch = 32, size = 224, warmup = 1, repeats = 3, round_to = 1;
  std::vector<std::string> archs = {"resnet18", "resnet50", "vgg16_bn"};
  std::vector<double> budgets = {0.5, 0.3};
  std::string device = "cpu";
  bool channels_last = false, prune_residual = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--threads") threads = std::stoi(v);
    else if (k == "--batch") batch = std::stoll(v);
    else if (k == "--size") size = std::stoll(v);
    else if (k == "--warmup") warmup = std::stoll(v);
    else if (k == "--repeats") repeats = std::stoll(v);
    else if (k == "--round-to") round_to = std::stoll(v);
    else if (k == "--channels-last") channels_last = v == "1";
    else if (k == "--prune-residual") prune_residual = v == "1";
    else if (k == "--archs") archs = split(v);
    else if (k == "--budgets") {
      budgets.clear();
      for (auto& b : split(v)) budgets.push_back(std::stod(b));
    } else if (k == "--device") device = v;
    else {
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

  std::printf("{\n  \"bench\": \"prune_speedup\",\n  \"method\": \"l1_global\",\n  \"device\": \"%s\",\n  \"threads\": %d,\n"
              "  \"batch\": %lld,\n  \"input_size\": %lld,\n  \"warmup\": %lld,\n  \"repeats\": %lld,\n  \"round_to\": %lld,\n  \"channels_last\": %s,\n  \"prune_residual\": %s,\n  \"results\": [",
              device.c_str(), threads, static_cast<long long>(batch), static_cast<long long>(size),
              static_cast<long long>(warmup), static_cast<long long>(repeats), static_cast<long long>(round_to), channels_last ? "true" : "false",
              prune_residual ? "true" : "false");
  bool first = true;
  for (const auto& arch : archs) {
    at::manual_seed(0);  // same random weights, hence the same l1_global plan, on every run
    auto dense = models::make_model(arch, 1000, 3, size, "imagenet");
    dense->eval();
    dense->to(dev);
    std::vector<models::PrunableNetworkPtr> nets = {dense};
    std::vector<prune::Allocation> allocs;
    for (double budget : budgets) {
      prune::AllocationOptions opt;
      opt.budget = budget;
      opt.round_to = round_to;
      opt.prune_residual = prune_residual;
      allocs.push_back(prune::allocate_baseline(*dense, "l1_global", opt));
      nets.push_back(prune::make_compact(*dense, allocs.back().keep));
    }
    // Interleaved timing (dense, pruned, pruned, dense, ...): load changes on a shared machine
    // then hit every network alike instead of biasing one of them.
    for (auto& n : nets) (void)prune::measure_latency(*n, batch, 3, size, warmup, 1, channels_last);
    std::vector<std::vector<double>> samples(nets.size());
    for (int64_t r = 0; r < repeats; ++r)
      for (size_t i = 0; i < nets.size(); ++i)
        samples[i].push_back(prune::measure_latency(*nets[i], batch, 3, size, 0, 1, channels_last).samples_ms[0]);
    auto median = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      const size_t n = v.size();
      return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    };
    auto minimum = [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); };
    const auto dense_count = dense->count();
    for (size_t b = 0; b < budgets.size(); ++b) {
      const auto cc = nets[b + 1]->count();
      const double mac_ratio = static_cast<double>(dense_count.macs) / static_cast<double>(cc.macs);
      const double dense_ms = median(samples[0]), pruned_ms = median(samples[b + 1]);
      const double speedup = dense_ms / pruned_ms;
      std::printf("%s\n    {\"arch\": \"%s\", \"budget\": %.2f, \"dense_macs\": %lld, \"pruned_macs\": %lld, \"macs_kept\": %.4f, "
                  "\"dense_params\": %lld, \"pruned_params\": %lld, \"dense_ms\": %.2f, \"pruned_ms\": %.2f, "
                  "\"dense_ms_min\": %.2f, \"pruned_ms_min\": %.2f, \"mac_ratio\": %.3f, \"speedup\": %.3f, "
                  "\"speedup_min\": %.3f, \"speedup_over_mac_ratio\": %.3f}",
                  first ? "" : ",", arch.c_str(), budgets[b], static_cast<long long>(dense_count.macs),
                  static_cast<long long>(cc.macs), allocs[b].ratio(), static_cast<long long>(dense_count.params),
                  static_cast<long long>(cc.params), dense_ms, pruned_ms, minimum(samples[0]), minimum(samples[b + 1]),
                  mac_ratio, speedup, minimum(samples[0]) / minimum(samples[b + 1]), speedup / mac_ratio);
      std::fflush(stdout);
      first = false;
    }
  }
  std::printf("\n  ]\n}\n");
  return 0;
}
