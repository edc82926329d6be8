#!/usr/bin/env bash
# Installs what is missing, then runs everything CI checks:
#   1. a -Werror build (tests on) in build/ and the whole ctest suite (unit,
#      integration, flagserver, packaging with lintian, valgrind);
#   2. an AddressSanitizer + UndefinedBehaviorSanitizer build in
#      build-sanitize/ and its unit and integration tests;
#   3. the libFuzzer targets for a short, fixed time (build-fuzz/);
#   4. cppcheck on src/.
# A failing stage does not stop the later ones; the script then ends with
# the failed stages named and a non-zero status. It ends with "all checks
# passed" only when every stage passed.
# Usage: bash scripts/check.sh [--quick]   (--quick: stage 1 only)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

quick=0
case ${1:-} in
--quick) quick=1 ;;
'') ;;
*)
    echo "usage: bash scripts/check.sh [--quick]" >&2
    exit 2
    ;;
esac
jobs=$(nproc)

gf_step "check: installing the build's and the tests' packages if missing"
gf_install "${GF_BUILD_PACKAGES[@]}" "${GF_TEST_PACKAGES[@]}" || {
    echo "check.sh: FAILED installing packages; nothing was checked" >&2
    exit 1
}
# 300 descriptors are too few for the 1,000-connection tests.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

stage_build_and_test() {
    gf_build "$GF_ROOT/build" -DGETFLAGS_BUILD_TESTS=ON -DBUILD_TESTING=ON -DGETFLAGS_SANITIZE=OFF
    echo "-- ctest in build/"
    ctest --test-dir "$GF_ROOT/build" --no-tests=error --output-on-failure -j"$jobs" --timeout 600
}

stage_sanitize() {
    gf_build "$GF_ROOT/build-sanitize" -DGETFLAGS_BUILD_TESTS=ON -DBUILD_TESTING=ON \
        -DGETFLAGS_SANITIZE=ON
    echo "-- ctest -L 'unit|integration' -LE packaging in build-sanitize/"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        ctest --test-dir "$GF_ROOT/build-sanitize" --no-tests=error --output-on-failure \
        -j"$jobs" --timeout 900 -L 'unit|integration' -LE packaging
}

stage_fuzz() {
    GF_FUZZ_BUILD_DIR="$GF_ROOT/build-fuzz" bash "$GF_ROOT/tests/fuzz/run_fuzzers.sh" 15
}

stage_cppcheck() {
    cppcheck -q --enable=warning,performance,portability --std=c11 --inline-suppr \
        -I "$GF_ROOT/include" --error-exitcode=1 "$GF_ROOT/src"
    echo "cppcheck found nothing"
}

stages=("build (-Werror) and ctest:stage_build_and_test")
if [ "$quick" = 0 ]; then
    stages+=("ASan + UBSan build and ctest:stage_sanitize"
        "fuzzing (15 s per target):stage_fuzz"
        "cppcheck on src/:stage_cppcheck")
fi

# ctest_digest DIR: the tests that failed in DIR's last ctest run, each
# with the end of its output. Printed again at the very end, because a CI
# log that keeps only its last lines would otherwise lose which test failed.
ctest_digest() {
    local dir=$1 log t
    log=$dir/Testing/Temporary/LastTest.log
    [ -s "$dir/Testing/Temporary/LastTestsFailed.log" ] || return 0
    while IFS=: read -r _ t; do
        echo "-- failed in ${dir##*/}/: $t (last 40 lines of its output)"
        awk -v t="$t" '
            $0 ~ "^[0-9]+/[0-9]+ Testing: " t "$" { on = 1; body = 0; next }
            on && /^Output:$/ { body = 1; getline; next }
            on && body && /^Test time = / { on = 0 }
            on && body { print }
        ' "$log" | tail -n 40
    done <"$dir/Testing/Temporary/LastTestsFailed.log"
}

# Only this run's failures are digested.
rm -f "$GF_ROOT"/build*/Testing/Temporary/LastTestsFailed.log
failed=()
n=0
for s in "${stages[@]}"; do
    n=$((n + 1))
    name=${s%%:*}
    gf_step "check: stage $n/${#stages[@]}: $name"
    t0=$SECONDS
    # Each stage in a subshell with errexit, so its first failing command
    # ends it; the outer script records the failure and goes on.
    set +e
    (
        set -e
        "${s##*:}"
    )
    rc=$?
    set -e
    if [ "$rc" -ne 0 ]; then
        echo "check.sh: stage $n/${#stages[@]} ($name) FAILED (exit $rc) after $((SECONDS - t0)) s" >&2
        failed+=("$n/${#stages[@]} $name")
    else
        echo "check.sh: stage $n/${#stages[@]} ($name) passed in $((SECONDS - t0)) s"
    fi
done

echo
if [ ${#failed[@]} -gt 0 ]; then
    for d in "$GF_ROOT/build" "$GF_ROOT/build-sanitize"; do
        ctest_digest "$d"
    done
    list=$(printf '%s; ' "${failed[@]}")
    echo "check.sh: FAILED stages: ${list%; }" >&2
    exit 1
fi
if [ "$quick" = 1 ]; then
    echo "quick check passed (stage 1 only; without --quick all four stages run)"
else
    echo "all checks passed"
fi
