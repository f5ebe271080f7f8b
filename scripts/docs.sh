#!/usr/bin/env bash
# Builds the API reference with Doxygen into build/docs/html (or the folder given), from
# the brief comments on every public name. Any warning fails it: an undocumented public
# name, a broken reference. On a fresh Debian 12 machine it first installs doxygen.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$choreo_root"

ensure_packages doxygen
export CHOREO_DOCS_OUT=${1:-$choreo_root/build/docs}
CHOREO_VERSION=$(sed -nE 's/^#define CHOREO_VERSION_(MAJOR|MINOR|PATCH) ([0-9]+)$/\2/p' include/choreo/version.hpp | paste -sd.)
export CHOREO_VERSION
rm -rf "$CHOREO_DOCS_OUT" && mkdir -p "$CHOREO_DOCS_OUT"
doxygen docs/Doxyfile
echo "API reference for choreo $CHOREO_VERSION: $CHOREO_DOCS_OUT/html/index.html"
