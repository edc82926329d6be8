# Tests of the semaphore, the engine, the saver and whole runs.
gf_unit_test(test_sem SOURCES unit/test_sem.c LIBS getflags_core)
gf_unit_test(test_saver SOURCES unit/test_saver.c unit/tmpdir.c LIBS getflags_core)
gf_unit_test(test_sweep SOURCES unit/test_sweep.c LIBS getflags_core)
gf_unit_test(test_body SOURCES unit/test_body.c unit/tmpdir.c LIBS getflags_core)

# End-to-end runs against flagserver and nginx on loopback.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
function(gf_integration_test name script)
  add_test(NAME ${name} COMMAND ${Python3_EXECUTABLE} "${CMAKE_CURRENT_SOURCE_DIR}/integration/${script}")
  set_tests_properties(${name} PROPERTIES LABELS integration TIMEOUT 300
    ENVIRONMENT "GETFLAGS=$<TARGET_FILE:getflags>;FLAGSERVER=$<TARGET_FILE:flagserver>;GF_SRCDIR=${PROJECT_SOURCE_DIR};PYTHONPATH=${CMAKE_CURRENT_SOURCE_DIR}/integration;PYTHONDONTWRITEBYTECODE=1")
endfunction()
gf_integration_test(getflags_core getflags_core.py)
# The command line end to end: long options, a password in -s.
gf_integration_test(getflags_cli getflags_cli.py)
gf_integration_test(getflags_torture getflags_torture.py)
set_property(TEST getflags_torture APPEND PROPERTY ENVIRONMENT
             "GETFLAGS_TORTURE=$<TARGET_FILE:getflags_torture>")
if(GETFLAGS_SANITIZE)
  # Hundreds of runs, each a few times slower under ASan and LeakSanitizer.
  set_tests_properties(getflags_torture PROPERTIES TIMEOUT 900)
endif()

# Disk-full faults: a preloaded write() that fails on getflags's temporary files.
add_library(gf_enospc_shim MODULE integration/enospc_shim.c)
target_link_libraries(gf_enospc_shim PRIVATE ${CMAKE_DL_LIBS})
gf_integration_test(getflags_faults getflags_faults.py)
# Large bodies: peak memory against an ordinary run, temporary files.
gf_integration_test(getflags_memory getflags_memory.py)
set_property(TEST getflags_faults APPEND PROPERTY ENVIRONMENT
             "GF_ENOSPC_SHIM=$<TARGET_FILE:gf_enospc_shim>")
# A signal that cannot be watched: a preloaded uv_signal_start() that fails.
add_library(gf_signal_fail_shim MODULE integration/signal_fail_shim.c)
target_link_libraries(gf_signal_fail_shim PRIVATE PkgConfig::LIBUV ${CMAKE_DL_LIBS})
set_property(TEST getflags_faults APPEND PROPERTY ENVIRONMENT
             "GF_SIGNAL_FAIL_SHIM=$<TARGET_FILE:gf_signal_fail_shim>")

# The end-to-end runs again, each getflags under valgrind's memcheck: no
# error, no definite or indirect leak, no descriptor left open at exit.
find_program(VALGRIND_EXECUTABLE valgrind)
if(VALGRIND_EXECUTABLE AND NOT GETFLAGS_SANITIZE)
  gf_integration_test(getflags_core_valgrind getflags_core.py)
  set_property(TEST getflags_core_valgrind APPEND PROPERTY ENVIRONMENT "GF_VALGRIND=1")
  set_property(TEST getflags_core_valgrind APPEND PROPERTY LABELS valgrind)
endif()

# Cron use: manifest, --update, --retry-failed, lock, --rate, -m auto.
gf_integration_test(getflags_cron getflags_cron.py)

# The transfer layer: HTTP/2 over TLS, connection use, transport errors.
# No DNS answer: a preloaded getaddrinfo() that never returns for one host.
add_library(gf_dns_hang_shim MODULE integration/dns_hang_shim.c)
target_link_libraries(gf_dns_hang_shim PRIVATE ${CMAKE_DL_LIBS})
gf_integration_test(getflags_transfer getflags_transfer.py)
set_property(TEST getflags_transfer APPEND PROPERTY ENVIRONMENT
             "GF_DNS_HANG_SHIM=$<TARGET_FILE:gf_dns_hang_shim>")

# The transfer layer's private TLS setup (--cacert read once).
gf_unit_test(test_transfer SOURCES unit/test_transfer.c unit/tmpdir.c LIBS getflags_core)
target_include_directories(test_transfer PRIVATE "${PROJECT_SOURCE_DIR}/src/getflags")
target_link_libraries(test_transfer PRIVATE PkgConfig::OPENSSL)

# The per-code state machine through a fake transfer layer.
gf_unit_test(test_fetch SOURCES unit/test_fetch.c unit/tmpdir.c LIBS getflags_core)
target_include_directories(test_fetch PRIVATE "${PROJECT_SOURCE_DIR}/src/getflags")
# The pace of new connections, under a fake clock.
gf_unit_test(test_pacer SOURCES unit/test_pacer.c LIBS getflags_core)
target_include_directories(test_pacer PRIVATE "${PROJECT_SOURCE_DIR}/src/getflags")
