// The declared result-file layout: the validator against files built by hand from the table,
// and against each kind of damage it must name. (tests/pass/test_methods.cpp validates the
// files the real dense and prune tasks write.)
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>

#include "passlab/io/hdf5.hpp"
#include "passlab/io/run_schema.hpp"
#include "io/result_fixture.hpp"
#include "support/test_util.hpp"

using namespace passlab;
namespace rf = passlab::io::run_file;

namespace {

using test::write_minimal;

std::vector<std::string> validate(const std::filesystem::path& p) { return rf::validate(io::File::open(p)); }

void edit(const std::filesystem::path& p, const std::function<void(io::Group&)>& f) {
  io::File file = io::File::open(p, io::Mode::read_write);
  f(file.root());
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (auto& x : v) s += x + "\n";
  return s;
}

bool has_problem(const std::vector<std::string>& v, const std::string& part) {
  return std::any_of(v.begin(), v.end(), [&](const std::string& x) { return x.find(part) != std::string::npos; });
}

}  // namespace

TEST(RunSchema, NamesAreDeclaredOnce) {
  std::vector<std::string> seen;
  for (auto& e : rf::entries()) {
    // /weights is declared twice: required in dense files, optional in run files.
    const std::string key = e.name() + "#" + std::to_string(e.files);
    EXPECT_EQ(std::count(seen.begin(), seen.end(), key), 0) << key;
    seen.push_back(key);
    EXPECT_FALSE(e.doc.empty()) << e.name();
    EXPECT_EQ((e.doc + e.when).find('|'), std::string::npos) << e.name() << ": a '|' would split its Markdown table row";
    EXPECT_EQ(e.need == rf::Need::optional, !e.when.empty()) << e.name();
    EXPECT_EQ(e.item == rf::Item::group, e.type == rf::Type::none) << e.name();
  }
}

TEST(RunSchema, MinimalFilesOfEveryKindAndStatusAreValid) {
  test::TempDir dir;
  for (unsigned kind : {rf::Files::dense, rf::Files::prune})
    for (const char* status : {rf::kComplete, rf::kFailed}) {
      auto p = dir / (std::to_string(kind) + status + ".h5");
      write_minimal(p, kind, status);
      EXPECT_EQ(joined(validate(p)), "") << kind << " " << status;
    }
}

TEST(RunSchema, NamesEveryKindOfDamage) {
  test::TempDir dir;
  auto p = dir / "run.h5";
  write_minimal(p, rf::Files::prune, rf::kComplete);
  // A deleted group: reported once, not once per entry inside it.
  edit(p, [](io::Group& r) { H5_CHECK(H5Ldelete(r.id(), rf::kSummary, H5P_DEFAULT)); });
  auto v = validate(p);
  EXPECT_EQ(v, std::vector<std::string>{"/summary: missing (group required in complete prune file)"}) << joined(v);

  write_minimal(p, rf::Files::prune, rf::kComplete);
  edit(p, [](io::Group& r) { r.open_group(rf::kSummary).set_attr(rf::kTop1, "high"); });
  v = validate(p);
  EXPECT_EQ(v, std::vector<std::string>{"/summary@top1: string where the schema declares float64"}) << joined(v);

  write_minimal(p, rf::Files::prune, rf::kComplete);
  edit(p, [](io::Group& r) {
    r.write("metrics/bogus_curve", std::vector<double>{1.0});
    r.open_group(rf::kSummary).set_attr("extra", int64_t{3});
    r.create_group("unknown").write("x", std::vector<double>{1.0});
    r.open_group(rf::kKeep).write_string("g1", "not indices");
    r.set_attr(rf::kSeed, 1.5);
  });
  v = validate(p);
  EXPECT_TRUE(has_problem(v, "/metrics/bogus_curve: undeclared dataset in a prune file")) << joined(v);
  EXPECT_TRUE(has_problem(v, "/summary@extra: undeclared attribute")) << joined(v);
  EXPECT_TRUE(has_problem(v, "/unknown: undeclared group")) << joined(v);
  EXPECT_FALSE(has_problem(v, "/unknown/x")) << "nothing below an undeclared group is reported\n" << joined(v);
  EXPECT_TRUE(has_problem(v, "/keep/g1: string where the schema declares int64")) << joined(v);
  EXPECT_TRUE(has_problem(v, "/@seed: float64 where the schema declares int64")) << joined(v);
  EXPECT_EQ(v.size(), 5u) << joined(v);
}

TEST(RunSchema, KindDecidesWhatIsDeclared) {
  test::TempDir dir;
  auto p = dir / "dense.h5";
  write_minimal(p, rf::Files::dense, rf::kComplete);
  edit(p, [](io::Group& r) { r.set_attr(rf::kRunId, "abc"); });  // a run file's attribute
  auto v = validate(p);
  EXPECT_EQ(v, std::vector<std::string>{"/@run_id: undeclared attribute in a dense file"}) << joined(v);
  // The dense file's weights are required; a run file's only with output.save_weights.
  write_minimal(p, rf::Files::dense, rf::kComplete);
  edit(p, [](io::Group& r) { H5_CHECK(H5Ldelete(r.id(), rf::kWeights, H5P_DEFAULT)); });
  EXPECT_TRUE(has_problem(validate(p), "/weights: missing")) << joined(validate(p));
  auto q = dir / "run.h5";
  write_minimal(q, rf::Files::prune, rf::kComplete);
  EXPECT_FALSE(io::File::open(q).root().has(rf::kWeights));
  // An optional group, once present, needs what is required inside it.
  edit(q, [](io::Group& r) { r.create_group(rf::kPrompt).write("top", std::vector<float>{0.f}); });
  v = validate(q);
  EXPECT_EQ(v, std::vector<std::string>{"/prompt/image: missing (dataset required in complete prune file)"}) << joined(v);
}

TEST(RunSchema, FailedFilesNeedTheirErrorAndStatusMustBeFinal) {
  test::TempDir dir;
  auto p = dir / "failed.h5";
  write_minimal(p, rf::Files::dense, rf::kFailed);
  edit(p, [](io::Group& r) { H5_CHECK(H5Adelete(r.id(), rf::kError)); });
  auto v = validate(p);
  EXPECT_EQ(v, std::vector<std::string>{"/@error: missing (attribute required in failed dense file)"}) << joined(v);
  edit(p, [](io::Group& r) { r.set_attr(rf::kStatus, "incomplete"); });
  v = validate(p);
  EXPECT_EQ(v, std::vector<std::string>{"/@status: 'incomplete', not complete or failed"}) << joined(v);
  edit(p, [](io::Group& r) { H5_CHECK(H5Adelete(r.id(), rf::kKind)); });
  v = validate(p);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_NE(v[0].find("/@kind: missing"), std::string::npos) << v[0];
}

TEST(RunSchema, AttributesMustBeScalars) {
  test::TempDir dir;
  auto p = dir / "run.h5";
  write_minimal(p, rf::Files::prune, rf::kComplete);
  edit(p, [](io::Group& r) {
    H5_CHECK(H5Adelete(r.id(), rf::kBudget));
    hsize_t dims[1] = {2};
    io::SpaceId space(H5_CHECK(H5Screate_simple(1, dims, nullptr)));
    io::AttrId a(H5_CHECK(H5Acreate2(r.id(), rf::kBudget, H5T_NATIVE_DOUBLE, space.get(), H5P_DEFAULT, H5P_DEFAULT)));
    const double values[2] = {0.5, 0.3};
    H5_CHECK(H5Awrite(a.get(), H5T_NATIVE_DOUBLE, values));
  });
  auto v = validate(p);
  EXPECT_EQ(v, std::vector<std::string>{"/@budget: an array where the schema declares a scalar"}) << joined(v);
}

TEST(RunSchema, DocsFileMatchesSchema) {
  EXPECT_EQ(test::read_text(test::source_dir() / "docs" / "run-file.md"), rf::markdown())
      << "docs/run-file.md is stale: regenerate with `passlab inspect --schema > docs/run-file.md`";
  const std::string md = rf::markdown();
  for (auto& e : rf::entries()) EXPECT_NE(md.find("| `" + e.name() + "` |"), std::string::npos) << e.name();
}
