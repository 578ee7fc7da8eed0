# Resolves PASSLAB_WITH_CUDA (AUTO|ON|OFF) into PASSLAB_CUDA_ENABLED, and finds the NCCL that
# LibTorch itself loads (the wheel's nvidia-nccl package): two NCCLs in one process collide.

set(PASSLAB_CUDA_ENABLED OFF)
if(NOT PASSLAB_WITH_CUDA STREQUAL "OFF")
  set(_torch_cuda OFF)
  if(TARGET torch_cuda OR TORCH_LIBRARIES MATCHES "torch_cuda" OR EXISTS ${PASSLAB_TORCH_LIBDIR}/libtorch_cuda.so)
    set(_torch_cuda ON)
  endif()
  find_package(CUDAToolkit QUIET)
  set(_nccl_hints
      ${PASSLAB_TORCH_LIBDIR}/../../nvidia/nccl/lib    # PyPI torch wheel
      ${PASSLAB_TORCH_LIBDIR})                           # LibTorch zip
  find_library(PASSLAB_NCCL_LIBRARY NAMES nccl libnccl.so.2 HINTS ${_nccl_hints} NO_DEFAULT_PATH)
  if(NOT PASSLAB_NCCL_LIBRARY)
    find_library(PASSLAB_NCCL_LIBRARY NAMES nccl libnccl.so.2 HINTS ${CUDAToolkit_LIBRARY_DIR})
  endif()
  find_path(PASSLAB_NCCL_INCLUDE nccl.h
            HINTS ${PASSLAB_TORCH_LIBDIR}/../../nvidia/nccl/include NO_DEFAULT_PATH)
  if(NOT PASSLAB_NCCL_INCLUDE)
    find_path(PASSLAB_NCCL_INCLUDE nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CUDAToolkit_FOUND AND CMAKE_CUDA_COMPILER AND _torch_cuda AND PASSLAB_NCCL_LIBRARY AND PASSLAB_NCCL_INCLUDE)
    set(PASSLAB_CUDA_ENABLED ON)
  elseif(PASSLAB_WITH_CUDA STREQUAL "ON")
    message(FATAL_ERROR "PASSLAB_WITH_CUDA=ON but not all found: CUDA toolkit=${CUDAToolkit_FOUND} "
      "nvcc=${CMAKE_CUDA_COMPILER} torch built with CUDA=${_torch_cuda} "
      "NCCL lib=${PASSLAB_NCCL_LIBRARY} NCCL header=${PASSLAB_NCCL_INCLUDE}")
  endif()
endif()

if(PASSLAB_CUDA_ENABLED)
  enable_language(CUDA)
  if(NOT CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "52")
    set(CMAKE_CUDA_ARCHITECTURES 80 90)   # A100, H100/H200
  endif()
  set(CMAKE_CUDA_STANDARD 17)   # CMake 3.25 knows no CUDA20 flags for nvcc 13
  add_library(passlab::nccl SHARED IMPORTED GLOBAL)
  set_target_properties(passlab::nccl PROPERTIES IMPORTED_LOCATION ${PASSLAB_NCCL_LIBRARY}
                        INTERFACE_INCLUDE_DIRECTORIES ${PASSLAB_NCCL_INCLUDE})
  message(STATUS "passlab: CUDA ${CUDAToolkit_VERSION} and NCCL (${PASSLAB_NCCL_LIBRARY}) enabled")
else()
  message(STATUS "passlab: CUDA/NCCL code paths disabled (PASSLAB_WITH_CUDA=${PASSLAB_WITH_CUDA})")
endif()
