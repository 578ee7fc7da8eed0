// analysis/load_pruned.py against passlab's own forward pass. For each architecture and stem,
// passlab builds a dense model with non-trivial BatchNorm statistics, prunes every channel group
// to a random subset (prune::make_compact, as a prune task does), and writes a run-like file:
// the compact weights (/weights), /keep, /masks, /summary macs, /config (arch, stem, input size)
// and an input with passlab's eval-mode logits (/input, /logits). The project's Python then
// rebuilds the pruned network from the file alone (`python -m analysis check-logits`), and its
// logits must match passlab's to 1e-4 relative.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <random>
#include <sstream>

#include "passlab/io/hdf5.hpp"
#include "passlab/models/factory.hpp"
#include "passlab/models/ghost_batchnorm.hpp"
#include "passlab/models/weights.hpp"
#include "passlab/prune/slice.hpp"
#include "passlab/tensorio/tensor_h5.hpp"
#include "support/test_util.hpp"

using namespace passlab;

namespace {

struct Case {
  std::string arch, stem;  // stem as written to /config ("auto" exercises the Python side's inference)
  int64_t input_size, in_channels, num_classes;
  bool write_input_size;   // data.input_size in /config (else the Python side infers it from MACs)
  int64_t last_group_cap;  // keep at most this many channels of the last group (0: no cap)
};

void randomize_bn(torch::nn::Module& m, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  at::NoGradGuard ng;
  for (auto& child : m.modules(/*include_self=*/false)) {
    if (auto* bn = child->as<models::GhostBatchNorm2d>()) {
      const int64_t n = bn->channels();
      bn->running_mean.copy_(0.1 * at::randn({n}, gen));
      bn->running_var.copy_(0.5 + at::rand({n}, gen));
      bn->weight.copy_(0.5 + 0.5 * at::rand({n}, gen));
      bn->bias.copy_(0.1 * at::randn({n}, gen));
    }
  }
}

prune::KeepPlan random_plan(const models::Structure& s, std::mt19937_64& rng, int64_t last_cap) {
  prune::KeepPlan plan;
  std::uniform_real_distribution<double> frac(0.25, 0.9);
  for (size_t g = 0; g < s.groups.size(); ++g) {
    const int64_t w = s.groups[g].width;
    int64_t k = std::max<int64_t>(1, static_cast<int64_t>(frac(rng) * static_cast<double>(w)));
    if (last_cap > 0 && g + 1 == s.groups.size()) k = std::min(k, last_cap);
    std::vector<int64_t> idx(static_cast<size_t>(w));
    for (int64_t i = 0; i < w; ++i) idx[static_cast<size_t>(i)] = i;
    std::shuffle(idx.begin(), idx.end(), rng);
    idx.resize(static_cast<size_t>(k));
    std::sort(idx.begin(), idx.end());
    plan.push_back(idx);
  }
  return plan;
}

// Writes the case's run-like file (perturb: added to passlab's logits, times their max).
void write_case(const std::filesystem::path& file, const Case& c, uint64_t seed, double perturb = 0.0) {
  models::ModelSpec spec;
  spec.arch = c.arch;
  spec.num_classes = c.num_classes;
  spec.in_channels = c.in_channels;
  spec.input_size = c.input_size;
  spec.stem = c.stem;
  at::manual_seed(static_cast<int64_t>(seed));
  auto dense = models::make_model(spec);
  randomize_bn(*dense, seed);
  dense->eval();
  std::mt19937_64 rng(seed);
  const auto plan = random_plan(dense->structure(), rng, c.last_group_cap);
  auto compact = prune::make_compact(*dense, plan);
  compact->eval();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed + 7);
  at::Tensor x = at::randn({2, c.in_channels, c.input_size, c.input_size}, gen);
  at::Tensor logits;
  {
    at::NoGradGuard ng;
    logits = compact->forward(x).contiguous();
  }
  ASSERT_GT(logits.abs().max().item<double>(), 1e-3) << c.arch << ": degenerate logits";
  if (perturb != 0.0) logits = logits + perturb * logits.abs().max();  // the checker must notice

  io::AtomicWriter w(file);
  auto& root = w.root();
  root.set_attr("kind", "prune");
  root.set_attr("arch", c.arch);
  root.set_attr("method", "random_test_plan");
  std::ostringstream cfg;
  cfg << "[data]\ninput_size = " << (c.write_input_size ? c.input_size : 0) << "\n[model]\narch = \"" << c.arch
      << "\"\nstem = \"" << c.stem << "\"\n";
  root.write_string("config", cfg.str());
  auto keep = root.create_group("keep");
  auto masks = root.create_group("masks");
  const auto plan_masks = prune::plan_masks(dense->structure(), plan);
  for (size_t g = 0; g < plan.size(); ++g) {
    keep.write(dense->groups()[g].name, plan[g]);
    io::write_tensor(masks, dense->groups()[g].name, plan_masks[g].to(at::kByte));
  }
  auto s = root.create_group("summary");
  s.set_attr("macs", compact->count().macs);
  s.set_attr("dense_macs", dense->count().macs);
  auto weights = root.create_group("weights");
  models::save_weights(*compact, weights);
  io::write_tensor(root, "input", x);
  io::write_tensor(root, "logits", logits);
  w.commit();
}

}  // namespace

TEST(LoadPruned, PythonLogitsMatchPasslab) {
  const std::string python = test::env_or("PASSLAB_PYTHON", "");
  if (python.empty()) GTEST_SKIP() << "PASSLAB_PYTHON not set (run through ctest)";
  const std::vector<Case> cases = {
      {"resnet20", "auto", 28, 1, 10, false, 0},      // stem and input size inferred from MACs
      {"resnet56", "cifar", 32, 3, 100, true, 0},
      {"resnet18", "cifar", 32, 3, 10, true, 0},      // torchvision ResNet with the CIFAR stem
      {"resnet18", "imagenet", 64, 3, 10, true, 0},
      {"resnet50", "auto", 64, 3, 7, true, 0},        // bottleneck, imagenet stem by the auto rule
      {"vgg11_bn", "auto", 32, 3, 10, true, 0},       // CIFAR head (classifier.0 only)
      {"vgg11_bn", "imagenet", 32, 1, 5, true, 8},    // 7x7 head: linear input sliced per channel block
      {"mobilenet_v2", "auto", 32, 3, 10, false, 0},  // CIFAR strides inferred from MACs
      {"mobilenet_v2", "imagenet", 64, 3, 10, true, 0},
  };
  test::TempDir tmp;
  std::string files;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const auto file = tmp / (c.arch + "_" + c.stem + "_" + std::to_string(i) + ".h5");
    write_case(file, c, 100 + i);
    files += " " + file.string();
  }
  const std::string cmd = "cd " + test::source_dir().string() + " && " + python +
                          " -m analysis check-logits --rtol 1e-4" + files + " 2>&1";
  auto r = test::run_command(cmd);
  std::printf("%s", r.output.c_str());
  EXPECT_EQ(r.exit_code, 0) << cmd << "\n" << r.output;
  // One "ok" line per file: nothing was skipped.
  size_t oks = 0;
  for (size_t p = r.output.find("(ok,"); p != std::string::npos; p = r.output.find("(ok,", p + 1)) ++oks;
  EXPECT_EQ(oks, cases.size()) << r.output;

  // The comparison is not vacuous: logits off by 1e-3 of their scale fail it.
  const auto bad = tmp / "perturbed.h5";
  write_case(bad, cases[0], 100, 1e-3);
  auto rb = test::run_command("cd " + test::source_dir().string() + " && " + python +
                              " -m analysis check-logits --rtol 1e-4 " + bad.string() + " 2>&1");
  EXPECT_NE(rb.exit_code, 0) << rb.output;
  EXPECT_NE(rb.output.find("FAIL"), std::string::npos) << rb.output;
}
