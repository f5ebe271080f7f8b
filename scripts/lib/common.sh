# Shared by scripts/*.sh: install what is missing, then configure and build.
# Debian 12 packages; apt-get runs only when something is missing.

choreo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# `x=$(step)` runs the step in a subshell, where bash turns `set -e` off: without this a
# failed command inside it (a pip install) would not stop the step, and the script would
# fail later for a reason far from the cause.
shopt -s inherit_errexit

# fail_step WHAT: says which step failed and stops the script.
fail_step() {
  echo "error: $1" >&2
  exit 1
}

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
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q || fail_step "apt-get update failed (is Debian's archive reachable?)"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" ||
    fail_step "apt-get install of ${missing[*]} failed"
}

# The packages every build needs.
core_packages=(g++ cmake ninja-build libboost1.81-dev libfmt-dev doctest-dev libbenchmark-dev libsqlite3-dev libsigc++-3.0-dev libboost-json1.81-dev libboost-url1.81-dev pkg-config libhiredis-dev redis-server librdkafka-dev)

# configure_and_build BUILD_DIR [cmake args...]
configure_and_build() {
  local dir=$1
  shift
  cmake -S "$choreo_root" -B "$dir" -G Ninja "$@" >/dev/null
  cmake --build "$dir" -j "$(nproc)"
}

# ensure_conan: prints the path of a conan 2 program, installed from PyPI into a virtual
# environment under build-tools/ the first time (Debian 12's pip refuses system installs).
conan_version=2.34.0
ensure_conan() {
  local venv=$choreo_root/build-tools/conan
  if ! "$venv/bin/conan" --version 2>/dev/null | grep -q "$conan_version"; then
    ensure_packages python3-venv >&2
    echo "==> installing conan $conan_version into $venv" >&2
    python3 -m venv "$venv" >&2 || fail_step "creating the virtual environment $venv failed"
    "$venv/bin/pip" install -q "conan==$conan_version" >&2 ||
      fail_step "pip install conan==$conan_version into $venv failed (is PyPI reachable?)"
    "$venv/bin/conan" --version >/dev/null 2>&1 || fail_step "conan was installed into $venv but does not run"
  fi
  echo "$venv/bin/conan"
}

# ensure_kafka_broker: prints the folder of the Apache Kafka broker's jars that the Kafka
# tests start (a single KRaft node on loopback), resolved the first time by Maven from
# tools/kafka/pom.xml (Maven Central) into build-tools/kafka-broker.
ensure_kafka_broker() {
  local libs=$choreo_root/build-tools/kafka-broker/libs
  local version
  version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$choreo_root/tools/kafka/pom.xml")
  if [ ! -f "$libs/kafka_2.13-$version.jar" ]; then
    ensure_packages openjdk-17-jre-headless maven >&2
    echo "==> resolving the Kafka $version broker's jars into $libs" >&2
    rm -rf "$libs"
    mvn -q -B -f "$choreo_root/tools/kafka/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$libs" -DincludeScope=runtime >&2 ||
      fail_step "Maven could not resolve the Kafka $version broker's jars (is Maven Central reachable?)"
    [ -f "$libs/kafka_2.13-$version.jar" ] || fail_step "Maven finished but $libs has no kafka_2.13-$version.jar"
  fi
  echo "$libs"
}

# free_port: prints a TCP port free on loopback now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for_port PORT SECONDS: until something listens on loopback PORT; fails after SECONDS.
wait_for_port() {
  local port=$1 deadline=$((SECONDS + $2))
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "nothing listens on 127.0.0.1:$port after $2 s" >&2; return 1; }
    sleep 0.2
  done
}

# start_kafka_broker LIBS DIR: formats a single KRaft node's storage in DIR and starts it on
# free loopback ports with the settings of tools/kafka/server.properties (which the tests use
# too; flushing left to the OS, as Kafka does by default); prints "PID PORT" once it listens.
# Its log is DIR/broker.log.
start_kafka_broker() {
  local libs=$1 dir=$2 port controller sasl
  port=$(free_port)
  controller=$(free_port)
  sasl=$(free_port)
  mkdir -p "$dir"
  sed -e "s|@BROKER@|127.0.0.1:$port|g" -e "s|@CONTROLLER@|127.0.0.1:$controller|g" \
    -e "s|@SASL@|127.0.0.1:$sasl|g" -e "s|@DATA@|$dir/data|g" \
    "$choreo_root/tools/kafka/server.properties" >"$dir/server.properties"
  java -cp "$libs/*" kafka.tools.StorageTool format -t "$(python3 -c 'import base64, os; print("A" + base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")[1:])')" \
    -c "$dir/server.properties" >"$dir/format.log" 2>&1
  java -Xms128m -Xmx512m -XX:+UseSerialGC -cp "$libs/*" kafka.Kafka "$dir/server.properties" >"$dir/broker.log" 2>&1 &
  local pid=$!
  wait_for_port "$port" 90 >&2
  echo "$pid $port"
}
