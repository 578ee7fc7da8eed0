// Parity with torchvision: the project's Python environment builds random-initialised
// torchvision models (with non-trivial BN statistics), exports their state_dict, an input and
// torchvision's eval-mode logits to HDF5 (analysis/export_torchvision.py); passlab loads the
// weights by name and must reproduce the logits.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "passlab/io/hdf5.hpp"
#include "passlab/models/factory.hpp"
#include "passlab/models/weights.hpp"
#include "passlab/tensorio/tensor_h5.hpp"
#include "support/test_util.hpp"

using namespace passlab;
using namespace passlab::models;

TEST(TorchvisionParity, LogitsMatch) {
  const std::string python = test::env_or("PASSLAB_PYTHON", "");
  if (python.empty()) GTEST_SKIP() << "PASSLAB_PYTHON not set (run through ctest)";
  test::TempDir tmp;
  const auto script = test::source_dir() / "analysis" / "export_torchvision.py";
  const std::vector<std::string> archs = {"resnet18", "resnet50", "vgg16_bn", "mobilenet_v2"};
  std::string cmd = python + " " + script.string() + " --randomize-bn --seed 5 --num-classes 10 --input-size 64 --batch 2";
  for (auto& a : archs) cmd += " --arch " + a;
  cmd += " --out " + tmp.path().string();
  auto r = test::run_command(cmd);
  ASSERT_EQ(r.exit_code, 0) << cmd << "\n" << r.output;

  for (auto& arch : archs) {
    const auto file = tmp / (arch + ".h5");
    auto net = make_model(arch, 10, 3, 64, "imagenet");
    auto rep = load_weights(*net, file, LoadOptions{net->head()});
    EXPECT_FALSE(rep.head_replaced);
    EXPECT_EQ(rep.loaded, static_cast<int64_t>(state_dict(*net).size()));
    auto f = io::File::open(file);
    at::Tensor x = io::read_tensor(f.root(), "input");
    at::Tensor want = io::read_tensor(f.root(), "logits");
    EXPECT_EQ(f.root().attr_string("arch"), arch);
    net->eval();
    at::Tensor got = net->forward(x);
    const double rel = ((got - want).abs().max() / want.abs().max()).item<double>();
    EXPECT_LT(rel, 1e-4) << arch;
    std::printf("%-13s parity: max |passlab - torchvision| / max |torchvision| = %.3g\n", arch.c_str(), rel);
    // Weight file is big for VGG: drop it as soon as it is checked.
    std::filesystem::remove(file);
  }
}
