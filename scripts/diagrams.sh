#!/usr/bin/env bash
# Draws the shop's wiring, as registered at run time, like the seed's pictures: one PNG per
# flow and mode in docs/images (solid arrows: before_commit in the same transaction;
# dashed: after_commit, asynchronous). Run it after changing any context's listeners.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$choreo_root"

ensure_packages "${core_packages[@]}" graphviz
configure_and_build build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=g++ >/dev/null
mkdir -p docs/images
for mode in transactional saga; do
  for flow in create pay; do
    build/examples/shop/shop diagram --format dot --flow "$flow" --mode "$mode" > "docs/images/$flow-$mode.dot"
    dot -Tpng -Gdpi=110 "docs/images/$flow-$mode.dot" -o "docs/images/$flow-$mode.png"
    echo "docs/images/$flow-$mode.png"
  done
done
