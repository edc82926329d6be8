# Tests of the cron and scripting modules: manifest, lock, rate
# limit and adaptive concurrency.
gf_unit_test(test_ratelimit SOURCES unit/test_ratelimit.c LIBS getflags_core)
gf_unit_test(test_adaptive SOURCES unit/test_adaptive.c LIBS getflags_core)
gf_unit_test(test_hostgate SOURCES unit/test_hostgate.c LIBS getflags_core)
gf_unit_test(test_lock SOURCES unit/test_lock.c unit/tmpdir.c LIBS getflags_core)
gf_unit_test(test_manifest SOURCES unit/test_manifest.c unit/tmpdir.c LIBS getflags_core)
gf_unit_test(test_state SOURCES unit/test_state.c unit/tmpdir.c LIBS getflags_core)
# DIR across runs: names, manifest against disk, process set-up.
gf_integration_test(getflags_state getflags_state.py)
# ulimit -v: not under the sanitizers, whose shadow memory needs far more
# address space than any such limit allows.
if(NOT GETFLAGS_SANITIZE)
  gf_integration_test(getflags_vmlimit getflags_vmlimit.py)
endif()

# Servers that push back: nginx limit_req with 429 and Retry-After.
gf_integration_test(getflags_pushback getflags_pushback.py)
# Two runs wait out a minute of refusals, on top of 30 s pauses.
set_tests_properties(getflags_pushback PROPERTIES TIMEOUT 600)
