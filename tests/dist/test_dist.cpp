// Single-process tests of the dist module (the runtime as a singleton) and the failure tests,
// which launch `mpirun -np 2` on tests/dist/helpers/fault_helper.cpp.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <unistd.h>
#include <memory>
#include <set>

#include "passlab/core/error.hpp"
#include "passlab/dist/communicator.hpp"
#include "passlab/dist/reducer.hpp"
#include "passlab/dist/runtime.hpp"
#include "support/test_util.hpp"

using namespace passlab;

namespace {

// One Runtime for the whole binary (MPI can be initialised once per process); torn down, and
// MPI finalised, after the last test.
std::unique_ptr<dist::Runtime> g_rt;
class RuntimeEnv : public ::testing::Environment {
 public:
  void SetUp() override { g_rt = std::make_unique<dist::Runtime>(dist::RuntimeOptions{1, "auto", 1, 60.0}); }
  void TearDown() override { g_rt.reset(); }
};
[[maybe_unused]] auto* g_env = ::testing::AddGlobalTestEnvironment(new RuntimeEnv);

std::vector<at::Tensor> tensors(const std::vector<int64_t>& numels, at::ScalarType dt = at::kFloat) {
  std::vector<at::Tensor> out;
  for (auto n : numels) out.push_back(at::zeros({n}, dt));
  return out;
}

}  // namespace

TEST(Runtime, SingletonWithoutLauncher) {
  EXPECT_EQ(g_rt->world_size(), 1);
  EXPECT_EQ(g_rt->world_rank(), 0);
  EXPECT_EQ(g_rt->local_size(), 1);
  EXPECT_EQ(g_rt->group_count(), 1);
  EXPECT_TRUE(g_rt->is_group_leader());
  EXPECT_EQ(g_rt->threads(), 1);
  // (After a singleton MPI_Init, Open MPI sets PMIX_* itself: the launcher is read before.)
  if (!std::getenv("OMPI_COMM_WORLD_SIZE") && !std::getenv("SLURM_STEP_ID")) {
    EXPECT_EQ(g_rt->launcher(), "singleton");
  }
  EXPECT_TRUE(g_rt->device().is_cpu() || g_rt->device().is_cuda());
}

TEST(Runtime, BackendSelection) {
  auto list = dist::backends(*g_rt);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].name, "nccl");  // preferred when available
  EXPECT_EQ(list[1].name, "mpi");
  EXPECT_TRUE(list[1].available);
  auto c = dist::make_communicator("auto", *g_rt);
  EXPECT_EQ(std::string(c->backend()), g_rt->device().is_cuda() ? "nccl" : "mpi");
  if (!g_rt->device().is_cuda()) {
    EXPECT_THROW(dist::make_communicator("nccl", *g_rt), ConfigError);
  }
  EXPECT_THROW(dist::make_communicator("gloo", *g_rt), ConfigError);
}

TEST(Runtime, BadOptionsAreConfigErrors) {
  EXPECT_THROW(dist::Runtime(dist::RuntimeOptions{1, "tpu", 1, 0}), ConfigError);
}

TEST(Communicator, SingleRankIsIdentity) {
  auto c = dist::make_communicator("mpi", *g_rt);
  auto t = at::arange(10, at::kFloat);
  c->allreduce(t, dist::ReduceOp::mean);
  EXPECT_TRUE(at::equal(t, at::arange(10, at::kFloat)));
  auto b = at::arange(10, at::kBFloat16);
  c->allreduce(b, dist::ReduceOp::sum);
  EXPECT_TRUE(at::equal(b, at::arange(10, at::kBFloat16)));
  EXPECT_THROW(c->allreduce(t = at::ones({3}, at::kBool), dist::ReduceOp::sum), ConfigError);
  auto i = at::ones({3}, at::kLong);
  EXPECT_THROW(c->allreduce(i, dist::ReduceOp::mean), ConfigError);
  EXPECT_EQ(c->allgather(int64_t(5)), std::vector<int64_t>{5});
}

TEST(BucketPlan, FirstBucketSmallRestUpToCap) {
  // Sizes in floats (4 bytes); reverse order: 6, 5, 4, 3, 2, 1, 0.
  auto p = tensors({10, 10, 10, 10, 10, 10, 10});
  auto plan = dist::plan_buckets(p, /*bucket=*/100, /*first=*/40);
  ASSERT_EQ(plan.size(), 4u);  // [6] (40 B), [5 4] (80 B), [3 2], [1 0]
  EXPECT_EQ(plan[0].params, (std::vector<size_t>{6}));
  EXPECT_EQ(plan[1].params, (std::vector<size_t>{5, 4}));
  EXPECT_EQ(plan[3].params, (std::vector<size_t>{1, 0}));
  EXPECT_EQ(plan[1].offsets, (std::vector<int64_t>{0, 10}));
  EXPECT_EQ(plan[1].numel, 20);
}

TEST(BucketPlan, OversizedParameterGetsItsOwnBucket) {
  auto p = tensors({1, 1000, 1});
  auto plan = dist::plan_buckets(p, 16, 16);
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[1].params, (std::vector<size_t>{1}));
  EXPECT_EQ(plan[1].numel, 1000);
}

TEST(BucketPlan, DtypesAreNotMixed) {
  std::vector<at::Tensor> p = {at::zeros({4}, at::kFloat), at::zeros({4}, at::kDouble), at::zeros({4}, at::kFloat)};
  auto plan = dist::plan_buckets(p, 1 << 20, 1 << 20);
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].params, (std::vector<size_t>{2, 0}));
  EXPECT_EQ(plan[0].dtype, at::kFloat);
  EXPECT_EQ(plan[1].params, (std::vector<size_t>{1}));
  EXPECT_EQ(plan[1].dtype, at::kDouble);
}

TEST(Reducer, GradientsBecomeBucketViews) {
  auto c = dist::make_communicator("mpi", *g_rt);
  std::vector<at::Tensor> params = {at::ones({3, 2}).set_requires_grad(true), at::ones({5}).set_requires_grad(true)};
  params[0].mutable_grad() = at::full({3, 2}, 2.0);  // an existing gradient is kept
  dist::GradientReducer red(*c, params);
  EXPECT_EQ(red.plan().size(), 1u);
  EXPECT_EQ(red.bytes(), 11 * 4);
  EXPECT_TRUE(at::equal(params[0].grad(), at::full({3, 2}, 2.0)));
  EXPECT_TRUE(at::equal(params[1].grad(), at::zeros({5})));
  // A replaced gradient is copied into the bucket and the view re-installed.
  params[1].mutable_grad() = at::full({5}, 3.0);
  red.reduce();
  EXPECT_TRUE(at::equal(params[1].grad(), at::full({5}, 3.0)));
  red.zero_grad();
  EXPECT_EQ(params[0].grad().abs().sum().item<float>(), 0.0f);
}

// --- failure: a rank that throws (or hangs) ends the whole job promptly ------------------------

namespace {
// Names of the environment variables this process started with, read during static
// initialisation, before any MPI_Init: what the launcher's user set (say OMPI_MCA_plm=isolated on a
// machine without ssh) as opposed to what Open MPI's singleton start adds later.
std::set<std::string> environment_names() {
  std::set<std::string> names;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    names.insert(kv.substr(0, kv.find('=')));
  }
  return names;
}
const std::set<std::string> kEnvironmentBeforeMpi = environment_names();

test::CommandResult run_fault_helper(const std::string& mode, double* seconds) {
  auto build = std::filesystem::path(test::env_or("PASSLAB_BUILD_DIR", "."));
  auto helper = build / "tests" / "passlab_dist_fault_helper";
  if (!std::filesystem::exists(helper)) helper = build / "passlab_dist_fault_helper";
  // This process is an MPI singleton: Open MPI put OMPI_*/PMIX_* variables in its environment
  // that would make the child mpirun think it runs inside a job. Drop those it added; keep the
  // ones the process was started with.
  std::string scrub = "env";
  for (const auto& name : environment_names()) {
    bool mpi = name.rfind("OMPI_", 0) == 0 || name.rfind("PMIX_", 0) == 0;
    if (mpi && !kEnvironmentBeforeMpi.count(name)) scrub += " -u " + name;
  }
  // `timeout` is a safety net so a regression fails the test instead of hanging ctest.
  std::string cmd = scrub + " timeout -s KILL 120 mpirun -np 2 --oversubscribe " + helper.string() + " " + mode;
  auto t0 = std::chrono::steady_clock::now();
  auto r = test::run_command(cmd);
  *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}
}  // namespace

TEST(Failure, HelperSucceedsWithoutFault) {
  double s = 0;
  auto r = run_fault_helper("ok", &s);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("fault_helper ok: sum 2000"), std::string::npos) << r.output;
}

TEST(Failure, ThrowingRankAbortsTheJobWithinThirtySeconds) {
  double s = 0;
  auto r = run_fault_helper("throw", &s);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_LT(s, 30.0) << r.output;
  EXPECT_NE(r.output.find("injected failure on rank 1"), std::string::npos) << r.output;
}

TEST(Failure, HungPeerIsDetectedByTheCollectiveTimeout) {
  double s = 0;
  auto r = run_fault_helper("hang", &s);
  EXPECT_EQ(r.exit_code, 4) << r.output;  // exit_code::timed_out, not a task failure (1) nor "not implemented" (3)
  EXPECT_LT(s, 30.0) << r.output;
  EXPECT_NE(r.output.find("did not complete within dist.timeout_s"), std::string::npos) << r.output;
}

// The Runtime owns MPI initialisation through an RAII member constructed first: a ConfigError
// from a later part of its constructor still finalises MPI (a fresh 2-rank job of its own, since
// this process's MPI belongs to the test environment).
TEST(Runtime, ConstructorThatThrowsStillFinalisesMpi) {
  double s = 0;
  auto r = run_fault_helper("config-error", &s);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("fault_helper config-error: initialized 1, finalized 1 (dist.device must be auto, cpu or cuda"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("finalized 0"), std::string::npos) << r.output;
}

TEST(Failure, CrashedRankEndsTheJob) {
  double s = 0;
  auto r = run_fault_helper("segv", &s);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_LT(s, 30.0) << r.output;
}
