# Sourced by passlab's scripts: common settings for building and running.
# shellcheck shell=bash
PASSLAB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PASSLAB_ROOT
export PASSLAB_VENV=${PASSLAB_VENV:-$HOME/.local/share/passlab/venv}
export PASSLAB_BUILD=${PASSLAB_BUILD:-$PASSLAB_ROOT/build}
# ccache must hit from clones in other folders (CI clones afresh).
export CCACHE_BASEDIR=$PASSLAB_ROOT
export CCACHE_NOHASHDIR=1
# mpirun as root (containers, CI) and with more ranks than cores.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1

passlab_configure_and_build() {
  local torch_prefix
  torch_prefix=$("$PASSLAB_VENV/bin/python" -c 'import torch; print(torch.utils.cmake_prefix_path)')
  local gen=()
  command -v ninja >/dev/null && gen=(-G Ninja)
  if [ ! -f "$PASSLAB_BUILD/CMakeCache.txt" ]; then
    cmake -S "$PASSLAB_ROOT" -B "$PASSLAB_BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$torch_prefix" -DPASSLAB_PYTHON="$PASSLAB_VENV/bin/python" "$@"
  fi
  cmake --build "$PASSLAB_BUILD" --parallel "${PASSLAB_JOBS:-$(nproc)}"
}
