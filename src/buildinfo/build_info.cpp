#include <hdf5.h>
#include <torch/version.h>

#include "passlab/build_info.hpp"
#include "passlab/core/version.hpp"
#ifdef PASSLAB_WITH_CUDA
#include "passlab/cuda/device.hpp"
#endif

namespace passlab {

std::vector<std::pair<std::string, std::string>> build_info() {
  std::vector<std::pair<std::string, std::string>> v;
  v.emplace_back("passlab", version());
  v.emplace_back("git", git_sha());
  v.emplace_back("libtorch", std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
                                 std::to_string(TORCH_VERSION_PATCH));
  v.emplace_back("mpi", mpi_library_version());
  unsigned maj = 0, min = 0, rel = 0;
  H5get_libversion(&maj, &min, &rel);
  v.emplace_back("hdf5", std::to_string(maj) + "." + std::to_string(min) + "." + std::to_string(rel));
#ifdef PASSLAB_WITH_CUDA
  auto ver = [](int x) { return std::to_string(x / 1000) + "." + std::to_string((x % 1000) / 10); };
  v.emplace_back("cuda runtime", ver(cuda::runtime_version()));
  int drv = cuda::driver_version();
  v.emplace_back("cuda driver", drv ? ver(drv) : "none");
  int n = cuda::nccl_version();
  v.emplace_back("nccl", std::to_string(n / 10000) + "." + std::to_string((n / 100) % 100) + "." + std::to_string(n % 100));
  v.emplace_back("gpus", std::to_string(cuda::device_count()));
#else
  v.emplace_back("cuda", "not built (PASSLAB_WITH_CUDA=OFF or not found)");
#endif
  return v;
}

}  // namespace passlab
