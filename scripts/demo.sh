#!/usr/bin/env bash
# Installs what is missing, builds, starts the bundled flagserver on the
# LOCAL port (8000), runs `getflags -m 20` against it and stops the server.
# Usage: bash scripts/demo.sh [getflags options...]
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

gf_install "${GF_BUILD_PACKAGES[@]}"
gf_build "$GF_ROOT/build"

server_log=$(mktemp)
"$GF_ROOT/build/src/flagserver/flagserver" --preset local --quiet >"$server_log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -f "$server_log"' EXIT
for _ in $(seq 50); do
    grep -q '^listening on' "$server_log" && break
    kill -0 "$server" 2>/dev/null || { cat "$server_log" >&2; exit 1; }
    sleep 0.1
done

cd "$GF_ROOT"
"$GF_ROOT/build/src/getflags/getflags" -m 20 "$@"
