# EmbeddingNativeConfig.cmake: the prebuilt C library for find_package(EmbeddingNative).
#
#   find_package(EmbeddingNative 0.1 REQUIRED)
#   target_link_libraries(app PRIVATE EmbeddingNative::embedding_native)
#
# EmbeddingNative::embedding_native is the baseline build, <prefix>/lib/libembedding_native.so:
# x86-64-v2 (SSE4.2), Vector128 kernels, runs on every x86-64-v2 CPU. The same library compiled
# for faster tiers sits in <prefix>/lib/embedding_native/<tier>/ (listed in EmbeddingNative_TIERS).
# A NativeAOT binary checks its instruction set when it starts and aborts on a CPU without it, so
# the choice is the application's:
#   - set(EmbeddingNative_TIER x86-64-v4) before find_package links that build instead (the
#     program then needs that CPU), or
#   - keep the baseline and point the loader at a faster build at run time, e.g.
#     LD_LIBRARY_PATH=<prefix>/lib/embedding_native/x86-64-v4 (the builds export the same ABI).
#
# The libraries have no SONAME, so the target is linked by name (-lembedding_native), never by
# path: a path would be written into the program's DT_NEEDED entry.
#
# Relocatable: every path is found from this file's location (<prefix>/lib/cmake/EmbeddingNative).

cmake_minimum_required(VERSION 3.13)

get_filename_component(_emb_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
set(EmbeddingNative_INCLUDE_DIRS "${_emb_prefix}/include")
set(EmbeddingNative_TIER_DIR "${_emb_prefix}/lib/embedding_native")

set(EmbeddingNative_TIERS)
file(GLOB _emb_tier_dirs LIST_DIRECTORIES true "${EmbeddingNative_TIER_DIR}/*")
foreach(_emb_dir IN LISTS _emb_tier_dirs)
  if(IS_DIRECTORY "${_emb_dir}")
    get_filename_component(_emb_name "${_emb_dir}" NAME)
    list(APPEND EmbeddingNative_TIERS "${_emb_name}")
  endif()
endforeach()

if(WIN32)
  set(_emb_runtime_name "embedding_native.dll")
elseif(APPLE)
  set(_emb_runtime_name "libembedding_native.dylib")
else()
  set(_emb_runtime_name "libembedding_native.so")
endif()

if(EmbeddingNative_TIER AND NOT EmbeddingNative_TIER STREQUAL "baseline")
  if(NOT EmbeddingNative_TIER IN_LIST EmbeddingNative_TIERS)
    set(${CMAKE_FIND_PACKAGE_NAME}_FOUND FALSE)
    set(${CMAKE_FIND_PACKAGE_NAME}_NOT_FOUND_MESSAGE
        "EmbeddingNative_TIER=${EmbeddingNative_TIER} is not installed; available: baseline ${EmbeddingNative_TIERS}")
    return()
  endif()
  set(_emb_libdir "${EmbeddingNative_TIER_DIR}/${EmbeddingNative_TIER}")
else()
  set(_emb_libdir "${_emb_prefix}/lib")
endif()

if(WIN32)
  set(_emb_location "${_emb_prefix}/bin/${_emb_runtime_name}")
  set(_emb_implib "${_emb_libdir}/embedding_native.lib")
else()
  set(_emb_location "${_emb_libdir}/${_emb_runtime_name}")
endif()

foreach(_emb_file IN ITEMS "${EmbeddingNative_INCLUDE_DIRS}/embedding_native.h" "${_emb_location}")
  if(NOT EXISTS "${_emb_file}")
    set(${CMAKE_FIND_PACKAGE_NAME}_FOUND FALSE)
    set(${CMAKE_FIND_PACKAGE_NAME}_NOT_FOUND_MESSAGE "EmbeddingNative: ${_emb_file} is missing")
    return()
  endif()
endforeach()

if(NOT TARGET EmbeddingNative::embedding_native)
  add_library(EmbeddingNative::embedding_native SHARED IMPORTED)
  set_target_properties(EmbeddingNative::embedding_native PROPERTIES
    IMPORTED_LOCATION "${_emb_location}"
    INTERFACE_INCLUDE_DIRECTORIES "${EmbeddingNative_INCLUDE_DIRS}")
  if(WIN32)
    set_target_properties(EmbeddingNative::embedding_native PROPERTIES IMPORTED_IMPLIB "${_emb_implib}")
  elseif(NOT APPLE)
    set_target_properties(EmbeddingNative::embedding_native PROPERTIES IMPORTED_NO_SONAME TRUE)
  endif()
endif()

set(EmbeddingNative_LIBRARY "${_emb_location}")
set(EmbeddingNative_LIBRARY_DIR "${_emb_libdir}")
unset(_emb_prefix)
unset(_emb_tier_dirs)
unset(_emb_dir)
unset(_emb_name)
unset(_emb_runtime_name)
unset(_emb_libdir)
unset(_emb_location)
unset(_emb_implib)
unset(_emb_file)
