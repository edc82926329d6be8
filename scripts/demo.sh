#!/usr/bin/env bash
# Installs what the build needs (no test dependencies), builds getflags and
# flagserver without the tests in build-demo/, starts the bundled flagserver
# on the LOCAL port (8000), runs `getflags -m 20` against it and stops the
# server. The images go to ./downloaded.
# Usage: bash scripts/demo.sh [getflags options...]
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

build=$GF_ROOT/build-demo

gf_step "demo: installing the build's packages if missing"
gf_install "${GF_BUILD_PACKAGES[@]}"

gf_step "demo: building getflags and flagserver (no tests) in $build"
# Tests off: no cmocka or python3 needed. A directory of its own, so the
# tests-on build of scripts/check.sh (build/) is never changed by this.
gf_build "$build" -DGETFLAGS_BUILD_TESTS=OFF -DBUILD_TESTING=OFF

gf_step "demo: starting flagserver --preset local (http://localhost:8000/flags)"
server_log=$(mktemp)
"$build/src/flagserver/flagserver" --preset local --quiet >"$server_log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -f "$server_log"' EXIT
started=0
for _ in $(seq 50); do
    grep -q '^listening on' "$server_log" && started=1 && break
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
done
if [ "$started" != 1 ]; then
    cat "$server_log" >&2
    echo "demo: flagserver did not start (is port 8000 in use?)" >&2
    exit 1
fi

gf_step "demo: getflags -m 20 $*"
cd "$GF_ROOT"
"$build/src/getflags/getflags" -m 20 "$@"
