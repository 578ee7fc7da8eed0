// The regularisation phase of depgraph and growreg (pipeline/regularise.hpp): it trains a copy
// (the dense network stays as it was), its penalty acts, and an interrupted phase resumes from
// its checkpoint to the same weights as one run straight through, the growing schedule
// continuing at the restored step.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <stdexcept>

#include "passlab/dist/communicator.hpp"
#include "passlab/models/factory.hpp"
#include "passlab/models/weights.hpp"
#include "passlab/pipeline/paths.hpp"
#include "passlab/pipeline/regularise.hpp"
#include "passlab/prune/allocate.hpp"
#include "pass/fixture.hpp"
#include "support/test_util.hpp"

using namespace passlab;

namespace {

struct RegulariseTest : ::testing::Test {
  void SetUp() override { test::write_store(dir.path() / "tiny.h5", 96, 16); }

  config::Config cfg() const {
    auto c = test::tiny_config(dir.path(), "growreg");
    c.regularise.epochs = 2;
    c.regularise.batch_size = 32;
    c.regularise.growreg_interval = 1;
    c.regularise.growreg_delta = 0.5;  // large enough that the step it resumes at matters
    c.regularise.growreg_cap = 10.0;
    return c;
  }
  static models::PrunableNetworkPtr dense(const pipeline::TaskData& d, const config::Config& c) {
    torch::manual_seed(21);
    auto net = models::make_model(pipeline::dense_spec(c, d));
    net->eval();
    return net;
  }
  static std::vector<at::Tensor> tensors(const torch::nn::Module& m) {
    std::vector<at::Tensor> v;
    for (auto& [name, t] : models::state_dict(m)) v.push_back(t.detach().clone());
    return v;
  }
  static bool same(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b, double tol) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (!at::allclose(a[i].to(at::kDouble), b[i].to(at::kDouble), tol, tol)) return false;
    return true;
  }
  test::TempDir dir;
};

}  // namespace

TEST_F(RegulariseTest, InterruptedPhaseResumesToTheWeightsOfAnUninterruptedOne) {
  const config::Config c = cfg();
  auto comm = dist::make_communicator("mpi", test::runtime());
  const pipeline::TaskContext ctx{c, test::runtime(), *comm, config::run_id(c)};
  const pipeline::TaskData d = pipeline::open_data(c);
  auto net = dense(d, c);
  const auto dense_before = tensors(*net);
  const prune::Allocation removal =
      prune::allocate_baseline(*net, "growreg", prune::allocation_options(c.prune), nullptr, 0, 0);
  const pipeline::Penalty penalty = pipeline::growreg_penalty(c, removal, net->structure());

  const pipeline::RegularisedModel straight = pipeline::regularise(ctx, d, *net, penalty);
  const int64_t steps = straight.fit.steps;
  ASSERT_GE(steps, 4);
  EXPECT_EQ(straight.fit.resumed_from_epoch, 0);
  EXPECT_TRUE(same(tensors(*net), dense_before, 0.0)) << "the dense network was modified";
  const auto want = tensors(*straight.net);
  EXPECT_FALSE(same(want, dense_before, 1e-6));
  pipeline::remove_work_dir(c, ctx.id);

  // Fails in the second epoch, after the first epoch's checkpoint.
  const int64_t fail_at = steps / 2 + 1;
  const pipeline::Penalty failing = [&](const models::PrunableNetwork& n, int64_t step) {
    if (step == fail_at) throw std::runtime_error("interrupted");
    return penalty(n, step);
  };
  EXPECT_ANY_THROW(pipeline::regularise(ctx, d, *net, failing));
  const pipeline::RegularisedModel resumed = pipeline::regularise(ctx, d, *net, penalty);
  EXPECT_EQ(resumed.fit.resumed_from_epoch, 1);
  EXPECT_TRUE(same(tensors(*resumed.net), want, 1e-6));

  // The finished phase is kept until the task's work directory goes: a rerun restores it.
  const pipeline::RegularisedModel again = pipeline::regularise(ctx, d, *net, penalty);
  EXPECT_EQ(again.fit.resumed_from_epoch, 2);
  EXPECT_TRUE(same(tensors(*again.net), want, 0.0));
}

TEST_F(RegulariseTest, GrowingPenaltyDrivesTheRemovedChannelsTowardsZero) {
  config::Config c = cfg();
  c.regularise.lr = 0.05;
  c.regularise.growreg_delta = 5.0;
  c.regularise.growreg_cap = 20.0;
  auto comm = dist::make_communicator("mpi", test::runtime());
  const pipeline::TaskContext ctx{c, test::runtime(), *comm, config::run_id(c)};
  const pipeline::TaskData d = pipeline::open_data(c);
  auto net = dense(d, c);
  const auto& s = net->structure();
  const prune::Allocation removal =
      prune::allocate_baseline(*net, "growreg", prune::allocation_options(c.prune), nullptr, 0, 0);
  const auto r = pipeline::regularise(ctx, d, *net, pipeline::growreg_penalty(c, removal, s));
  // Per group: the removed channels' filters shrink far more than the kept ones'.
  int checked = 0;
  for (size_t g = 0; g < s.groups.size(); ++g) {
    const auto& keep = removal.keep[g];
    if (static_cast<int64_t>(keep.size()) == s.groups[g].width) continue;
    at::Tensor kept = at::zeros({s.groups[g].width}, at::kBool);
    kept.index_fill_(0, at::tensor(keep, at::kLong), true);
    const at::Tensor before = net->group_conv_weight(static_cast<int>(g)).detach().flatten(1).norm(2, 1);
    const at::Tensor after = r.net->group_conv_weight(static_cast<int>(g)).detach().flatten(1).norm(2, 1);
    const at::Tensor ratio = after / before;
    EXPECT_LT(ratio.masked_select(~kept).mean().item<double>(), 0.5 * ratio.masked_select(kept).mean().item<double>())
        << s.groups[g].name;
    ++checked;
  }
  EXPECT_GT(checked, 0);
}
