#!/usr/bin/env bash
# Prepares, here on Debian 12 (amd64, apt reachable), what scripts/device-check.sh needs on a GPU
# machine that has CUDA, PyTorch, cmake and ninja but no network, no apt, and none of passlab's
# Debian dependencies (issue 10). Everything goes into .device-debs/ (git-ignored), which the
# device call carries:
#   .device-debs/primary/*.deb   OpenMPI, HDF5, TOML++, spdlog, fmt, CLI11, GTest/GMock, tcmalloc
#                                and their runtime libraries (hwloc, libevent, PMIx, munge, szip);
#                                device-check.sh puts their lib dirs first.
#   .device-debs/fallback/*.deb  libraries the primary ones need that an Ubuntu 24.04-like image
#                                usually has already (libcurl4 and its closure, OpenSSL, libudev),
#                                and zlib's header: device-check.sh keeps only the libraries whose
#                                SONAME the machine lacks, and the header only where it has none.
#   .device-debs/fashion-mnist/  the first $DEVICE_TRAIN train / $DEVICE_TEST test images of Debian's
#                                Fashion-MNIST as idx .gz files (enough for experiments/quickstart.toml).
#   .device-debs/MANIFEST        package=version and sizes.
# Versions are pinned to the ones installed here (the ones passlab is built and tested with).
# Not carried: OpenCV (its Debian runtime closure, via imgcodecs -> GDAL, is ~170 MiB of .debs;
# passlab builds without it, see PASSLAB_WITH_OPENCV), libfabric/UCX/PSM/verbs (only OpenMPI
# plugins for fabrics need them; device-check.sh deletes those plugins), the Fortran and C++ HDF5
# libraries, hdf5-helpers, and everything a CUDA image already has (libc, libstdc++, zlib).
#   scripts/fetch-device-debs.sh          # idempotent; prints the bundle size
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest=$root/.device-debs
DEVICE_TRAIN=${DEVICE_TRAIN:-8000}
DEVICE_TEST=${DEVICE_TEST:-2000}

PRIMARY=(
  libopenmpi3 libopenmpi-dev openmpi-bin openmpi-common
  libhwloc15 libevent-core-2.1-7 libevent-pthreads-2.1-7 libpmix2 libmunge2
  libhdf5-103-1 libhdf5-dev libsz2 libaec0
  libtomlplusplus3 libtomlplusplus-dev
  libspdlog1.10 libspdlog-dev libfmt9 libfmt-dev
  libcli11-dev libgtest-dev libgmock-dev
  libtcmalloc-minimal4
)
# The runtime closure of libhdf5 (libcurl.so.4, libcrypto.so.3) and libhwloc (libudev.so.1),
# minus libc6, libgcc-s1, libstdc++6 and zlib1g; and zlib.h (src/data includes it, links -lz).
FALLBACK=(
  zlib1g-dev
  libcurl4 libssl3 libudev1
  libbrotli1 libcom-err2 libdb5.3 libffi8 libgmp10 libgnutls30 libgssapi-krb5-2 libhogweed6
  libidn2-0 libk5crypto3 libkeyutils1 libkrb5-3 libkrb5support0 libldap-2.5-0 libnettle8
  libnghttp2-14 libp11-kit0 libpsl5 librtmp1 libsasl2-2 libsasl2-modules-db libssh2-1
  libtasn1-6 libunistring2 libzstd1
)

[ "$(dpkg --print-architecture)" = amd64 ] || { echo "fetch-device-debs: needs an amd64 Debian (the device is x86-64)" >&2; exit 1; }

# package=version, pinned to what is installed here. When that version is no longer in the
# archive (a security update superseded it), the archive's newest one, with a note.
pin() {
  local p=$1 v avail
  v=$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || true)
  avail=$(apt-cache madison "$p" | awk -F'|' '{gsub(/ /, "", $2); print $2}')
  if [ -z "$v" ] || ! grep -qxF -- "$v" <<<"$avail"; then
    local newest; newest=$(head -n1 <<<"$avail")
    [ -n "$newest" ] || { echo "fetch-device-debs: no downloadable version of $p" >&2; exit 1; }
    [ -n "$v" ] && echo "fetch-device-debs: $p $v (installed) is no longer in the archive; taking $newest" >&2
    v=$newest
  fi
  echo "$p=$v"
}

fetch() {  # fetch DIR PKG...
  local dir=$1; shift
  mkdir -p "$dir"
  local want=() p
  for p in "$@"; do want+=("$(pin "$p")"); done
  # Drop .debs of other versions or of packages no longer listed.
  local keep=" " f name
  for p in "${want[@]}"; do keep+="${p%%=*} "; done
  for f in "$dir"/*.deb; do
    [ -e "$f" ] || continue
    name=$(dpkg-deb -f "$f" Package)
    if [[ "$keep" != *" $name "* ]] || ! printf '%s\n' "${want[@]}" | grep -qxF "$name=$(dpkg-deb -f "$f" Version)"; then
      rm -f "$f"
    fi
  done
  local missing=()
  for p in "${want[@]}"; do
    local have=no
    for f in "$dir/${p%%=*}"_*.deb; do [ -e "$f" ] && have=yes; done
    [ $have = yes ] || missing+=("$p")
  done
  if ((${#missing[@]})); then
    # apt's sandbox user cannot write into root's folders: download in /tmp, then move.
    local tmp; tmp=$(mktemp -d); chmod 755 "$tmp"
    (cd "$tmp" && apt-get download -q "${missing[@]}" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
    mv "$tmp"/*.deb "$dir"/ 2>/dev/null || true
    rmdir "$tmp" 2>/dev/null || true
  fi
  for p in "${want[@]}"; do
    ls "$dir/${p%%=*}"_*.deb >/dev/null 2>&1 || { echo "fetch-device-debs: download of $p failed" >&2; exit 1; }
  done
}

fetch "$dest/primary" "${PRIMARY[@]}"
fetch "$dest/fallback" "${FALLBACK[@]}"

# A small Fashion-MNIST: the first N images and labels of each split, as idx .gz files that
# `passlab prepare fashion-mnist DIR` reads like the full ones.
src=/usr/share/datasets/fashion-mnist
mkdir -p "$dest/fashion-mnist"
if ! grep -qxF "fashion-mnist train=$DEVICE_TRAIN test=$DEVICE_TEST" "$dest/MANIFEST" 2>/dev/null ||
   [ "$(ls "$dest/fashion-mnist" | wc -l)" -ne 4 ]; then
python3 - "$src" "$dest/fashion-mnist" "$DEVICE_TRAIN" "$DEVICE_TEST" <<'PY'
import gzip, os, struct, sys
src, dst, ntrain, ntest = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
for split, n in (("train", ntrain), ("t10k", ntest)):
    for kind in ("images-idx3", "labels-idx1"):
        name = f"{split}-{kind}-ubyte.gz"
        with gzip.open(os.path.join(src, name), "rb") as f:
            data = f.read()
        ndim = data[3]
        dims = list(struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim]))
        per = 1
        for d in dims[1:]:
            per *= d
        n = min(n, dims[0])
        head = data[:4] + struct.pack(">" + "I" * ndim, n, *dims[1:])
        body = data[4 + 4 * ndim: 4 + 4 * ndim + n * per]
        with open(os.path.join(dst, name), "wb") as out:  # mtime 0: identical bytes every time
            with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=9) as g:
                g.write(head + body)
PY
fi

{
  echo "# .device-debs, made by scripts/fetch-device-debs.sh on $(. /etc/os-release; echo "$PRETTY_NAME")"
  for group in primary fallback; do
    for f in "$dest/$group"/*.deb; do
      printf '%s %s=%s %s\n' "$group" "$(dpkg-deb -f "$f" Package)" "$(dpkg-deb -f "$f" Version)" "$(stat -c %s "$f")"
    done
  done
  echo "fashion-mnist train=$DEVICE_TRAIN test=$DEVICE_TEST"
} > "$dest/MANIFEST"

echo "fetch-device-debs: $(ls "$dest"/primary/*.deb | wc -l) primary + $(ls "$dest"/fallback/*.deb | wc -l) fallback packages"
du -sh "$dest/primary" "$dest/fallback" "$dest/fashion-mnist"; du -sh "$dest"
