#!/usr/bin/env bash
# The sweep chart against the DELAY preset: one `getflags --sweep` run
# against a fresh `flagserver --preset delay --seed S`, its JSON and a
# chart of it (bench/plot_sweep.sh).
#
#   bash bench/sweep_delay.sh [--build DIR] [--no-build] [--seed S]
#                             [--levels LIST] [--codes N] [--out PREFIX]
#
# Defaults: seed 7, levels 1,5,20,100,1000, the first 25 codes of -a
# (50 requests), PREFIX bench/results/sweep-delay. Writes PREFIX.json (what
# getflags printed), PREFIX.txt (command, machine, the table) and
# PREFIX.png / PREFIX.svg. Takes about 3 minutes with the defaults (at m=1,
# 50 requests of 2.75 s on average). `bash bench/run.sh --only SWEEP` runs
# this script after the usual build.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
build="$repo/build-bench"
do_build=1
seed=7
levels=1,5,20,100,1000
codes=25
out="$here/results/sweep-delay"

usage() { sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
    --build) build=$2; shift 2 ;;
    --no-build) do_build=0; shift ;;
    --seed) seed=$2; shift 2 ;;
    --levels) levels=$2; shift 2 ;;
    --codes) codes=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "sweep_delay.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done
case "$build" in /*) ;; *) build="$PWD/$build" ;; esac
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac

say() { printf '[sweep] %s\n' "$*" >&2; }

if [ "$do_build" = 1 ]; then
    if [ ! -f "$build/CMakeCache.txt" ]; then
        say "configuring $build (Release)"
        cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release >&2
    fi
    say "building getflags and flagserver in $build"
    cmake --build "$build" -j"$(nproc)" --target getflags flagserver \
        >"$build/bench-build.log" 2>&1 || { tail -30 "$build/bench-build.log" >&2; exit 1; }
fi
getflags="$build/src/getflags/getflags"
flagserver="$build/src/flagserver/flagserver"
for b in "$getflags" "$flagserver"; do
    [ -x "$b" ] || { say "$b not built"; exit 1; }
done

work=$(mktemp -d /tmp/getflags-sweep-XXXXXX)
fs_pid=""
cleanup() {
    if [ -n "$fs_pid" ]; then
        kill -TERM "$fs_pid" 2>/dev/null || true
        wait "$fs_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Access log on stdout (first line: "listening on http://ADDR:PORT").
"$flagserver" --preset delay --seed "$seed" --port 0 --bind 127.0.0.1 \
    --directory "$repo/flags_data" >"$work/access.log" 2>"$work/flagserver.err" &
fs_pid=$!
url=""
for _ in $(seq 200); do
    url=$(sed -n '1s/^listening on \(http:[^ ]*\).*/\1/p' "$work/access.log")
    [ -n "$url" ] && break
    kill -0 "$fs_pid" 2>/dev/null || break
    sleep 0.05
done
[ -n "$url" ] || { say "flagserver did not start: $(cat "$work/flagserver.err")"; exit 1; }
url="${url%/}/flags"
say "flagserver --preset delay --seed $seed on $url (pid $fs_pid)"

cmd=("$getflags" --sweep "$levels" --json -a -l "$codes" -s "$url" -q -o "$work/out")
shown="getflags --sweep $levels --json -a -l $codes -s $url -q -o DIR"
say "running: $shown"
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
set +e
"${cmd[@]}" >"$work/sweep.json" 2>"$work/getflags.err"
rc=$?
set -e
finished=$(date -u +%Y-%m-%dT%H:%M:%SZ)
sleep 0.1 # the last access-log line
if [ "$rc" -ne 0 ] || [ -s "$work/getflags.err" ]; then
    say "getflags exited $rc; stderr:"
    cat "$work/getflags.err" >&2
fi
[ -s "$work/sweep.json" ] || { say "no JSON from getflags"; exit 1; }

mkdir -p "$(dirname "$out")"
cp "$work/sweep.json" "$out.json"

# The text table getflags prints without --json/-q, rebuilt from the JSON
# (same columns and formats), plus what the server saw.
python3 - "$out.json" "$work/access.log" >"$work/table.txt" <<'PY'
import json, re, sys
rows = json.load(open(sys.argv[1]))
print("%6s %10s %10s %9s %9s %9s %9s %5s %9s %6s" % ("m", "elapsed_s", "req/s", "p50_ms",
      "p95_ms", "p99_ms", "max_ms", "ok", "not_found", "errors"))
for r in rows:
    l = r["latency_ms"]
    print("%6u %10.3f %10.1f %9.2f %9.2f %9.2f %9.2f %5d %9d %6d" % (
        r["m"], r["elapsed_s"], r["requests_per_s"], l["p50"], l["p95"], l["p99"], l["max"],
        r["ok"], r["not_found"], r["error"]))
n, inflight, status = 0, 0, {}
for line in open(sys.argv[2]):
    m = re.search(r" (\d{3}) delay=\d+ .*inflight=(\d+)", line)
    if m:
        n += 1
        status[m.group(1)] = status.get(m.group(1), 0) + 1
        inflight = max(inflight, int(m.group(2)))
print()
print(f"flagserver saw {n} requests over the whole sweep, status {status}, "
      f"largest inflight {inflight}")
PY

{
    echo "getflags --sweep against flagserver --preset delay (uniform 0.5-5 s per answer)"
    echo
    echo "command:  $shown"
    echo "server:   flagserver --preset delay --seed $seed --port 0 --bind 127.0.0.1 --directory flags_data"
    echo "started:  $started"
    echo "finished: $finished"
    echo "exit:     $rc"
    echo "getflags: $("$getflags" --version | head -1) (git $(git -C "$repo" describe --always --dirty 2>/dev/null || echo '?'))"
    echo "machine:  $(nproc) cores, $(uname -srm)"
    echo
    cat "$work/table.txt"
    echo
    echo "Rows in the order of the levels asked for ($levels). A level above the"
    echo "number of codes ($codes) is capped at $codes: getflags reports the concurrency"
    echo "it actually used. One flagserver serves the whole sweep, so each level gets"
    echo "the next draws of the seed's sequence, not the same delays."
} >"$out.txt"
cat "$out.txt"

bash "$here/plot_sweep.sh" -t "getflags --sweep -a -l $codes against flagserver delay preset (seed $seed)" \
    "$out.json" "$out"
exit "$rc"
