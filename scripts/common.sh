# Shared by scripts/demo.sh and scripts/check.sh: the Debian packages they
# need, installing the missing ones, and building. Sourced, not run.
set -euo pipefail

GF_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Debian 12 packages, one per line with what needs it. A new test that runs
# a program adds its package to GF_TEST_PACKAGES (and to the README's
# "By hand" list).

# Building getflags and flagserver: all that scripts/demo.sh installs.
GF_BUILD_PACKAGES=(
    build-essential      # gcc, make, libc headers
    cmake
    pkg-config           # finds libuv, libcurl, cJSON
    libuv1-dev
    libcurl4-openssl-dev
    libssl-dev           # --cacert certificates in libcurl's OpenSSL store; SHA-256 (libcrypto)
    libcjson-dev
    libhttp-parser-dev   # flagserver's HTTP parser
    zlib1g-dev           # flagserver's gzip answers
)

# Everything the tests and scripts/check.sh's other stages run.
GF_TEST_PACKAGES=(
    libcmocka-dev        # unit tests
    python3              # integration tests, packaging tests
    python3-h2           # getflags_h2rogue: a server that breaks HTTP/2 (hyperframe, hpack)
    nginx-light          # integration tests against nginx (the package starts nginx on :80 under systemd)
    openssl              # the test CA and certificates for TLS tests
    strace               # getflags_transfer: the CA store is read once
    iproute2             # getflags_transfer: a network namespace without DNS (ip)
    util-linux           # getflags_transfer: unshare
    valgrind             # getflags_core_valgrind
    dpkg-dev             # dpkg-buildflags (hardening), dpkg-shlibdeps (package Depends)
    lintian              # package_deb
    groff-base           # package_manpage_lint
    man-db               # package_manpage_lint, package_deb: man --warnings
    clang                # fuzzers (tests/fuzz)
    libclang-rt-14-dev   # libFuzzer and the sanitizer runtimes for clang
    cppcheck             # check.sh's static analysis stage
    clang-format         # clang_format: every C file as .clang-format says
)

# gf_step TEXT: says what the script is doing now.
gf_step() {
    printf '\n== %s\n' "$*"
}

# gf_install PKG...: installs, with apt-get, those of the packages that are
# not installed yet, showing which and apt's progress.
gf_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        echo "all ${#} packages needed are installed"
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing packages: ${missing[*]}" >&2
        echo "run as root to install them, or: apt-get install ${missing[*]}" >&2
        return 1
    fi
    echo "installing ${#missing[@]} packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    echo "-- apt-get update"
    apt-get update
    echo "-- apt-get install (with what they depend on)"
    apt-get install -y --no-install-recommends "${missing[@]}"
}

# gf_build DIR [CMAKE ARGS...]: configures and builds into DIR with -Werror.
gf_build() {
    local dir=$1
    shift
    echo "-- configuring $dir: cmake -DGETFLAGS_WERROR=ON $*"
    mkdir -p "$dir"
    # Quiet unless it fails.
    cmake -S "$GF_ROOT" -B "$dir" -DGETFLAGS_WERROR=ON "$@" >"$dir/gf-configure.log" 2>&1 || {
        cat "$dir/gf-configure.log" >&2
        echo "cmake failed to configure $dir (output above)" >&2
        return 1
    }
    echo "-- building $dir"
    cmake --build "$dir" -j"$(nproc)"
}
