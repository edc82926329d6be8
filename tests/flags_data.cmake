# flags_data against the REMOTE site's published names and format.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
add_test(NAME flags_data_remote
         COMMAND ${Python3_EXECUTABLE} "${CMAKE_CURRENT_SOURCE_DIR}/integration/flags_data_remote.py"
                 "${PROJECT_SOURCE_DIR}")
set_tests_properties(flags_data_remote PROPERTIES LABELS "integration;flags_data" TIMEOUT 300)
