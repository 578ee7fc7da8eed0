# Helpers that define passlab's targets with one set of conventions.

function(passlab_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter>
    # GCC 12 false positive inside libstdc++'s string concatenation (GCC bug 105329).
    $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<CXX_COMPILER_ID:GNU>>:-Wno-restrict>)
endfunction()

# passlab_module(<name> DEPS ...): static library passlab_<name> from src/<name>/*.cpp.
function(passlab_module name)
  cmake_parse_arguments(M "" "" "DEPS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${name}/*.cpp)
  add_library(passlab_${name} STATIC ${srcs})
  target_include_directories(passlab_${name} PUBLIC ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(passlab_${name} PUBLIC ${M_DEPS})
  passlab_warnings(passlab_${name})
endfunction()

# Modules that use LibTorch; one static library so they may call each other in layer order.
set(PASSLAB_TORCH_MODULES dist data models prune pass train sweep CACHE INTERNAL "")

function(passlab_torch_library)
  set(srcs "")
  foreach(m ${PASSLAB_TORCH_MODULES})
    file(GLOB s CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${m}/*.cpp)
    list(APPEND srcs ${s})
  endforeach()
  add_library(passlab_torch STATIC ${srcs} ${PROJECT_SOURCE_DIR}/src/torch_info.cpp)
  target_include_directories(passlab_torch PUBLIC ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(passlab_torch PUBLIC passlab_core passlab_config passlab_io
                        ${TORCH_LIBRARIES} MPI::MPI_C opencv_core opencv_imgproc opencv_imgcodecs)
  target_compile_options(passlab_torch PUBLIC ${TORCH_CXX_FLAGS})
  if(PASSLAB_CUDA_ENABLED)
    target_link_libraries(passlab_torch PUBLIC passlab_cuda)
    target_compile_definitions(passlab_torch PUBLIC PASSLAB_WITH_CUDA=1)
  endif()
  passlab_warnings(passlab_torch)
endfunction()

# Executables linking the whole product: tcmalloc first, so it replaces malloc process-wide.
function(passlab_link_product target)
  target_link_libraries(${target} PRIVATE passlab_torch)
  if(PASSLAB_TCMALLOC)
    target_link_libraries(${target} PRIVATE -Wl,--no-as-needed ${PASSLAB_TCMALLOC} -Wl,--as-needed)
  endif()
  set_target_properties(${target} PROPERTIES BUILD_RPATH "${PASSLAB_TORCH_LIBDIR}")
endfunction()
