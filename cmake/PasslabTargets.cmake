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

# Modules that use LibTorch: one static library per module (passlab_<module>) so that tests of
# one module link only what it needs, in layer order (DESIGN.md §5). A module without sources
# yet is an INTERFACE library. passlab_torch links them all.
function(passlab_torch_module name)
  cmake_parse_arguments(M "" "" "DEPS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${name}/*.cpp)
  if(srcs)
    add_library(passlab_${name} STATIC ${srcs})
    target_include_directories(passlab_${name} PUBLIC ${PROJECT_SOURCE_DIR}/include)
    target_link_libraries(passlab_${name} PUBLIC passlab_core passlab_config passlab_io ${TORCH_LIBRARIES} MPI::MPI_C ${M_DEPS})
    target_compile_options(passlab_${name} PUBLIC ${TORCH_CXX_FLAGS})
    if(PASSLAB_CUDA_ENABLED)
      target_link_libraries(passlab_${name} PUBLIC passlab_cuda)
      target_compile_definitions(passlab_${name} PUBLIC PASSLAB_WITH_CUDA=1)
    endif()
    passlab_warnings(passlab_${name})
    if(PASSLAB_TORCH_PCH)
      target_precompile_headers(passlab_${name} PRIVATE <torch/torch.h>)
    endif()
  else()
    add_library(passlab_${name} INTERFACE)
    target_include_directories(passlab_${name} INTERFACE ${PROJECT_SOURCE_DIR}/include)
    target_link_libraries(passlab_${name} INTERFACE passlab_core passlab_config passlab_io ${TORCH_LIBRARIES} MPI::MPI_C ${M_DEPS})
    if(PASSLAB_CUDA_ENABLED)
      target_link_libraries(passlab_${name} INTERFACE passlab_cuda)
      target_compile_definitions(passlab_${name} INTERFACE PASSLAB_WITH_CUDA=1)
    endif()
  endif()
endfunction()

function(passlab_torch_library)
  passlab_torch_module(buildinfo)
  passlab_torch_module(tensorio)
  passlab_torch_module(dist DEPS passlab_tensorio)
  if(PASSLAB_OPENCV_ENABLED)
    passlab_torch_module(data DEPS passlab_tensorio opencv_core opencv_imgproc opencv_imgcodecs z)
  else()
    # Only the definition's absence marks a build with OpenCV, so those builds keep their flags.
    passlab_torch_module(data DEPS passlab_tensorio z)
    target_compile_definitions(passlab_data PRIVATE PASSLAB_WITHOUT_OPENCV=1)
  endif()
  passlab_torch_module(models DEPS passlab_tensorio)
  passlab_torch_module(prune DEPS passlab_models)
  passlab_torch_module(train DEPS passlab_dist passlab_data passlab_models)
  passlab_torch_module(pass DEPS passlab_prune passlab_train)
  passlab_torch_module(pipeline DEPS passlab_pass passlab_prune passlab_train passlab_buildinfo)
  passlab_torch_module(sweep DEPS passlab_pipeline)
  add_library(passlab_torch INTERFACE)
  target_link_libraries(passlab_torch INTERFACE passlab_buildinfo passlab_tensorio passlab_dist passlab_data passlab_models
                        passlab_prune passlab_train passlab_pass passlab_pipeline passlab_sweep)
endfunction()

# Executables linking the whole product: tcmalloc first, so it replaces malloc process-wide.
# passlab_link_product(target [LIBS ...]): links the given passlab libraries (default: all).
function(passlab_link_product target)
  cmake_parse_arguments(P "" "" "LIBS" ${ARGN})
  if(NOT P_LIBS)
    set(P_LIBS passlab_torch)
  endif()
  target_link_libraries(${target} PRIVATE ${P_LIBS})
  if(PASSLAB_TCMALLOC)
    target_link_libraries(${target} PRIVATE -Wl,--no-as-needed ${PASSLAB_TCMALLOC} -Wl,--as-needed)
  endif()
  set_target_properties(${target} PROPERTIES BUILD_RPATH "${PASSLAB_TORCH_LIBDIR}")
endfunction()
