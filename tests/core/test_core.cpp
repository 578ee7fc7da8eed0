#include <gtest/gtest.h>

#include <cstdlib>

#include "passlab/core/check.hpp"
#include "passlab/core/error.hpp"
#include "passlab/core/log.hpp"
#include "passlab/core/mpi_check.hpp"
#include "passlab/core/process.hpp"
#include "passlab/core/version.hpp"

using namespace passlab;

namespace {
struct EnvGuard {
  std::vector<std::string> names;
  explicit EnvGuard(std::vector<std::string> n) : names(std::move(n)) {
    for (auto& x : names) unsetenv(x.c_str());
  }
  ~EnvGuard() {
    for (auto& x : names) unsetenv(x.c_str());
  }
};
const std::vector<std::string> kRankVars = {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMIX_SIZE",
                                            "PMI_RANK", "PMI_SIZE", "SLURM_PROCID", "SLURM_NTASKS"};
}  // namespace

TEST(Process, EnvironmentPrecedenceOpenMpiThenPmixThenSlurm) {
  EnvGuard g(kRankVars);
  EXPECT_FALSE(identity_from_environment().known);
  setenv("SLURM_PROCID", "0", 1);  // under mpirun inside a job every rank sees 0
  setenv("SLURM_NTASKS", "1", 1);
  setenv("PMIX_RANK", "2", 1);
  setenv("PMIX_SIZE", "4", 1);
  auto id = identity_from_environment();
  EXPECT_TRUE(id.known);
  EXPECT_EQ(id.rank, 2);
  EXPECT_EQ(id.world, 4);
  setenv("OMPI_COMM_WORLD_RANK", "3", 1);
  setenv("OMPI_COMM_WORLD_SIZE", "8", 1);
  id = identity_from_environment();
  EXPECT_EQ(id.rank, 3);
  EXPECT_EQ(id.world, 8);
  unsetenv("OMPI_COMM_WORLD_RANK");
  unsetenv("PMIX_RANK");
  id = identity_from_environment();
  EXPECT_EQ(id.rank, 0);
  EXPECT_EQ(id.world, 1);
}

TEST(Check, MessageCarriesFileLineAndRank) {
  set_process_identity(1, 4);
  try {
    PASSLAB_CHECK(1 + 1 == 3, DataError, "arithmetic is broken");
    FAIL() << "no throw";
  } catch (const DataError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("arithmetic is broken"), std::string::npos);
    EXPECT_NE(m.find("test_core.cpp:"), std::string::npos);
    EXPECT_NE(m.find("rank 1/4"), std::string::npos);
    EXPECT_EQ(e.kind(), ErrorKind::Data);
  }
  set_process_identity(0, 1);
}

TEST(Check, MpiCheckBeforeInitStillThrowsWithCode) {
  try {
    MPI_CHECK(MPI_ERR_TRUNCATE);
    FAIL() << "no throw";
  } catch (const DistError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("MPI_ERR_TRUNCATE failed: MPI error " + std::to_string(MPI_ERR_TRUNCATE)), std::string::npos) << m;
  }
}

TEST(Log, ParseLevels) {
  EXPECT_EQ(log::parse_level("DEBUG"), log::Level::debug);
  EXPECT_EQ(log::parse_level("warning"), log::Level::warn);
  EXPECT_EQ(log::parse_level("off"), log::Level::off);
  EXPECT_FALSE(log::parse_level("verbose").has_value());
}

TEST(Log, PrecedenceCliThenEnvThenConfigAndRankDefaults) {
  EnvGuard g({"PASSLAB_LOG"});
  set_process_identity(0, 2);
  log::init(std::nullopt, std::nullopt);
  EXPECT_EQ(log::effective_level(), log::Level::info);
  log::init(std::nullopt, log::Level::warn);
  EXPECT_EQ(log::effective_level(), log::Level::warn);
  setenv("PASSLAB_LOG", "error", 1);
  log::init(std::nullopt, log::Level::warn);
  EXPECT_EQ(log::effective_level(), log::Level::error);
  log::init(log::Level::debug, log::Level::warn);
  EXPECT_EQ(log::effective_level(), log::Level::debug);
  unsetenv("PASSLAB_LOG");
  // Other ranks stay at warn unless debug/trace is asked for.
  set_process_identity(1, 2);
  log::init(std::nullopt, std::nullopt);
  EXPECT_EQ(log::effective_level(), log::Level::warn);
  log::init(log::Level::debug, std::nullopt);
  EXPECT_EQ(log::effective_level(), log::Level::debug);
  set_process_identity(0, 1);
  log::init();
}

TEST(Version, HasVersionAndSha) {
  EXPECT_STREQ(version(), "0.1.0");
  EXPECT_GT(std::string(git_sha()).size(), 0u);
}

TEST(Version, MpiLibraryIsTheFirstLineOfMpisOwnText) {
  char text[MPI_MAX_LIBRARY_VERSION_STRING] = {0};
  int len = 0;
  ASSERT_EQ(MPI_Get_library_version(text, &len), MPI_SUCCESS);  // callable before MPI_Init
  const std::string full(text, static_cast<size_t>(len)), v = mpi_library_version();
  ASSERT_FALSE(v.empty());
  EXPECT_EQ(full.rfind(v, 0), 0u) << full;                       // a prefix of MPI's text
  EXPECT_EQ(v.find_first_of(",\n"), std::string::npos) << v;     // cut at the first comma or newline
  EXPECT_TRUE(full.size() == v.size() || full[v.size()] == ',' || full[v.size()] == '\n') << full;
}
