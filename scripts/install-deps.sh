#!/usr/bin/env bash
# Installs everything a fresh Debian 12 machine needs to build, run and test Allot.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git clang-format clang-14 libclang-rt-14-dev
  # libraries
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc grpc-proto
  libtorch-dev libopenblas0-pthread libgloo-dev
  libspdlog-dev libfmt-dev prometheus-cpp-dev libyaml-cpp-dev
  libgtest-dev libgmock-dev libcurl4-openssl-dev nlohmann-json3-dev libmicrohttpd-dev
  # test and ops tools
  prometheus nghttp2-client python3-grpcio python3-grpc-tools python3-protobuf curl procps
  gnuplot-nox
)

stamp=/var/lib/allot-deps.stamp
want=$(printf '%s\n' "${PACKAGES[@]}" | sort | sha1sum | cut -c1-12)
if [[ -f $stamp && $(cat "$stamp") == "$want" ]] && dpkg -s "${PACKAGES[@]}" >/dev/null 2>&1; then
  echo "install-deps: all packages present"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"
echo "$want" | $SUDO tee "$stamp" >/dev/null
echo "install-deps: done"
