# flagserver tests: cmocka unit tests of its modules and Python (standard
# library only) integration tests that start the real binary on an ephemeral
# port of 127.0.0.1. Run them with: ctest -L flagserver (or -R flagserver).
foreach(t path fault options rng httpdate gz)
  gf_unit_test(test_flagserver_${t} SOURCES unit/test_flagserver_${t}.c LIBS flagserver_core)
  set_tests_properties(test_flagserver_${t} PROPERTIES LABELS "unit;flagserver")
endforeach()
# The gzip bodies are checked by inflating them with zlib.
target_link_libraries(test_flagserver_gz PRIVATE PkgConfig::ZLIB)

find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  file(GLOB FS_INTEGRATION_TESTS CONFIGURE_DEPENDS
       "${CMAKE_CURRENT_SOURCE_DIR}/integration/flagserver_*.py")
  foreach(script ${FS_INTEGRATION_TESTS})
    get_filename_component(name "${script}" NAME_WE)
    add_test(NAME ${name}
             COMMAND "${Python3_EXECUTABLE}" "${script}" $<TARGET_FILE:flagserver>
                     "${PROJECT_SOURCE_DIR}")
    set_tests_properties(${name} PROPERTIES LABELS "integration;flagserver" TIMEOUT 90)
  endforeach()
endif()
