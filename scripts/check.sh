#!/usr/bin/env bash
# Installs what is missing, then runs everything CI checks:
#   1. a -Werror build and the whole ctest suite (unit, integration,
#      flagserver, packaging, valgrind);
#   2. an AddressSanitizer + UndefinedBehaviorSanitizer build and its
#      unit and integration tests;
#   3. the libFuzzer targets for a short, fixed time;
#   4. cppcheck on src/.
# Usage: bash scripts/check.sh [--quick]   (--quick: stage 1 only)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

quick=0
[ "${1:-}" = "--quick" ] && quick=1
jobs=$(nproc)

gf_install "${GF_BUILD_PACKAGES[@]}" "${GF_TEST_PACKAGES[@]}"
# 300 descriptors are too few for the 1,000-connection tests.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

echo "== build (-Werror) and ctest"
gf_build "$GF_ROOT/build"
(cd "$GF_ROOT/build" && ctest --output-on-failure -j"$jobs" --timeout 600)
[ "$quick" = 1 ] && exit 0

echo "== ASan + UBSan build and ctest"
gf_build "$GF_ROOT/build-sanitize" -DGETFLAGS_SANITIZE=ON
(cd "$GF_ROOT/build-sanitize" &&
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        ctest --output-on-failure -j"$jobs" --timeout 900 -L 'unit|integration' -LE packaging)

echo "== fuzzing"
GF_FUZZ_BUILD_DIR="$GF_ROOT/build-fuzz" bash "$GF_ROOT/tests/fuzz/run_fuzzers.sh" 15

echo "== cppcheck"
cppcheck -q --enable=warning,performance,portability --std=c11 --inline-suppr \
    -I "$GF_ROOT/include" --error-exitcode=1 "$GF_ROOT/src"
echo "all checks passed"
