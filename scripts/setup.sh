#!/usr/bin/env bash
# Installs what the toolkit needs on Debian/Ubuntu: OpenBLAS (with LAPACKE), Open MPI (for
# training on several processes or machines with mpirun) and pkg-config, which SwiftPM uses to
# find their headers. Then, unless --packages is given, makes sure
# PTB can be found (--data / $PTB_DIR / corpora/ptb / ../shared/corpora/ptb) and downloads it
# with corpora/get-ptb.sh when it cannot.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

packages=(libopenblas-dev liblapacke-dev libopenmpi-dev openmpi-bin pkg-config)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

[ "${1:-}" = "--packages" ] && exit 0

has_ptb() { [ -f "$1/ptb.train.txt" ] && [ -f "$1/ptb.valid.txt" ] && [ -f "$1/ptb.test.txt" ]; }
if [ -n "${PTB_DIR:-}" ]; then
  has_ptb "$PTB_DIR" || { echo "error: PTB_DIR=$PTB_DIR lacks ptb.{train,valid,test}.txt" >&2; exit 1; }
elif ! has_ptb corpora/ptb && ! has_ptb ../shared/corpora/ptb; then
  corpora/get-ptb.sh
fi
