// The folded inference form (models/fold.hpp) against the network's own eval-mode forward, the
// independent truth: same output within float tolerance, for every architecture family, dense
// and compact (l1_global plans; ResNet-20 with its residual groups pruned), with channels-last
// weights and with masks set. BatchNorm statistics and affine parameters are randomised first, so
// that the fold is far from the identity it would be on freshly built BatchNorms.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <gtest/gtest.h>

#include <string>

#include "models/model_test_util.hpp"
#include "passlab/models/factory.hpp"
#include "passlab/models/fold.hpp"
#include "passlab/prune/allocate.hpp"
#include "passlab/prune/slice.hpp"

using namespace passlab;

namespace {

void randomise_batchnorms(models::PrunableNetwork& net) {
  c10::NoGradGuard no_grad;
  const auto& layers = net.structure().layers;
  for (int i = 0; i < static_cast<int>(layers.size()); ++i) {
    if (layers[i].kind != models::LayerKind::bn) continue;
    net.layer_tensor(i, "weight").uniform_(0.5, 1.5);
    net.layer_tensor(i, "bias").normal_(0.0, 0.2);
    net.layer_tensor(i, "running_mean").normal_(0.0, 0.2);
    net.layer_tensor(i, "running_var").uniform_(0.5, 2.0);
  }
}

// max |a - b| <= tol * max(1, max |b|): float32 sums in a different order (a folded weight
// instead of a conv then a per-channel affine).
void expect_close(const at::Tensor& folded, const at::Tensor& reference, const std::string& what) {
  ASSERT_EQ(folded.sizes(), reference.sizes()) << what;
  const double scale = std::max(1.0, reference.abs().max().item<double>());
  const double err = (folded - reference).abs().max().item<double>();
  EXPECT_LE(err, 1e-4 * scale) << what << ": max abs difference " << err << " at output scale " << scale;
}

struct Case {
  std::string arch, stem;
  int64_t size;
  bool prune_residual;
};

void check_case(const Case& c) {
  at::manual_seed(1);
  auto dense = models::make_model(c.arch, 10, 3, c.size, c.stem);
  randomise_batchnorms(*dense);
  prune::AllocationOptions opt;
  opt.budget = c.prune_residual ? 0.3 : 0.5;
  opt.tolerance = 0.05;
  opt.prune_residual = c.prune_residual;
  auto compact = prune::make_compact(*dense, prune::allocate_baseline(*dense, "l1_global", opt).keep);
  ASSERT_LT(compact->count().macs, dense->count().macs) << c.arch;
  const at::Tensor x = at::randn({2, 3, c.size, c.size});
  for (auto* net : {dense.get(), compact.get()}) {
    const std::string what = c.arch + (net == dense.get() ? " dense" : " compact");
    net->eval();
    c10::NoGradGuard no_grad;
    const at::Tensor reference = net->forward(x);
    expect_close(models::fold_batchnorm(*net)->forward(x), reference, what);
    expect_close(models::fold_batchnorm(*net, {.channels_last = true})->forward(x), reference, what + " channels-last");
  }
}

}  // namespace

TEST(FoldBatchNorm, ResNet20WithResidualGroupsPruned) { check_case({"resnet20", "cifar", 16, true}); }
TEST(FoldBatchNorm, ResNet18ImagenetStem) { check_case({"resnet18", "imagenet", 32, false}); }
TEST(FoldBatchNorm, ResNet50Bottleneck) { check_case({"resnet50", "imagenet", 32, false}); }
TEST(FoldBatchNorm, Vgg16Bn) { check_case({"vgg16_bn", "cifar", 32, false}); }
TEST(FoldBatchNorm, MobileNetV2DepthwiseAndRelu6) { check_case({"mobilenet_v2", "cifar", 16, false}); }

TEST(FoldBatchNorm, MasksAreFoldedLikeTheBatchNorm) {
  at::manual_seed(2);
  auto net = models::make_model("resnet20", 10, 3, 16, "cifar");
  randomise_batchnorms(*net);
  for (int g = 0; g < net->num_groups(); ++g) net->set_mask(g, at::rand({net->structure().groups[g].width}));
  net->eval();
  c10::NoGradGuard no_grad;
  const at::Tensor x = at::randn({2, 3, 16, 16});
  const at::Tensor reference = net->forward(x);
  expect_close(models::fold_batchnorm(*net)->forward(x), reference, "resnet20 masked");
  net->clear_masks();  // the folded copy keeps the masks it was made with
  EXPECT_GT((net->forward(x) - reference).abs().max().item<double>(), 1e-3);
}

TEST(FoldBatchNorm, FoldedNetworkHasNoBatchNormAndIsACopy) {
  at::manual_seed(3);
  auto net = models::make_model("resnet20", 10, 3, 16, "cifar");
  randomise_batchnorms(*net);
  net->eval();
  auto folded = models::fold_batchnorm(*net);
  // ResNet-20: 21 convs (19 + 2 downsample) and 1 linear carry weights; no running statistics.
  EXPECT_EQ(folded->parameters().size(), 2u * 22u);
  EXPECT_TRUE(folded->buffers().empty());
  c10::NoGradGuard no_grad;
  const at::Tensor x = at::randn({1, 3, 16, 16});
  const at::Tensor before = folded->forward(x);
  randomise_batchnorms(*net);  // the source changes; the folded copy does not
  EXPECT_TRUE(at::equal(folded->forward(x), before));
}
