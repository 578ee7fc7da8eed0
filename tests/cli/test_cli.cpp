// Runs the `passlab` binary as a user would and checks exit codes and messages.
#include <gtest/gtest.h>

#include "passlab/io/hdf5.hpp"
#include "support/test_util.hpp"

using namespace passlab;

namespace {
std::string bin() { return test::env_or("PASSLAB_BINARY", "passlab"); }
test::CommandResult cli(const std::string& args) { return test::run_command(bin() + " " + args); }
#define EXPECT_HAS(out, part) EXPECT_NE((out).find(part), std::string::npos) << (out)
}  // namespace

TEST(Cli, VersionListsLibraries) {
  auto r = cli("--version");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* k : {"passlab:", "git:", "libtorch:", "mpi:", "hdf5:"}) EXPECT_HAS(r.output, k);
#ifdef PASSLAB_WITH_CUDA
  EXPECT_HAS(r.output, "nccl:");
#endif
}

TEST(Cli, HelpListsSubcommands) {
  auto r = cli("--help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* k : {"run", "prepare", "inspect", "config", "probe", "remeasure"}) EXPECT_HAS(r.output, k);
}

TEST(Cli, RemeasureRefusesSeveralProcessesAndAFolderWithoutRuns) {
  test::TempDir dir;
  // Under a launcher of two ranks (as mpirun -np 2 sets it): refused before MPI starts.
  auto r = test::run_command("OMPI_COMM_WORLD_RANK=0 OMPI_COMM_WORLD_SIZE=2 " + bin() + " remeasure " + dir.path().string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_HAS(r.output, "passlab remeasure runs as one process, not 2");
  auto s = cli("remeasure " + dir.path().string());
  EXPECT_EQ(s.exit_code, 2) << s.output;
  EXPECT_HAS(s.output, dir.path().string() + ": not a results directory (no runs/ folder)");
}

TEST(Cli, DryRunPlansQuickstart) {
  auto r = cli("run " + (test::source_dir() / "experiments/quickstart.toml").string() + " --dry-run");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_HAS(r.output, "plans 6 tasks");
  EXPECT_HAS(r.output, "l1_global");
  // A store that is not here (the quickstart prepares its own): the estimate says what it assumed.
  auto missing = cli("run " + (test::source_dir() / "experiments/quickstart.toml").string() +
                     " --dry-run --set data.root=\"/nonexistent\"");
  EXPECT_EQ(missing.exit_code, 0) << missing.output;
  EXPECT_HAS(missing.output, "is not readable here: its tasks' estimates assume 50000 training images");
}

TEST(Cli, BadConfigExitsTwoNamingFileKeyAndAllowed) {
  test::TempDir dir;
  auto cfg = dir / "bad.toml";
  test::write_text(cfg, "[prune]\nbudget = 2.0\n");
  auto r = cli("run " + cfg.string() + " --dry-run");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_HAS(r.output, cfg.string() + ":2:10");
  EXPECT_HAS(r.output, "prune.budget = 2.0 is out of range");
  auto s = cli("run " + cfg.string() + " --dry-run --set prune.budget=0.25");
  EXPECT_EQ(s.exit_code, 0) << s.output;
}

TEST(Cli, ConfigOfADirectoryExitsTwo) {
  test::TempDir dir;
  auto r = cli("config " + dir.path().string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_HAS(r.output, dir.path().string() + ": not a config file (a directory)");
  EXPECT_EQ(r.output.find("run_id"), std::string::npos) << r.output;  // no defaults printed
}

TEST(Cli, SweepThatPlansNothingExitsTwoNamingTheFilters) {
  test::TempDir dir;
  auto cfg = dir / "none.toml";
  test::write_text(cfg, "[sweep]\nbudgets = [0.5, 0.3]\ninclude = [{ budget = 0.7 }]\n[output]\ndir = \"" + (dir / "out").string() + "\"\n");
  for (const char* extra : {" --dry-run", ""}) {
    auto r = cli("run " + cfg.string() + extra);
    EXPECT_EQ(r.exit_code, 2) << extra << "\n" << r.output;
    EXPECT_HAS(r.output, "the sweep plans no task: sweep.include = [{ budget = 0.7 }] and sweep.exclude = [] leave none of its 2 ");
    EXPECT_EQ(r.output.find("tasks complete"), std::string::npos) << r.output;
  }
}

TEST(Cli, ResultsFolderBlockedByAFileExitsTwoBeforeTraining) {
  test::TempDir dir;
  auto cfg = dir / "blocked.toml";
  const auto out = dir / "out";
  test::write_text(cfg, "[output]\ndir = \"" + out.string() + "\"\n");
  std::filesystem::create_directories(out);
  test::write_text(out / "dense", "a file");
  // No store exists: a run that got as far as training would fail there (exit 1), not with 2.
  auto r = cli("run " + cfg.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_HAS(r.output, "cannot use " + (out / "dense").string() + " as a results folder");
}

// `--set a=1 b=2` took b=2 as a second value of the same option; each --set now takes one.
TEST(Cli, SetTakesOneAssignmentPerOption) {
  test::TempDir dir;
  auto cfg = dir / "one.toml";
  test::write_text(cfg, "[output]\ndir = \"" + (dir / "out").string() + "\"\n");
  for (const char* cmd : {"run --dry-run ", "config "}) {
    auto r = cli(std::string(cmd) + cfg.string() + " --set dense.lr=0.1 dense.epochs=3");
    EXPECT_EQ(r.exit_code, 2) << cmd << "\n" << r.output;
    EXPECT_HAS(r.output, "dense.epochs=3");
    auto ok = cli(std::string(cmd) + cfg.string() + " --set dense.lr=0.1 --set dense.epochs=3");
    EXPECT_EQ(ok.exit_code, 0) << cmd << "\n" << ok.output;
  }
  EXPECT_HAS(cli("config " + cfg.string() + " --set dense.lr=0.1 --set dense.epochs=3").output, "epochs = 3");
  // probe and remeasure share the option (cli/commands.hpp): the stray assignment is refused at
  // parsing, before any file is read, naming it.
  test::write_text(dir / "run.h5", "not read");
  for (const std::string cmd : {"probe " + (dir / "run.h5").string(), "remeasure " + dir.path().string()}) {
    auto r = cli(cmd + " --set eval.probe_batches=2 dense.epochs=3");
    EXPECT_EQ(r.exit_code, 2) << cmd << "\n" << r.output;
    EXPECT_HAS(r.output, "dense.epochs=3");
  }
}

// An output.dir that cannot be created (its parent is a file) exits 2 naming it, before MPI.
TEST(Cli, UncreatableResultsFolderExitsTwoNamingIt) {
  test::TempDir dir;
  auto cfg = dir / "blocked.toml";
  test::write_text(dir / "file", "x");
  const auto out = dir / "file" / "results";
  test::write_text(cfg, "[output]\ndir = \"" + out.string() + "\"\n");
  auto r = cli("run " + cfg.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_HAS(r.output, "cannot use " + out.string() + " as a results folder: Not a directory");
}

TEST(Cli, ConfigPrintsCanonicalTomlAndIds) {
  test::TempDir dir;
  auto a = dir / "a.toml", b = dir / "b.toml";
  test::write_text(a, "[dense]\nlr = 0.05\nepochs = 2\n");
  test::write_text(b, "[dense]\nepochs=2\n\n\nlr=5e-2 # same\n");
  auto ra = cli("config " + a.string()), rb = cli("config " + b.string());
  EXPECT_EQ(ra.exit_code, 0);
  EXPECT_EQ(ra.output, rb.output);
  EXPECT_HAS(ra.output, "# run_id = ");
  auto schema = cli("config --schema");
  EXPECT_EQ(schema.output, test::read_text(test::source_dir() / "docs/config.md"));
}

TEST(Cli, InspectSchemaIsTheCommittedRunFileReference) {
  auto md = cli("inspect --schema");
  EXPECT_EQ(md.exit_code, 0);
  EXPECT_EQ(md.output, test::read_text(test::source_dir() / "docs/run-file.md"))
      << "docs/run-file.md is stale: regenerate with `passlab inspect --schema > docs/run-file.md`";
  auto json = cli("inspect --schema-json");
  EXPECT_EQ(json.exit_code, 0);
  EXPECT_EQ(json.output, test::read_text(test::source_dir() / "docs/run-file.json"))
      << "docs/run-file.json is stale: regenerate with `passlab inspect --schema-json > docs/run-file.json`";
  EXPECT_HAS(json.output, "{\"name\": \"pass_no_stats\", \"family\": \"pass\"");
  auto none = cli("inspect");
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_HAS(none.output, "give a path, --schema or --schema-json");
}

TEST(Cli, InspectCheckNamesWhatTheSchemaDoesNotDeclare) {
  test::TempDir dir;
  const auto path = dir / "dense.h5";
  io::AtomicWriter writer(path);  // a dense file with one undeclared dataset and little else
  writer.root().set_attr("kind", "dense");
  writer.root().write("scratch", std::vector<double>{1.0});
  writer.commit();
  auto r = cli("inspect --check " + path.string());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_HAS(r.output, "/scratch: undeclared dataset in a dense file");
  EXPECT_HAS(r.output, "/summary: missing (group required in complete dense file)");
  EXPECT_HAS(r.output, "/@dense_id: missing (attribute required in every dense file)");
}

TEST(Cli, LogLevelValidated) {
  auto r = cli("--log-level loud --version");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_HAS(r.output, "expected trace|debug|info|warn|error|off");
}

TEST(Cli, InspectShowsFileAndRejectsGarbage) {
  test::TempDir dir;
  {
    io::AtomicWriter w(dir / "r.h5");
    w.root().write("metrics/loss", std::vector<float>{1, 0.5});
    w.root().set_attr("method", "pass");
    w.commit();
  }
  auto r = cli("inspect " + (dir / "r.h5").string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_HAS(r.output, "@status = complete");
  EXPECT_HAS(r.output, "loss [2] float32");
  test::write_text(dir / "junk.h5", "junk");
  auto j = cli("inspect " + (dir / "junk.h5").string());
  EXPECT_EQ(j.exit_code, 1);
  EXPECT_HAS(j.output, "is not an HDF5 file");
}

TEST(Cli, InspectShowsArrayAttributesOfAStore) {
  // Dataset stores carry array attributes (classes, mean, std); inspect once overran its
  // buffer reading them as scalars.
  test::TempDir dir;
  auto path = dir / "store.h5";
  {
    io::AtomicWriter w(path);
    hsize_t n = 2;
    io::SpaceId space(H5Screate_simple(1, &n, nullptr));
    io::TypeId t(H5Tcopy(H5T_C_S1));
    H5Tset_size(t.get(), H5T_VARIABLE);
    io::AttrId a(H5Acreate2(w.root().id(), "classes", t.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT));
    const char* names[2] = {"cat", "dog"};
    ASSERT_GE(H5Awrite(a.get(), t.get(), names), 0);
    io::AttrId m(H5Acreate2(w.root().id(), "mean", H5T_NATIVE_DOUBLE, space.get(), H5P_DEFAULT, H5P_DEFAULT));
    double v[2] = {0.25, 0.5};
    ASSERT_GE(H5Awrite(m.get(), H5T_NATIVE_DOUBLE, v), 0);
    w.commit();
  }
  auto r = cli("inspect " + path.string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_HAS(r.output, "@classes = [cat, dog]");
  EXPECT_HAS(r.output, "@mean = [0.250000, 0.500000]");
}
