#!/usr/bin/env bash
# Runs scripts/device-check.sh here (Debian 12, root, no GPU) the way it would run on the device
# machine, as far as a CPU machine can: inside a private mount namespace in which the system's
# copies of everything .device-debs/ carries are hidden (overlay whiteouts over /usr/bin,
# /usr/include and /usr/lib/x86_64-linux-gnu, tmpfs over /etc/openmpi, and an ld.so.cache
# rebuilt without them), so MPI, HDF5, TOML++, spdlog, fmt, CLI11, GTest and tcmalloc can only
# come from the unpacked prefix. OpenCV, zlib's header and -lz link, and libcurl.so.4 are hidden
# too (the first is not carried; the others exercise the fallback logic). Nothing outside the
# namespace changes; the processes running on this machine keep seeing the real /usr.
#
#   scripts/device-check-dryrun.sh [STAGES]      # default: "deps configure build"
# Environment: as device-check.sh (DC_BUILD defaults to build-dryrun, DC_JOBS to 2); e.g. the
# LibTorch 2.11 compile check against the device's PyTorch version:
#   DC_TORCH_PREFIX=/tmp/torch211/torch/share/cmake DC_BUILD=$PWD/build-t211 \
#     nice -n 5 scripts/device-check-dryrun.sh "deps configure build"
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "device-check-dryrun: needs root (mount namespace)" >&2; exit 1; }
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export DC_STAGES=${1:-deps configure build}
export DC_BUILD=${DC_BUILD:-$ROOT/build-dryrun}
export DC_JOBS=${DC_JOBS:-2}
export DC_DEBROOT=${DC_DEBROOT:-/tmp/passlab-dryrun-debroot}
export CCACHE_BASEDIR=$ROOT CCACHE_NOHASHDIR=1   # as scripts/env.sh
ns=$(mktemp -d /tmp/passlab-dryrun-ns.XXXXXX)

# Whiteouts (character devices 0/0) for what the device lacks.
hide() {  # hide DIR PATTERN...: whiteouts in $ns/wh/DIR for the entries of DIR matching a pattern
  local dir=$1; shift
  mkdir -p "$ns/wh$dir"
  local p e
  for p in "$@"; do
    for e in "$dir"/$p; do
      [ -e "$e" ] || [ -L "$e" ] || continue
      mknod "$ns/wh$dir/$(basename "$e")" c 0 0 2>/dev/null || true
    done
  done
}
L=/usr/lib/x86_64-linux-gnu
hide $L 'libmpi*' 'libopen-pal*' 'libopen-rte*' 'libompitrace*' 'liboshmem*' 'libmca_common_*' 'libhdf5*' \
  'libspdlog*' 'libfmt*' 'libtomlplusplus*' 'libtcmalloc*' 'libopencv*' 'libgtest*' 'libgmock*' 'libhwloc*' \
  'libevent*' 'libpmix*' 'libsz.*' 'libaec*' 'libmunge*' 'libcurl.so*' 'libz.so' 'libz.a' \
  'libfabric*' 'libuc[mpst]*' 'libpsm*' 'libibverbs*' 'librdmacm*' 'libnl-3*' 'libnl-route-3*' \
  openmpi pmix2 hdf5 cmake pkgconfig
hide /usr/include hdf5 spdlog fmt 'toml++' CLI gtest gmock opencv4 zlib.h zconf.h szlib.h 'mpi*.h'
hide /usr/include/x86_64-linux-gnu mpi openmpi opencv4 curl
hide /usr/bin 'mpi*' 'orte*' 'ompi*' 'opal*' 'h5*' oshrun 'shmem*'
hide /usr/share/cmake CLI11

cat > "$ns/inside.sh" <<EOF
set -e
mount --make-rprivate /
mount -t overlay overlay -o lowerdir=$ns/wh$L:$L $L
mount -t overlay overlay -o lowerdir=$ns/wh/usr/include:/usr/include /usr/include
mount -t overlay overlay -o lowerdir=$ns/wh/usr/bin:/usr/bin /usr/bin
mount -t overlay overlay -o lowerdir=$ns/wh/usr/share/cmake:/usr/share/cmake /usr/share/cmake
mount -t tmpfs none /etc/openmpi
ldconfig -X -C $ns/ld.so.cache       # writes only this file (-X: no links updated)
mount --bind $ns/ld.so.cache /etc/ld.so.cache
echo "dryrun: hidden: \$(ls $ns/wh$L | wc -l) entries of $L, \$(ls $ns/wh/usr/include | wc -l) of /usr/include, \$(ls $ns/wh/usr/bin | wc -l) of /usr/bin"
for f in /usr/bin/mpicc /usr/include/hdf5 /usr/include/x86_64-linux-gnu/openmpi $L/libmpi.so.40 $L/cmake/GTest \
         /usr/share/cmake/CLI11 /usr/include/zlib.h $L/libz.so $L/libcurl.so.4 /usr/include/x86_64-linux-gnu/sys/types.h; do
  if [ -e \$f ]; then [ \$f = /usr/include/x86_64-linux-gnu/sys/types.h ] || { echo "dryrun: \$f still visible" >&2; exit 1; }
  elif [ \$f = /usr/include/x86_64-linux-gnu/sys/types.h ]; then echo "dryrun: glibc headers lost" >&2; exit 1; fi
done
ldconfig -p | grep -E "libmpi|libhdf5|libcurl\.so\.4" && { echo "dryrun: ld.so.cache still lists them" >&2; exit 1; }
exec bash $ROOT/scripts/device-check.sh
EOF
set +e
unshare -m bash "$ns/inside.sh"
rc=$?
rm -rf "$ns"
exit $rc
