#include <gtest/gtest.h>

#include "passlab/core/log.hpp"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  passlab::log::init();
  return RUN_ALL_TESTS();
}
