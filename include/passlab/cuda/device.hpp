#pragma once
// CUDA/NCCL probes, compiled only when PASSLAB_WITH_CUDA (nvcc + NCCL found). They exercise the
// GPU build path from day one: nvcc-compiled kernel, CUDA runtime, the NCCL that torch loads.
// Callable on a machine without a GPU: device_count() is then 0.
#include <cstddef>
#include <string>
#include <vector>

namespace passlab::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;
  size_t total_bytes = 0;
};

int device_count();                 // 0 when no driver or no device (never throws)
std::vector<DeviceInfo> devices();
// PCI address of a device ("0000:3b:00.0"): the same GPU seen by several processes, whatever
// their CUDA_VISIBLE_DEVICES.
std::string pci_bus_id(int device);
int runtime_version();              // e.g. 13000
int driver_version();               // 0 without a driver
int nccl_version();                 // e.g. 23007, from the loaded libnccl
// Runs a small kernel (saxpy) on `device` and checks it against the host; throws DistError
// (CUDA_CHECK) on any CUDA failure, InternalError on a wrong result. Returns max abs error.
double self_test(int device);

}  // namespace passlab::cuda
