# Third-party dependencies. Debian packages provide all but LibTorch, which comes from the
# PyPI torch wheel in the project venv (CMAKE_PREFIX_PATH = torch.utils.cmake_prefix_path).

find_package(MPI REQUIRED COMPONENTS C)
# C API only: the deprecated MPI C++ bindings would otherwise need libmpi_cxx at link time.
add_compile_definitions(OMPI_SKIP_MPICXX=1 MPICH_SKIP_MPICXX=1)
find_package(HDF5 REQUIRED COMPONENTS C)
if(NOT TARGET hdf5::hdf5)
  add_library(hdf5::hdf5 INTERFACE IMPORTED)
  target_include_directories(hdf5::hdf5 INTERFACE ${HDF5_C_INCLUDE_DIRS})
  target_link_libraries(hdf5::hdf5 INTERFACE ${HDF5_C_LIBRARIES})
  target_compile_definitions(hdf5::hdf5 INTERFACE ${HDF5_C_DEFINITIONS})
endif()
find_package(tomlplusplus REQUIRED)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(CLI11 REQUIRED)
# OpenCV (PASSLAB_WITH_OPENCV AUTO|ON|OFF) -> PASSLAB_OPENCV_ENABLED.
set(PASSLAB_OPENCV_ENABLED OFF)
if(PASSLAB_WITH_OPENCV STREQUAL "ON")
  find_package(OpenCV REQUIRED COMPONENTS core imgproc imgcodecs)
  set(PASSLAB_OPENCV_ENABLED ON)
elseif(NOT PASSLAB_WITH_OPENCV STREQUAL "OFF")
  find_package(OpenCV QUIET COMPONENTS core imgproc imgcodecs)
  set(PASSLAB_OPENCV_ENABLED ${OpenCV_FOUND})
endif()
if(PASSLAB_OPENCV_ENABLED)
  message(STATUS "passlab: OpenCV ${OpenCV_VERSION} (image decoding and resizing)")
else()
  message(STATUS "passlab: without OpenCV (PASSLAB_WITH_OPENCV=${PASSLAB_WITH_OPENCV}): image-folder "
                 "decoding, prepare --size, loader resizing and rrc_flip fail with a clear error")
endif()
if(PASSLAB_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()

# tcmalloc: training with glibc malloc is page-fault bound (STACK-NOTES); the product links it.
find_library(PASSLAB_TCMALLOC NAMES tcmalloc_minimal libtcmalloc_minimal.so.4)

# LibTorch from the wheel. Its CMake config looks for the CUDA toolkit when the wheel is a CUDA
# build; /usr/local/cuda provides it.
if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
  set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
endif()
if(NOT CUDAToolkit_ROOT AND EXISTS /usr/local/cuda)
  set(CUDAToolkit_ROOT /usr/local/cuda)
endif()
# No GPU probing at configure time (it fails without a GPU and is wrong for cluster nodes).
if(NOT TORCH_CUDA_ARCH_LIST)
  set(TORCH_CUDA_ARCH_LIST "8.0;9.0" CACHE STRING "CUDA architectures for LibTorch's CUDA flags")
endif()
find_package(Torch REQUIRED)
get_filename_component(PASSLAB_TORCH_LIBDIR "${TORCH_LIBRARY}" DIRECTORY)

# The wheel ships fmt 12 headers in its include dir, ahead of /usr/include. libspdlog is built
# against Debian's fmt 9, so every target sees `fmt/` from Debian through this shim, searched
# first (-I before -isystem). LibTorch's public headers we use do not include fmt.
get_target_property(_fmt_inc fmt::fmt INTERFACE_INCLUDE_DIRECTORIES)
find_path(PASSLAB_FMT_INCLUDE fmt/format.h HINTS ${_fmt_inc} NO_CMAKE_PATH NO_CMAKE_ENVIRONMENT_PATH)
set(PASSLAB_SHIM_DIR ${CMAKE_BINARY_DIR}/shim-include)
file(MAKE_DIRECTORY ${PASSLAB_SHIM_DIR})
file(CREATE_LINK ${PASSLAB_FMT_INCLUDE}/fmt ${PASSLAB_SHIM_DIR}/fmt SYMBOLIC)
include_directories(BEFORE ${PASSLAB_SHIM_DIR})
