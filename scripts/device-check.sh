#!/usr/bin/env bash
# Issue 10 in one call on a lent GPU machine (x86-64, CUDA 13 with nvcc, PyTorch 2.x with its
# LibTorch, cmake, ninja; no network, no apt, none of passlab's Debian dependencies): build
# passlab against that PyTorch's LibTorch with CUDA and NCCL, then run the unit tests on the GPU,
# the NCCL communicator tests (one rank), bench/train_throughput against PyTorch eager (bf16
# autocast) with model FLOPs utilisation against a measured bf16 matrix-product peak,
# bench/allreduce over NCCL, and a GPU quickstart sweep checked by `passlab inspect --check`.
#
# PREPARED, NOT YET RUN on a GPU. Here (Debian 12, apt reachable), once:
#     scripts/fetch-device-debs.sh            # fills the ignored .device-debs/ (~23 MB)
# Then, from a session whose task is lent a machine, one call of the device tool's `run`:
#     command:   bash scripts/device-check.sh
#     carry:     [".device-debs"]
#     timeout_s: 600
# and give_back right after, unless rerunning at once: the machine stays warm ~30 s, and a rerun
# on it keeps build-device/ and /tmp (the unpacked prefix), so only changed files rebuild. With the
# ~15 min of device time a session has, a rerun gets about 4 min, e.g.:
#     command:   DC_STAGES="build ctest" DC_DEADLINE_S=200 bash scripts/device-check.sh
# The whole run ends by itself within DC_DEADLINE_S (default 540 s), stage by stage; a stage that
# fails or runs out of time is recorded and the next one runs (after a failed deps, configure or
# build it stops: the rest needs them).
#
# Checked here, without a GPU (scripts/device-check-dryrun.sh: deps, configure, build and CPU
# ctest entries in a mount namespace that hides the system's copies of the carried packages, with
# LibTorch 2.11.0+cu130 from its wheel): everything up to and including the build, and the ctest
# entries data, dist, dist_mpi2/3, core, core_mpi2, io, config, cli, models, prune, train,
# train_mpi2, tensorio, pass, pass_mpi2 and sweep on the CPU. Not checked: anything on a GPU.
#
# Output under $OUT (at most 8 files come back): device-check.log (every stage's full output, as
# it runs), summary.json (rewritten after each stage) and details.tar.gz (per-stage logs, ctest's
# LastTest.log and JUnit XML, benchmark JSON, the sweep's table and inspect output), written last.
#
# Stages (DC_STAGES, in this order): env deps configure build nccl peak bench allreduce sweep ctest
#   env        machine, GPU, driver, compilers, torch
#   deps       .device-debs/*.deb unpacked with dpkg-deb -x into $DC_DEBROOT (never into /):
#              primary/ first on the library path; from fallback/ only the libraries whose SONAME
#              the machine lacks; OpenMPI relocated (OPAL_PREFIX), its plugins for absent fabrics
#              removed; mpirun/mpiexec on PATH
#   configure  CMake: LibTorch from torch.utils.cmake_prefix_path, PASSLAB_WITH_CUDA=ON,
#              CMAKE_CUDA_ARCHITECTURES=$DC_CUDA_ARCH (90), the prefix's MPI/HDF5/TOML++/spdlog/
#              fmt/CLI11/GTest, OpenCV AUTO (absent: its image paths fail with a clear error)
#   build      ninja -j$DC_JOBS; `ldd` of the binary; `passlab --version`
#   nccl       tests/dist's communicator and reducer cases on cuda:0 with NCCL, one rank
#   peak       bf16 8192^3 matrix product in PyTorch (the MFU denominator)
#   bench      bench_train_throughput --device cuda --precision bf16: ResNet-18 (CIFAR stem, batch
#              256) and ResNet-50 (224, batch 64), passlab's Trainer vs PyTorch eager, side by side
#   allreduce  bench_allreduce --backend nccl (one rank: the path, not a bandwidth)
#   sweep      prepare the carried Fashion-MNIST subset; experiments/quickstart.toml under
#              mpirun -np 2 on the GPU (two run groups of one rank: NCCL needs a GPU per rank),
#              bf16; passlab inspect, inspect --check
#   ctest      every ctest entry except slurm (no Slurm there), on the GPU where a test's device
#              is auto
# Knobs (environment): OUT, DC_STAGES, DC_DEADLINE_S, DC_DEBS, DC_DEBROOT, DC_BUILD, DC_JOBS,
# DC_TORCH_PREFIX, DC_CUDA_ARCH, DC_CMAKE_ARGS (extra configure arguments), DC_CTEST_ARGS,
# DC_BENCH_STEPS, DC_SWEEP_DEVICE (cuda), DC_SWEEP_SET (more --set overrides), DC_LIMIT_<stage>
# (seconds; defaults in LIMIT below), PASSLAB_PYTHON.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
T0=$(date +%s)
export DC_BUILD=${DC_BUILD:-$ROOT/build-device}
export OUT=${OUT:-$DC_BUILD/out}
export DC_STAGES=${DC_STAGES:-env deps configure build nccl peak bench allreduce sweep ctest}
export DC_DEADLINE_S=${DC_DEADLINE_S:-540}
export DC_DEBS=${DC_DEBS:-$ROOT/.device-debs}
export DC_DEBROOT=${DC_DEBROOT:-/tmp/passlab-debroot}
export DC_JOBS=${DC_JOBS:-$(nproc)}
export DC_CUDA_ARCH=${DC_CUDA_ARCH:-90}
export DC_CMAKE_ARGS=${DC_CMAKE_ARGS:-}
export DC_CTEST_ARGS=${DC_CTEST_ARGS:-}
export DC_BENCH_STEPS=${DC_BENCH_STEPS:-40}
export DC_SWEEP_DEVICE=${DC_SWEEP_DEVICE:-cuda} DC_SWEEP_SET=${DC_SWEEP_SET:-}
export WORK=$DC_BUILD/device-check
export LOGS=$WORK/logs
export ROOT
mkdir -p "$OUT" "$LOGS"
LOG=$OUT/device-check.log
# This call's results only (a rerun keeps the build, not the last call's numbers).
rm -f "$LOGS"/*.log "$WORK"/{nccl_tests.json,peak.json,train_throughput.json,allreduce.json,sweep_table.txt,sweep_timing.tsv} \
  "$WORK"/{sweep_run_file.txt,ctest_junit.xml,ctest_LastTest.log,CMakeCache.txt}
: > "$WORK/stages.tsv"
echo "device-check $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') $(date -u +%FT%TZ) stages: $DC_STAGES" | tee "$LOG"

# ---- the environment every stage sees (the prefix is filled by the deps stage) -----------------
P=$DC_DEBROOT/primary
F=$DC_DEBROOT/fallback
export P F
export ORIG_LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}
export LD_LIBRARY_PATH="$P/usr/lib/x86_64-linux-gnu:$P/usr/lib/x86_64-linux-gnu/openmpi/lib:$P/usr/lib/x86_64-linux-gnu/hdf5/serial:$F/usr/lib/x86_64-linux-gnu:$F/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PATH="$DC_DEBROOT/bin:$PATH"
# Open MPI from a relocated prefix: its install dirs, PMIx's plugins, no hwloc plugins; single
# node (isolated launcher, no ssh), shared memory without CMA (not permitted in every VM).
export OPAL_PREFIX=$P/usr
export PMIX_MCA_mca_base_component_path=$P/usr/lib/x86_64-linux-gnu/pmix2/lib/pmix
export HWLOC_PLUGINS_PATH=$P/usr/lib/x86_64-linux-gnu/hwloc
export OMPI_MCA_plm=isolated
export OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_mca_base_component_show_load_errors=0
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# CPATH/LIBRARY_PATH as found, and as the deps stage sets them (zlib; from an earlier run too).
export ORIG_CPATH=${CPATH:-} ORIG_LIBRARY_PATH=${LIBRARY_PATH:-}
reset_paths() {
  if [ -n "$ORIG_CPATH" ]; then export CPATH=$ORIG_CPATH; else unset CPATH; fi
  if [ -n "$ORIG_LIBRARY_PATH" ]; then export LIBRARY_PATH=$ORIG_LIBRARY_PATH; else unset LIBRARY_PATH; fi
  [ -f "$DC_DEBROOT/env.sh" ] && source "$DC_DEBROOT/env.sh"
  return 0
}
reset_paths
export PYTHONUNBUFFERED=1 PASSLAB_PYTHON=${PASSLAB_PYTHON:-$(command -v python3)}

# ---- stages -------------------------------------------------------------------------------------
st_env() {
  set -x
  uname -a; cat /etc/os-release 2>/dev/null | head -3; nproc; free -g | head -2; df -h /tmp | tail -1
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem,power.limit --format=csv
  nvidia-smi -L
  nvcc --version | tail -2; gcc --version | head -1; cmake --version | head -1; ninja --version
  ldd --version | head -1; command -v dpkg-deb ar ccache nm gdb
  echo "CC=${CC:-} CXX=${CXX:-}"; "${CXX:-g++}" --version | head -1
  local stdcxx; stdcxx=$(ldconfig -p | awk '/libstdc\+\+\.so\.6 .*x86-64/{print $NF; exit}')
  echo "libstdc++: $stdcxx -> $(readlink -f "$stdcxx"); recursive_directory_iterator::__erase exported: $(nm -D "$(readlink -f "$stdcxx")" 2>/dev/null | grep -c recursive_directory_iterator7__erase)"
  "$PASSLAB_PYTHON" -c 'import torch, sys; print(sys.version.split()[0], torch.__version__, torch.version.cuda,
torch.cuda.is_available() and torch.cuda.get_device_name(0), torch.cuda.nccl.version(), torch.utils.cmake_prefix_path)'
}

# Unpacks one .deb into a directory (dpkg-deb, else ar + tar).
unpack_deb() {
  if command -v dpkg-deb >/dev/null; then dpkg-deb -x "$1" "$2"; return; fi
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && ar x "$1") || return 1
  tar -xf "$tmp"/data.tar.* -C "$2"; local rc=$?
  rm -rf "$tmp"; return $rc
}

st_deps() {
  ls "$DC_DEBS"/primary/*.deb >/dev/null || { echo "no .deb files in $DC_DEBS/primary (carry .device-debs)"; return 1; }
  # Unpacked once per set of .debs: a rerun keeps the files (and their times, so ninja rebuilds nothing).
  local stamp; stamp=$(cd "$DC_DEBS" && ls -l primary fallback | md5sum | cut -d' ' -f1)
  if [ "$(cat "$DC_DEBROOT/.stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "prefix $DC_DEBROOT is up to date"
  else
    rm -rf "$DC_DEBROOT"; mkdir -p "$P" "$F" "$DC_DEBROOT/bin" "$DC_DEBROOT/devlinks"
    local f n=0
    for f in "$DC_DEBS"/primary/*.deb; do unpack_deb "$f" "$P" || return 1; n=$((n + 1)); done
    for f in "$DC_DEBS"/fallback/*.deb; do unpack_deb "$f" "$F" || return 1; n=$((n + 1)); done
    echo "unpacked $n packages into $DC_DEBROOT ($(du -sh "$DC_DEBROOT" | cut -f1))"
    # Fallback libraries: keep those whose SONAME the machine lacks.
    local d l kept=() dropped=0
    for d in "$F/usr/lib/x86_64-linux-gnu" "$F/lib/x86_64-linux-gnu"; do
      [ -d "$d" ] || continue
      for l in "$d"/lib*.so.*; do
        [ -L "$l" ] || continue
        local name; name=$(basename "$l")
        [[ "$name" =~ \.so\.[0-9]+$ ]] || continue   # the SONAME links (libfoo.so.N)
        if ldconfig -p | grep -q "^[[:space:]]$name "; then
          rm -f "$(readlink -f "$l")" "$l"; dropped=$((dropped + 1))
        else
          kept+=("$name")
        fi
      done
      find "$d" -xtype l -delete   # links left dangling (libz.so -> /lib/..., removed targets)
    done
    echo "fallback: $dropped libraries present on this machine, using Debian's for: ${kept[*]:-none}"
    # Open MPI: drop plugins whose libraries are absent (fabrics: OFI, UCX, PSM, verbs, netlink).
    local plug=$P/usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3 gone=()
    for l in "$plug"/mca_*.so "$P"/usr/lib/x86_64-linux-gnu/libmca_common_*.so.*; do
      [ -f "$l" ] && [ ! -L "$l" ] || continue
      if ldd "$l" 2>/dev/null | grep -q "not found"; then gone+=("$(basename "$l")"); rm -f "$l"; fi
    done
    echo "open mpi: removed ${#gone[@]} plugins with absent libraries: ${gone[*]:-}"
    ln -sf "$P/usr/bin/orterun" "$DC_DEBROOT/bin/mpirun"
    ln -sf "$P/usr/bin/orterun" "$DC_DEBROOT/bin/mpiexec"
    echo "$stamp" > "$DC_DEBROOT/.stamp"
  fi
  # zlib: header and -lz from the machine when it has them, else the carried header and a link to
  # the machine's libz.so.1.
  : > "$DC_DEBROOT/env.sh"
  reset_paths   # probe the machine as it is
  if ! echo '#include <zlib.h>' | gcc -E -x c - >/dev/null 2>&1; then
    echo "export CPATH=$F/usr/include\${ORIG_CPATH:+:\$ORIG_CPATH}" >> "$DC_DEBROOT/env.sh"
    echo "zlib.h: the carried one"
  fi
  if ! echo 'int main(){return 0;}' | gcc -x c - -lz -o /tmp/passlab-lz-probe 2>/dev/null; then
    local z; z=$(ldconfig -p | awk '/libz\.so\.1 .*x86-64/{print $NF; exit}')
    [ -n "$z" ] && ln -sf "$z" "$DC_DEBROOT/devlinks/libz.so"
    echo "export LIBRARY_PATH=$DC_DEBROOT/devlinks\${ORIG_LIBRARY_PATH:+:\$ORIG_LIBRARY_PATH}" >> "$DC_DEBROOT/env.sh"
    echo "-lz: $DC_DEBROOT/devlinks/libz.so -> ${z:-(no libz.so.1 on this machine!)}"
  fi
  rm -f /tmp/passlab-lz-probe
  reset_paths
  # What the build and the binaries need, resolved now.
  local missing=0
  for l in "$P"/usr/lib/x86_64-linux-gnu/{libmpi.so.40,libhdf5_serial.so.103,libspdlog.so.1.10,libtomlplusplus.so.3,libtcmalloc_minimal.so.4} \
           "$P/usr/bin/orterun" "$P/usr/bin/orted"; do
    if ldd "$l" | grep "not found"; then echo "  ^ needed by $l"; missing=1; fi
  done
  command -v mpirun
  mpirun --version | head -1
  printf '#include <mpi.h>\n#include <stdio.h>\nint main(int c,char**v){MPI_Init(&c,&v);int r,s;MPI_Comm_rank(MPI_COMM_WORLD,&r);MPI_Comm_size(MPI_COMM_WORLD,&s);double x=r+1,y=0;MPI_Allreduce(&x,&y,1,MPI_DOUBLE,MPI_SUM,MPI_COMM_WORLD);printf("mpi hello: rank %%d of %%d, sum %%g\\n",r,s,y);MPI_Finalize();return y!=s*(s+1)/2.0;}\n' > "$WORK/mpi_hello.c"
  "$P/usr/bin/mpicc.openmpi" "$WORK/mpi_hello.c" -o "$WORK/mpi_hello" && mpirun -np 2 "$WORK/mpi_hello" || missing=1
  return $missing
}

st_configure() {
  local torch_prefix=${DC_TORCH_PREFIX:-$("$PASSLAB_PYTHON" -c 'import torch; print(torch.utils.cmake_prefix_path)')}
  echo "LibTorch: $torch_prefix"
  # LibTorch 2.11's libtorch.so exports copies of libstdc++'s std::filesystem functions (pytorch
  # issue 133437); its remove_all calls recursive_directory_iterator::__erase, a weak symbol that
  # libstdc++ has from GCC 13 on. With an older libstdc++ (Debian 12's, in the dry run) passlab's
  # remove_all calls bound to that copy jump to address 0: there, libstdc++ goes first among the
  # executables' libraries, so std:: symbols bind to it. Ubuntu 24.04's libstdc++ (GCC 14) has it.
  local stdcxx linkfirst=()
  stdcxx=$(ldconfig -p | awk '/libstdc\+\+\.so\.6 .*x86-64/{print $NF; exit}')
  if [ -n "$stdcxx" ] && ! nm -D "$(readlink -f "$stdcxx")" 2>/dev/null | grep -q recursive_directory_iterator7__erase; then
    echo "libstdc++ $stdcxx predates GCC 13: linking it first"
    linkfirst=(-DCMAKE_EXE_LINKER_FLAGS=-Wl,--push-state,--no-as-needed,-lstdc++,--pop-state)
  fi
  # shellcheck disable=SC2086
  cmake -S "$ROOT" -B "$DC_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$torch_prefix;$P/usr" \
    -DPASSLAB_PYTHON="$PASSLAB_PYTHON" \
    -DPASSLAB_WITH_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$DC_CUDA_ARCH" \
    -DTORCH_CUDA_ARCH_LIST="${DC_CUDA_ARCH:0:1}.${DC_CUDA_ARCH:1}" \
    -DPASSLAB_BUILD_FUZZERS=OFF \
    -DMPI_C_COMPILER="$P/usr/bin/mpicc.openmpi" -DMPIEXEC_EXECUTABLE="$DC_DEBROOT/bin/mpirun" \
    -DHDF5_ROOT="$P/usr/lib/x86_64-linux-gnu/hdf5/serial" \
    "${linkfirst[@]}" $DC_CMAKE_ARGS || return 1
  grep -E '^(MPI_C_HEADER_DIR|MPI_mpi_LIBRARY|HDF5_C_LIBRARY_hdf5|HDF5_C_INCLUDE_DIR|tomlplusplus_DIR|spdlog_DIR|fmt_DIR|CLI11_DIR|GTest_DIR|OpenCV_DIR|PASSLAB_TCMALLOC|PASSLAB_NCCL_LIBRARY|PASSLAB_NCCL_INCLUDE|Torch_DIR|CMAKE_CUDA_COMPILER|CMAKE_CXX_COMPILER):' "$DC_BUILD/CMakeCache.txt"
}

st_build() {
  # -k 0: every compile error in one go.
  cmake --build "$DC_BUILD" --parallel "$DC_JOBS" -- -k 0 || return 1
  if ldd "$DC_BUILD/passlab" | grep "not found"; then return 1; fi
  ldd "$DC_BUILD/passlab" | grep -E "mpi|hdf5|spdlog|fmt|toml|tcmalloc|torch_cuda|nccl|cudart"
  "$DC_BUILD/passlab" --version
}

st_nccl() {
  # One rank (no mpirun): NCCL allows one rank per GPU. Every communicator and reducer case.
  PASSLAB_TEST_DEVICE=cuda NCCL_DEBUG=${NCCL_DEBUG:-WARN} "$DC_BUILD/tests/passlab_mpitest2_dist" \
    --gtest_output="json:$WORK/nccl_tests.json"
}

st_peak() {
  "$PASSLAB_PYTHON" - "$WORK/peak.json" <<'PY'
import json, sys, torch
n, reps = 8192, 10
a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
for _ in range(3):
    a @ b
torch.cuda.synchronize()
best = float("inf")
for _ in range(3):
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    e0.record()
    for _ in range(reps):
        a @ b
    e1.record()
    torch.cuda.synchronize()
    best = min(best, e0.elapsed_time(e1) / 1e3 / reps)
r = {"device": torch.cuda.get_device_name(0), "n": n, "dtype": "bfloat16", "seconds": best,
     "tflops": 2 * n ** 3 / best / 1e12, "torch": torch.__version__}
print(json.dumps(r))
json.dump(r, open(sys.argv[1], "w"))
PY
}

st_bench() {
  "$DC_BUILD/bench/bench_train_throughput" --device cuda --precision bf16 --models resnet18:256,resnet50:64 \
    --warmup 10 --steps "$DC_BENCH_STEPS" > "$WORK/train_throughput.json" || return 1
  cat "$WORK/train_throughput.json"
}

st_allreduce() {
  "$DC_BUILD/bench/bench_allreduce" --backend nccl --max-mib 256 > "$WORK/allreduce.json" || return 1
  cat "$WORK/allreduce.json"
}

st_sweep() {
  local data=$WORK/data out=$WORK/results/quickstart_gpu
  rm -rf "$out"; mkdir -p "$data"
  "$DC_BUILD/passlab" prepare fashion-mnist "$DC_DEBS/fashion-mnist" --out "$data/fashion_mnist.h5" --force || return 1
  mpirun -np 2 --bind-to none "$DC_BUILD/passlab" run experiments/quickstart.toml \
    --set data.root="$data" --set output.dir="$out" --set dist.device="$DC_SWEEP_DEVICE" --set dist.ranks_per_run=1 \
    --set dense.precision=bf16 --set finetune.precision=bf16 $DC_SWEEP_SET
  local rc=$?
  "$DC_BUILD/passlab" inspect "$out" | tee "$WORK/sweep_table.txt"
  local one; one=$(ls "$out"/runs/*.h5 2>/dev/null | head -1)
  [ -n "$one" ] && "$DC_BUILD/passlab" inspect "$one" > "$WORK/sweep_run_file.txt" 2>&1
  # Per prune task: method, budget, search steps and seconds, whole task seconds (PASS search step
  # time beside a baseline's prune task). Tab-separated, read by write_summary.
  local f
  : > "$WORK/sweep_timing.tsv"
  for f in "$out"/runs/*.h5; do
    [ -f "$f" ] || continue
    "$DC_BUILD/passlab" inspect "$f" 2>/dev/null | awk -v file="$(basename "$f")" '
      /^  @method = /{m=$3} /^  @budget = /{b=$3} /^  @search_seconds = /{ss=$3} /^  @finetune_seconds = /{fs=$3}
      /^  @seconds = /{t=$3} /^    search_loss \[/{gsub(/[\[\]]/,"",$2); n=$2}
      END{printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", file, m, b, (n==""?0:n), ss, fs, t}' >> "$WORK/sweep_timing.tsv"
  done
  cat "$WORK/sweep_timing.tsv"
  "$DC_BUILD/passlab" inspect --check "$out" || rc=1
  return $rc
}

st_ctest() {
  # shellcheck disable=SC2086
  ctest --test-dir "$DC_BUILD" --output-on-failure --timeout 240 -E '^slurm$' \
    --output-junit "$WORK/ctest_junit.xml" $DC_CTEST_ARGS
  local rc=$?
  cp -f "$DC_BUILD/Testing/Temporary/LastTest.log" "$WORK/ctest_LastTest.log" 2>/dev/null
  # A crashed unit-test binary: its backtrace (gdb) or, without gdb, where its std::filesystem
  # symbols bind (the LibTorch copies are a known cause of jumps to address 0; core/files.hpp).
  local failed name bin
  failed=$(sed -n 's/^[0-9]*:\(.*\)$/\1/p' "$DC_BUILD/Testing/Temporary/LastTestsFailed.log" 2>/dev/null)
  for name in $failed; do
    bin=$DC_BUILD/tests/passlab_test_$name
    [ -x "$bin" ] || continue
    echo "== diagnosis of $name =="
    if command -v gdb >/dev/null; then
      timeout 90 gdb -q -batch -ex run -ex bt "$bin" 2>&1 | tail -40
    else
      LD_DEBUG=bindings timeout 60 "$bin" 2>&1 | grep -E 'filesystem|__erase' | sort | uniq -c | sort -rn | head -20
    fi
    break
  done
  return $rc
}
export -f reset_paths st_env unpack_deb st_deps st_configure st_build st_nccl st_peak st_bench st_allreduce st_sweep st_ctest

# ---- summary ------------------------------------------------------------------------------------
write_summary() {
  "$PASSLAB_PYTHON" - "$WORK" "$OUT/summary.json" "$T0" <<'PY' 2>>"$LOG"
import json, os, re, sys, time
work, dest, t0 = sys.argv[1], sys.argv[2], float(sys.argv[3])
def load(name):
    try:
        with open(os.path.join(work, name)) as f:
            return json.load(f)
    except Exception:
        return None
stages = []
with open(os.path.join(work, "stages.tsv")) as f:
    for line in f:
        name, status, rc, secs, limit = line.rstrip("\n").split("\t")
        stages.append({"stage": name, "status": status, "rc": int(rc), "seconds": float(secs), "limit_s": int(limit)})
s = {"elapsed_s": round(time.time() - t0, 1), "stages": stages}
env = os.path.join(work, "logs", "env.log")
if os.path.exists(env):
    txt = open(env, errors="replace").read()
    m = re.search(r"^name, memory.total.*\n(.+)$", txt, re.M)
    if m:
        s["gpu"] = m.group(1).strip()
peak = load("peak.json")
if peak:
    s["peak_bf16_tflops"] = round(peak["tflops"], 1)
tt = load("train_throughput.json")
if tt:
    rows = []
    for r in tt["results"]:
        flops = 6.0 * r["forward_macs_per_image"]  # forward + backward ~ 3 x forward, 2 FLOPs per MAC
        row = {k: r[k] for k in ("arch", "stem", "input", "batch", "passlab_images_per_s", "pytorch_images_per_s",
                                 "passlab_over_pytorch")}
        row["train_gflop_per_image"] = round(flops / 1e9, 3)
        if peak:
            for who in ("passlab", "pytorch"):
                ips = r[who + "_images_per_s"]
                row[who + "_mfu"] = round(ips * flops / (peak["tflops"] * 1e12), 4) if ips and ips > 0 else None
        rows.append(row)
    s["train_throughput"] = {"device": tt.get("device"), "precision": tt.get("precision"), "results": rows}
ar = load("allreduce.json")
if ar:
    s["allreduce"] = {"backend": ar["backend"], "ranks": ar["ranks"],
                      "max_comm_algbw_GBps": round(max(r["comm"]["algbw_GBps"] for r in ar["results"]), 1),
                      "max_fused_algbw_GBps": round(max(r["fused"]["algbw_GBps"] for r in ar["results"]), 1)}
nt = load("nccl_tests.json")
if nt:
    s["nccl_tests"] = {"tests": nt.get("tests"), "failures": nt.get("failures"), "disabled": nt.get("disabled")}
junit = os.path.join(work, "ctest_junit.xml")
if os.path.exists(junit):
    import xml.etree.ElementTree as ET
    cases = ET.parse(junit).getroot().iter("testcase")
    res = {"passed": [], "failed": [], "skipped": []}
    for c in cases:
        st = c.get("status", "")
        key = "failed" if st == "fail" or c.find("failure") is not None else "skipped" if st in ("notrun", "disabled") or c.find("skipped") is not None else "passed"
        res[key].append(c.get("name"))
    s["ctest"] = {k: (v if k != "passed" else len(v)) for k, v in res.items()}
timing = os.path.join(work, "sweep_timing.tsv")
if os.path.exists(timing):
    rows = []
    for line in open(timing):
        f = line.rstrip("\n").split("\t")
        if len(f) < 7 or not f[1]:
            continue
        steps, search_s = int(float(f[3] or 0)), float(f[4] or "nan")
        rows.append({"file": f[0], "method": f[1], "budget": float(f[2] or "nan"), "search_steps": steps,
                     "search_seconds": search_s, "search_ms_per_step": round(1e3 * search_s / steps, 2) if steps else None,
                     "finetune_seconds": float(f[5] or "nan"), "task_seconds": float(f[6] or "nan")})
    s["prune_task_timing"] = rows
table = os.path.join(work, "sweep_table.txt")
if os.path.exists(table):
    lines = open(table, errors="replace").read().splitlines()
    s["sweep_table"] = lines[:40]
json.dump(s, open(dest, "w"), indent=1)
PY
}

print_summary() {
  "$PASSLAB_PYTHON" - "$OUT/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print("=" * 78)
print(f"device-check summary ({s['elapsed_s']} s)  GPU: {s.get('gpu', '?')}")
for st in s["stages"]:
    print(f"  {st['stage']:<10} {st['status']:<8} rc={st['rc']:<4} {st['seconds']:7.1f} s (limit {st['limit_s']} s)")
if "peak_bf16_tflops" in s:
    print(f"  bf16 matmul peak: {s['peak_bf16_tflops']} TFLOP/s")
for r in s.get("train_throughput", {}).get("results", []):
    print(f"  {r['arch']} {r['input']} batch {r['batch']}: passlab {r['passlab_images_per_s']:.0f} img/s, "
          f"PyTorch {r['pytorch_images_per_s']:.0f} img/s, ratio {r['passlab_over_pytorch']:.3f}, "
          f"MFU passlab {r.get('passlab_mfu')} PyTorch {r.get('pytorch_mfu')}")
if "allreduce" in s:
    print(f"  allreduce: {s['allreduce']}")
if "nccl_tests" in s:
    print(f"  NCCL communicator tests: {s['nccl_tests']}")
if "ctest" in s:
    c = s["ctest"]
    print(f"  ctest: {c['passed']} passed, failed {c['failed']}, skipped/not run {c['skipped']}")
for r in s.get("prune_task_timing", []):
    print(f"  {r['method']:<16} budget {r['budget']:.2f}: search {r['search_seconds']:.2f} s"
          + (f" ({r['search_steps']} steps, {r['search_ms_per_step']} ms/step)" if r['search_steps'] else "")
          + f", fine-tune {r['finetune_seconds']:.2f} s, task {r['task_seconds']:.2f} s")
for line in s.get("sweep_table", [])[:14]:
    print("  | " + line)
print("=" * 78)
PY
}

# ---- driver -------------------------------------------------------------------------------------
declare -A LIMIT=([env]=30 [deps]=90 [configure]=150 [build]=420 [nccl]=120 [peak]=60 [bench]=180
                  [allreduce]=90 [sweep]=200 [ctest]=400)
failed=0
for name in env deps configure build nccl peak bench allreduce sweep ctest; do
  [[ " $DC_STAGES " == *" $name "* ]] || continue
  left=$(( DC_DEADLINE_S - ($(date +%s) - T0) - 10 ))
  lv=DC_LIMIT_$name
  limit=${!lv:-${LIMIT[$name]}}
  (( left < limit )) && limit=$left
  if (( limit < 5 )); then
    printf '%s\tno-time\t-1\t0\t0\n' "$name" >> "$WORK/stages.tsv"
    echo "[$name] skipped: the deadline (${DC_DEADLINE_S} s) is reached" | tee -a "$LOG"
    failed=1
    continue
  fi
  echo "[$name] start (limit ${limit} s, $(( $(date +%s) - T0 )) s elapsed)" | tee -a "$LOG"
  s0=$(date +%s%N)
  timeout -k 10 "$limit" bash -c "st_$name" 2>&1 | tee -a "$LOG" > "$LOGS/$name.log"
  rc=${PIPESTATUS[0]}
  secs=$(awk -v a="$s0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
  status=pass
  if (( rc == 124 || rc == 137 )); then status=timeout; elif (( rc != 0 )); then status=fail; fi
  [ "$status" = pass ] || failed=1
  [ "$name" = deps ] && reset_paths
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$rc" "$secs" "$limit" >> "$WORK/stages.tsv"
  echo "[$name] $status (rc $rc, ${secs%.*} s)" | tee -a "$LOG"
  tail -n 5 "$LOGS/$name.log" | sed 's/^/    /'
  write_summary
  # Without a build, the stages that run it cannot pass: stop here.
  if [[ "$name" =~ ^(deps|configure|build)$ ]] && [ "$status" != pass ]; then
    echo "[$name] failed: the later stages need it; stopping" | tee -a "$LOG"
    break
  fi
done
cp -f "$DC_BUILD/CMakeCache.txt" "$WORK/CMakeCache.txt" 2>/dev/null
tar -czf "$OUT/details.tar.gz" -C "$WORK" --exclude=data --exclude=results --exclude=mpi_hello . 2>/dev/null
write_summary
print_summary | tee -a "$LOG"
exit $failed
