#!/usr/bin/env bash
# Formats the project's C++ with .clang-format (clang-format 14, Debian's clang-format-14).
#   scripts/format.sh          rewrites every tracked .hpp/.cpp in place
#   scripts/format.sh --check  lists the files it would change; exits 1 if there are any
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
ensure_packages clang-format-14
cd "$choreo_root"
mapfile -t files < <(git ls-files '*.hpp' '*.cpp' '*.h')
if [ "${1:-}" = "--check" ]; then
  unformatted=()
  for f in "${files[@]}"; do
    clang-format-14 --dry-run --Werror "$f" >/dev/null 2>&1 || unformatted+=("$f")
  done
  if [ ${#unformatted[@]} -ne 0 ]; then
    printf 'not formatted: %s\n' "${unformatted[@]}"
    echo "run scripts/format.sh to format them" >&2
    exit 1
  fi
  echo "all ${#files[@]} files formatted"
else
  clang-format-14 -i "${files[@]}"
  echo "formatted ${#files[@]} files"
fi
