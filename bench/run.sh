#!/usr/bin/env bash
# One command for the getflags benchmark suite: installs what is missing,
# builds getflags (Release) if needed, then runs bench/bench.py.
#
#   bash bench/run.sh [--runs N] [--build DIR] [--only B1,B3,B5] [--quick]
#                     [--seed S] [--no-save] [--no-build] [--b5-rtt 50,150] [--b5-m 5,20,100]
#   bash bench/run.sh --only SWEEP     # the sweep chart (bench/sweep_delay.sh)
#   bash bench/run.sh --only SAVE      # save batching or not (bench/save_batching.sh)
#   bash bench/run.sh --only B6 [--runs N] [--out-dir DIR]   # memory, large images
#
# Everything after the options it knows is passed to bench.py as well; see
# bench/README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
build="$repo/build-bench"
do_build=1
only=""
pass=()

while [ $# -gt 0 ]; do
    case "$1" in
    --build) build=$2; pass+=("$1" "$2"); shift 2 ;;
    --build=*) build=${1#--build=}; pass+=("$1"); shift ;;
    --no-build) do_build=0; shift ;;
    --only) only=$2; shift 2 ;;
    --only=*) only=${1#--only=}; shift ;;
    -h|--help)
        sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0 ;;
    *) pass+=("$1"); shift ;;
    esac
done
case "$build" in /*) ;; *) build="$PWD/$build" ;; esac

# SWEEP in --only is bench/sweep_delay.sh, and B6 bench/big_bodies.py
# (memory against 10 MiB gzip images), run after the other workloads
# listed (if any) and not part of a full run.
sweep=0
save=0
b6=0
if [ -n "$only" ]; then
    rest=()
    IFS=, read -r -a items <<<"$only"
    for w in "${items[@]}"; do
        case "${w^^}" in
        SWEEP) sweep=1 ;;
        B6) b6=1 ;;
        SAVE) save=1 ;;
        "") ;;
        *) rest+=("$w") ;;
        esac
    done
    if [ ${#rest[@]} -gt 0 ]; then
        only=$(IFS=,; echo "${rest[*]}")
        pass=(--only "$only" "${pass[@]}")
    else
        only=""
    fi
fi

say() { printf '[bench] %s\n' "$*" >&2; }

# ---- tools -----------------------------------------------------------------
# command -> Debian package
declare -A pkg=(
    [nginx]=nginx-light [curl]=curl [openssl]=openssl [wget2]=wget2 [aria2c]=aria2
    [hyperfine]=hyperfine [gnuplot]=gnuplot-nox [python3]=python3 [strace]=strace [patch]=patch
    [cmake]=cmake [cc]=build-essential [pkg-config]=pkg-config
)
missing=()
for c in "${!pkg[@]}"; do
    command -v "$c" >/dev/null 2>&1 || missing+=("${pkg[$c]}")
done
[ -x /usr/bin/time ] || missing+=(time)
# getflags' own build dependencies (headers), checked through pkg-config.
if command -v pkg-config >/dev/null 2>&1; then
    pkg-config --exists libuv || missing+=(libuv1-dev)
    pkg-config --exists libcurl || missing+=(libcurl4-openssl-dev)
    pkg-config --exists libcjson || missing+=(libcjson-dev)
else
    missing+=(libuv1-dev libcurl4-openssl-dev libcjson-dev)
fi
[ -e /usr/include/http_parser.h ] || missing+=(libhttp-parser-dev)

if [ ${#missing[@]} -gt 0 ]; then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    if [ "$(id -u)" -eq 0 ]; then
        say "installing: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >&2
        apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
    else
        say "missing packages: ${missing[*]}"
        say "run as root, or: sudo apt-get install ${missing[*]}"
        exit 1
    fi
fi

# SAVE builds its own two binaries; the options after it are its own.
if [ "$save" = 1 ]; then
    if [ -n "$only" ] || [ "$sweep" = 1 ] || [ "$b6" = 1 ]; then
        say "--only SAVE runs alone (it builds two variants of getflags itself)"
        exit 2
    fi
    exec bash "$here/save_batching.sh" "${pass[@]}"
fi

# ---- build -----------------------------------------------------------------
# An incremental build: a no-op when the binaries are current, so the
# numbers are always for the tree as it is.
if [ "$do_build" = 1 ]; then
    if [ ! -f "$build/CMakeCache.txt" ]; then
        say "configuring $build (Release)"
        cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release >&2
    fi
    type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")
    [ "$type" = Release ] || say "warning: $build is a '$type' build, not Release"
    say "building getflags and flagserver in $build"
    if ! cmake --build "$build" -j"$(nproc)" >"$build/bench-build.log" 2>&1; then
        # Only the two programs are needed; tests may be mid-edit elsewhere.
        cmake --build "$build" -j"$(nproc)" --target getflags >>"$build/bench-build.log" 2>&1 ||
            { tail -30 "$build/bench-build.log" >&2; say "build failed"; exit 1; }
        cmake --build "$build" -j"$(nproc)" --target flagserver >>"$build/bench-build.log" 2>&1 ||
            say "flagserver did not build (B3 will be skipped); see $build/bench-build.log"
        cmake --build "$build" -j"$(nproc)" --target rttproxy >>"$build/bench-build.log" 2>&1 ||
            say "rttproxy did not build (B5 will be skipped); see $build/bench-build.log"
    fi
fi
[ -x "$build/src/getflags/getflags" ] || { say "no getflags in $build"; exit 1; }

# B3 opens ~1000 sockets at once.
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -ge 8192 ]; then ulimit -n 8192; else ulimit -n "$hard"; fi

cmd="bash bench/run.sh"
[ ${#pass[@]} -gt 0 ] && cmd+=" ${pass[*]}"
export BENCH_COMMAND="$cmd"
cd "$repo"
if [ "$sweep" = 0 ] && [ "$b6" = 0 ]; then
    exec python3 "$here/bench.py" "${pass[@]}" --build "$build"
fi
if [ -n "$only" ]; then
    python3 "$here/bench.py" "${pass[@]}" --build "$build"
fi
if [ "$b6" = 1 ]; then
    if [ "$sweep" = 0 ]; then
        exec python3 "$here/big_bodies.py" "${pass[@]}" --build "$build"
    fi
    python3 "$here/big_bodies.py" "${pass[@]}" --build "$build"
fi
exec bash "$here/sweep_delay.sh" --no-build --build "$build"
