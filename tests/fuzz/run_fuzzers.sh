#!/usr/bin/env bash
# Builds the libFuzzer targets with clang in their own build directory and
# runs each for SECONDS (default 20) from its seed corpus. Exits non-zero if
# any target crashes, leaks or fails a check; the input that did it is
# kept in <build>/fuzz-artifacts/.
#
#   tests/fuzz/run_fuzzers.sh [SECONDS]
#   GF_FUZZ_BUILD_DIR=/tmp/fz tests/fuzz/run_fuzzers.sh 60
set -euo pipefail

seconds=${1:-20}
case $seconds in
'' | *[!0-9]* | 0)
    echo "usage: $0 [SECONDS]  (a positive integer)" >&2
    exit 2
    ;;
esac

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${GF_FUZZ_BUILD_DIR:-$root/build-fuzz}
targets=(fuzz_metadata fuzz_name fuzz_codes fuzz_gif)

cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DGETFLAGS_FUZZ=ON \
    -DGETFLAGS_BUILD_TESTS=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}"

mkdir -p "$build/fuzz-artifacts"
failed=()
for t in "${targets[@]}"; do
    # New inputs go to a scratch corpus; the committed seeds stay as they are.
    work="$build/fuzz-corpus/$t"
    mkdir -p "$work"
    args=(-max_total_time="$seconds" -print_final_stats=1
        -artifact_prefix="$build/fuzz-artifacts/$t-")
    if [[ -f "$here/$t.dict" ]]; then
        args+=(-dict="$here/$t.dict")
    fi
    echo "== $t for ${seconds}s"
    if ! "$build/tests/$t" "${args[@]}" "$work" "$here/corpus/$t"; then
        failed+=("$t")
    fi
done

if ((${#failed[@]} > 0)); then
    echo "FAILED: ${failed[*]} (inputs in $build/fuzz-artifacts/)" >&2
    exit 1
fi
echo "all fuzz targets ran ${seconds}s without a failure"
