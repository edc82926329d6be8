#!/usr/bin/env bash
# Installs what is missing, builds with -Werror and runs the whole test
# suite through ctest. Usage: bash scripts/check.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

gf_install "${GF_BUILD_PACKAGES[@]}" "${GF_TEST_PACKAGES[@]}"
gf_build "$GF_ROOT/build"
cd "$GF_ROOT/build"
ctest --output-on-failure -j"$(nproc)" --timeout 300
