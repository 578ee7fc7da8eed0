#!/usr/bin/env bash
# Installs everything passlab's build, tests, quickstart and analysis need, idempotently:
#   1. Debian packages, by name (skipped when all are already installed);
#   2. one Python virtual environment (PASSLAB_VENV, default ~/.local/share/passlab/venv) with the
#      pinned versions of scripts/requirements.txt (skipped when the stamp matches the pins).
# Prints the venv path on its last line as `PASSLAB_VENV=...` so callers can eval it.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

DEB_PACKAGES=(
  build-essential cmake ninja-build ccache git pkg-config
  libopenmpi-dev openmpi-bin
  libhdf5-dev hdf5-tools
  libtomlplusplus-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libcli11-dev
  libopencv-dev zlib1g-dev
  libtcmalloc-minimal4 libgoogle-perftools-dev
  clang libclang-rt-14-dev
  dataset-fashion-mnist
  python3-venv
)

missing=()
for p in "${DEB_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "[install-deps] installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "[install-deps] Debian packages: all ${#DEB_PACKAGES[@]} present"
fi

VENV=${PASSLAB_VENV:-$HOME/.local/share/passlab/venv}
REQ="$here/requirements.txt"
stamp="$VENV/.passlab-requirements.sha256"
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "[install-deps] Python venv up to date: $VENV"
else
  echo "[install-deps] preparing Python venv $VENV (pinned: $(grep -v '^#' "$REQ" | tr '\n' ' '))"
  [ -x "$VENV/bin/python" ] || { mkdir -p "$(dirname "$VENV")"; python3 -m venv "$VENV"; }
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -r "$REQ"
  echo "$want" > "$stamp"
fi
echo "PASSLAB_VENV=$VENV"
