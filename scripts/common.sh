# Shared by scripts/demo.sh and scripts/check.sh: install what is missing
# and build. Sourced, not run.
set -euo pipefail

GF_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Debian packages the build needs.
GF_BUILD_PACKAGES=(build-essential cmake pkg-config libuv1-dev libcurl4-openssl-dev libssl-dev
    libcjson-dev libhttp-parser-dev zlib1g-dev)
# Extra packages the test suite needs.
GF_TEST_PACKAGES=(libcmocka-dev python3 nginx-light openssl curl valgrind clang
    libclang-rt-14-dev strace groff-base dpkg-dev file cppcheck iproute2 util-linux)

# gf_install PKG...: apt-get installs the packages that are not installed yet.
gf_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing packages: ${missing[*]} (run as root to install them)" >&2
        return 1
    fi
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# gf_build DIR [CMAKE ARGS...]: configures and builds into DIR.
gf_build() {
    local dir=$1
    shift
    cmake -S "$GF_ROOT" -B "$dir" -DGETFLAGS_WERROR=ON "$@" >/dev/null
    cmake --build "$dir" -j"$(nproc)"
}
