#!/usr/bin/env bash
# A failed install step stops the script at that step, with its reason: here pip cannot
# install conan (a fake python3 makes a virtual environment whose pip fails), and
# `conan=$(ensure_conan)` must stop the script there rather than hand back a path to a
# conan that does not exist.
# Usage: failed_install_step.sh SOURCE_DIR
set -uo pipefail
source_dir=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/root/scripts/lib" "$work/bin"
cp "$source_dir/scripts/lib/common.sh" "$work/root/scripts/lib/"
real_python=$(command -v python3)
cat >"$work/bin/python3" <<FAKE
#!/usr/bin/env bash
if [ "\$1" = -m ] && [ "\$2" = venv ]; then
  mkdir -p "\$3/bin"
  printf '#!/bin/sh\necho "ERROR: Could not find a version that satisfies the requirement" >&2\nexit 1\n' >"\$3/bin/pip"
  chmod +x "\$3/bin/pip"
  exit 0
fi
exec "$real_python" "\$@"
FAKE
chmod +x "$work/bin/python3"

PATH="$work/bin:$PATH" bash -c '
  set -euo pipefail
  source "$1/scripts/lib/common.sh"
  conan=$(ensure_conan)
  echo "went on with $conan"' _ "$work/root" >"$work/out" 2>"$work/err"
status=$?
cat "$work/out" "$work/err"
[ "$status" -ne 0 ] || { echo "FAILED: the script went on after pip failed (exit 0)"; exit 1; }
if grep -q "went on with" "$work/out"; then echo "FAILED: the script went on after pip failed"; exit 1; fi
grep -q "error: pip install conan==.* failed" "$work/err" || { echo "FAILED: the failed step was not named"; exit 1; }
echo "ok: stopped at the failed pip install, with its reason"
