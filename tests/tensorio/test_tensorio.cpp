#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "passlab/core/error.hpp"
#include "passlab/tensorio/tensor_h5.hpp"
#include "support/test_util.hpp"

using namespace passlab;

TEST(TensorH5, RoundTripDtypesAndShapes) {
  test::TempDir dir;
  at::manual_seed(0);
  io::NamedTensors in = {
      {"layer1.0.conv1.weight", at::randn({4, 3, 3, 3})},
      {"bn.running_var", at::rand({4}, at::kDouble)},
      {"keep", at::arange(5, at::kLong)},
      {"counts", at::arange(6, at::kInt).reshape({2, 3})},
      {"image", at::randint(0, 255, {2, 2, 3}, at::kByte)},
      {"mask", at::rand({7}) > 0.5},
      {"step", at::scalar_tensor(3.5)},
      {"strided", at::randn({3, 4}).t()},  // non-contiguous input
  };
  {
    io::File f = io::File::create(dir / "t.h5");
    auto g = f.root().create_group("weights");
    io::write_tensors(g, in, io::WriteOptions{0, 4, false});
  }
  io::File f = io::File::open(dir / "t.h5");
  auto out = io::read_tensors(f.root().open_group("weights"));
  ASSERT_EQ(out.size(), in.size());
  for (auto& [name, t] : in) {
    auto it = std::find_if(out.begin(), out.end(), [&](auto& p) { return p.first == name; });
    ASSERT_NE(it, out.end()) << name;
    EXPECT_EQ(it->second.scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(it->second.sizes(), t.sizes()) << name;
    EXPECT_TRUE(at::equal(it->second, t)) << name;
  }
}

TEST(TensorH5, UnsupportedDtypeIsAClearError) {
  test::TempDir dir;
  io::File f = io::File::create(dir / "t.h5");
  try {
    io::write_tensor(f.root(), "half", at::zeros({2}, at::kHalf));
    FAIL();
  } catch (const IOError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot store tensor 'half'"), std::string::npos) << e.what();
  }
}

TEST(TensorH5, NamesWithSlashAreRefused) {
  test::TempDir dir;
  io::File f = io::File::create(dir / "t.h5");
  EXPECT_THROW(io::write_tensor(f.root(), "optim/momentum", at::zeros({2})), IOError);
  EXPECT_THROW(io::write_tensor(f.root(), "", at::zeros({2})), IOError);
  EXPECT_NO_THROW(io::write_tensor(f.root(), "optim:momentum", at::zeros({2})));
}
