#!/usr/bin/env bash
# Installs every Debian package the project needs that is missing; does nothing when all are present.
# This script is the project's only source of dependencies (see README.md).
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libboost1.81-dev libboost-json1.81-dev
  libsimdjson-dev libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 curl procps clang-format
  clang libclang-rt-14-dev libssl-dev openssl
  nginx haproxy wrk prometheus
  chromium
  nats-server libnats-dev dnsmasq-base
  libzmq3-dev cppzmq-dev libmsgpuck-dev python3-zmq python3-msgpack
)
# Node.js and npm for the dashboard's browser test (tests/browser/). A Node.js from elsewhere that
# brings its own npm (e.g. NodeSource's) conflicts with Debian's npm package: keep it if present.
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Debian's nginx, haproxy and prometheus packages start their system services on install; the demo
# and the tests run their own instances, so keep the services from starting: a policy-rc.d that
# exits 101 ("action forbidden") while installing, removed afterwards only if this script created
# it.
POLICY_RC=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$POLICY_RC" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY_RC" >/dev/null
  $SUDO chmod 755 "$POLICY_RC"
  created_policy=1
fi
remove_policy() { if [ "$created_policy" -eq 1 ]; then $SUDO rm -f "$POLICY_RC"; fi; }
trap remove_policy EXIT
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
