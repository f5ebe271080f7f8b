# Shared by scripts/*.sh: install what is missing, then configure and build.
# Debian 12 packages; apt-get runs only when something is missing.

choreo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

ensure_packages() {
  local missing=()
  for package in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$package")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "==> installing: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# The packages every build needs.
core_packages=(g++ cmake ninja-build libboost1.81-dev libfmt-dev doctest-dev libbenchmark-dev libsqlite3-dev libsigc++-3.0-dev libboost-json1.81-dev pkg-config)

# configure_and_build BUILD_DIR [cmake args...]
configure_and_build() {
  local dir=$1
  shift
  cmake -S "$choreo_root" -B "$dir" -G Ninja "$@" >/dev/null
  cmake --build "$dir" -j "$(nproc)"
}
