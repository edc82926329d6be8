# getflags tests are registered here.
gf_unit_test(test_codes SOURCES unit/test_codes.c LIBS getflags_core)
gf_unit_test(test_cli SOURCES unit/test_cli.c LIBS getflags_core)
gf_unit_test(test_names SOURCES unit/test_names.c LIBS getflags_core)
gf_unit_test(test_text SOURCES unit/test_text.c LIBS getflags_core)
gf_unit_test(test_model SOURCES unit/test_model.c LIBS getflags_core)
gf_unit_test(test_report SOURCES unit/test_report.c LIBS getflags_core)
gf_unit_test(test_gif SOURCES unit/test_gif.c LIBS getflags_core)
# The 194 flags of flags_data are its fixtures.
target_compile_definitions(test_gif PRIVATE GF_FLAGS_DATA="${PROJECT_SOURCE_DIR}/flags_data")

# libFuzzer targets over the pure modules (clang only). They compile
# names.c, text.c, error.c, gif.c and codes.c themselves, instrumented for
# coverage, rather than linking getflags_core, so that they need none of the
# network code.
option(GETFLAGS_FUZZ "Build the libFuzzer targets (needs clang)" OFF)
if(GETFLAGS_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "GETFLAGS_FUZZ needs clang: configure with -DCMAKE_C_COMPILER=clang")
  endif()
  set(GF_FUZZ_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=undefined
                    -fno-omit-frame-pointer)
  add_library(gf_fuzz_pure STATIC
    "${PROJECT_SOURCE_DIR}/src/getflags/names.c"
    "${PROJECT_SOURCE_DIR}/src/getflags/text.c"
    "${PROJECT_SOURCE_DIR}/src/getflags/error.c"
    "${PROJECT_SOURCE_DIR}/src/getflags/gif.c"
    "${PROJECT_SOURCE_DIR}/src/getflags/codes.c"
    "${PROJECT_SOURCE_DIR}/src/getflags/alloc.c"
    "${PROJECT_BINARY_DIR}/src/getflags/country_codes.c")
  target_include_directories(gf_fuzz_pure PUBLIC "${PROJECT_SOURCE_DIR}/include")
  target_compile_options(gf_fuzz_pure PRIVATE -fsanitize=fuzzer-no-link ${GF_FUZZ_FLAGS})
  # alloc.c hooks libcurl and libuv too, though the targets never call that.
  target_link_libraries(gf_fuzz_pure PUBLIC PkgConfig::LIBCJSON PkgConfig::LIBCURL
                        PkgConfig::LIBUV PRIVATE gf_build_flags)
  foreach(target fuzz_metadata fuzz_name fuzz_codes fuzz_gif)
    add_executable(${target} fuzz/${target}.c)
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer ${GF_FUZZ_FLAGS})
    target_link_options(${target} PRIVATE -fsanitize=fuzzer ${GF_FUZZ_FLAGS})
    target_link_libraries(${target} PRIVATE gf_fuzz_pure gf_build_flags)
  endforeach()
endif()
