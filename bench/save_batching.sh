#!/usr/bin/env bash
# Save batching against one uv_queue_work per save: builds getflags twice
# from the committed tree (HEAD), once as it is (one uv_queue_work per
# save) and once with bench/save_batching.patch applied (the saves asked
# for in one loop iteration go to the threadpool as one work item), then
# runs bench/save_batching.py, which times both in paired, alternating
# rounds against nginx on loopback.
#
#   bash bench/save_batching.sh [--runs N] [--out-fs tmpfs|disk|both]
#                               [--rev REV] [--no-strace] [--no-perf]
#   bash bench/run.sh --only SAVE [the same options]
#
# Defaults: 21 rounds per workload and file system, both file systems,
# REV=HEAD. Takes about 5 minutes. Prints the table; saves nothing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
rev=HEAD
pass=()
while [ $# -gt 0 ]; do
    case "$1" in
    --rev) rev=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) pass+=("$1"); shift ;;
    esac
done

say() { printf '[save] %s\n' "$*" >&2; }
for c in nginx cmake strace python3 patch; do
    command -v "$c" >/dev/null || { say "$c is missing (bash bench/run.sh installs what it needs)"; exit 1; }
done

tmp=$(mktemp -d /tmp/getflags-savebench-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

for v in plain batched; do
    git -C "$repo" archive --prefix="$v/" "$rev" | tar -x -C "$tmp"
done
if ! patch -s -d "$tmp/batched" -p1 <"$here/save_batching.patch"; then
    say "bench/save_batching.patch does not apply to $rev: saver.c changed since it was written."
    say "Rebuild the patch from the last commit with batching (git log -S uv_check_start -- src/getflags/saver.c)."
    exit 1
fi
for v in plain batched; do
    say "building $v (Release)"
    cmake -S "$tmp/$v" -B "$tmp/$v/build" -DCMAKE_BUILD_TYPE=Release >"$tmp/$v.log" 2>&1 &&
        cmake --build "$tmp/$v/build" -j"$(nproc)" --target getflags >>"$tmp/$v.log" 2>&1 ||
        { tail -20 "$tmp/$v.log" >&2; say "build of $v failed"; exit 1; }
done

hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -ge 8192 ]; then ulimit -n 8192; else ulimit -n "$hard"; fi
python3 "$here/save_batching.py" --plain "$tmp/plain/build/src/getflags/getflags" \
    --batched "$tmp/batched/build/src/getflags/getflags" --data "$repo/flags_data" \
    --tmp "$tmp" "${pass[@]}"
