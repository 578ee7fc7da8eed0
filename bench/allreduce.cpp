// All-reduce bandwidth of passlab's communicator and fused-bucket GradientReducer against one
// raw MPI_Allreduce of the same total bytes (nccl-tests definitions):
//   algbw = bytes / time,  busbw = algbw × 2(n−1)/n.
// Sizes 4 KiB – 256 MiB of float32. "fused": the bytes split into 16 gradient tensors of unequal
// sizes, reduced by a GradientReducer (default 25 MiB buckets, first 1 MiB; sum, as the Trainer
// uses it: it scales the loss by 1/ranks instead of dividing every gradient).
// "comm": Communicator::allreduce of one tensor (sum). "stop_agreement": the per-step cost the
// Trainer pays to agree on a stop request (dist::stop_agreed: one 8-byte max all-reduce through
// the Communicator) beside a raw 8-byte MPI_Allreduce, to set against a training step's time.
// Prints JSON on rank 0.
//
//   mpirun -np 2 --oversubscribe build/bench/bench_allreduce [--min-kib 4] [--max-mib 256]
//       [--backend auto|mpi|nccl] [--bucket-mib 25] [--first-bucket-mib 1] [--iters 7 (at least)]
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "passlab/core/log.hpp"
#include "passlab/core/mpi_check.hpp"
#include "passlab/dist/agreement.hpp"
#include "passlab/dist/communicator.hpp"
#include "passlab/dist/reducer.hpp"
#include "passlab/dist/runtime.hpp"

using namespace passlab;
using Clock = std::chrono::steady_clock;

namespace {

// Median time of each of `fns` over `iters` rounds (after one warm-up round). The variants run
// interleaved (raw, comm, fused, raw, ...) so that load drift on a shared machine hits them
// alike; each run starts after a barrier and its time is the max over ranks.
std::vector<double> time_interleaved(const std::vector<std::function<void()>>& fns, int iters, MPI_Comm comm) {
  for (auto& f : fns) f();
  std::vector<std::vector<double>> ts(fns.size());
  for (int i = 0; i < iters; ++i) {
    for (size_t k = 0; k < fns.size(); ++k) {
      MPI_CHECK(MPI_Barrier(comm));
      auto t0 = Clock::now();
      fns[k]();
      double t = std::chrono::duration<double>(Clock::now() - t0).count();
      MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, comm));
      ts[k].push_back(t);
    }
  }
  std::vector<double> med;
  for (auto& v : ts) {
    std::sort(v.begin(), v.end());
    med.push_back(v[v.size() / 2]);  // median: robust to the noise of a shared machine
  }
  return med;
}

}  // namespace

int main(int argc, char** argv) {
  double max_mib = 256, min_kib = 4, bucket_mib = 25, first_bucket_mib = 1;
  int min_iters = 7;
  std::string backend = "auto";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--max-mib" && i + 1 < argc) max_mib = std::atof(argv[++i]);
    else if (a == "--backend" && i + 1 < argc) backend = argv[++i];
    else if (a == "--iters" && i + 1 < argc) min_iters = std::atoi(argv[++i]);
    else if (a == "--min-kib" && i + 1 < argc) min_kib = std::atof(argv[++i]);
    else if (a == "--bucket-mib" && i + 1 < argc) bucket_mib = std::atof(argv[++i]);
    else if (a == "--first-bucket-mib" && i + 1 < argc) first_bucket_mib = std::atof(argv[++i]);
  }
  log::init(log::Level::warn);
  dist::RuntimeOptions ro;
  ro.ranks_per_run = 0;
  ro.threads_per_rank = 1;
  dist::Runtime rt(ro, &argc, &argv);
  return dist::run_or_abort(rt, [&] {
    auto comm = dist::make_communicator(backend, rt);
    const int n = comm->size();
    const double bus = n > 1 ? 2.0 * (n - 1) / n : 1.0;
    auto dev = comm->device();
    std::ostringstream js;
    js << "{\"bench\": \"allreduce\", \"backend\": \"" << comm->backend() << "\", \"ranks\": " << n
       << ", \"dtype\": \"float32\", \"bucket_mib\": " << bucket_mib << ", \"first_bucket_mib\": " << first_bucket_mib
       << ", \"results\": [";
    bool first = true;
    for (int64_t bytes = int64_t(min_kib * 1024); bytes <= int64_t(max_mib * 1024 * 1024); bytes *= 4) {
      const int64_t numel = bytes / 4;
      const int iters = int(std::clamp<int64_t>((int64_t(64) << 20) / bytes, min_iters, std::max(50, min_iters)));
      // raw MPI_Allreduce (host memory; the MPI backend's baseline)
      at::Tensor raw = at::ones({numel}, at::kFloat);
      // Communicator, one tensor
      at::Tensor one = at::ones({numel}, at::TensorOptions().dtype(at::kFloat).device(dev));
      // Fused buckets over 16 unequal gradient tensors of the same total size
      std::vector<at::Tensor> params;
      int64_t left = numel;
      for (int k = 0; k < 16 && left > 0; ++k) {
        int64_t part = k == 15 ? left : std::max<int64_t>(1, numel * (k % 4 + 1) / 40);
        part = std::min(part, left);
        params.push_back(at::zeros({part}, at::TensorOptions().dtype(at::kFloat).device(dev)).set_requires_grad(true));
        left -= part;
      }
      dist::ReducerOptions ro;
      ro.average = false;
      ro.bucket_mib = bucket_mib;
      ro.first_bucket_mib = first_bucket_mib;
      dist::GradientReducer red(*comm, params, ro);
      for (auto& p : params) p.mutable_grad().fill_(1.0f);
      auto t = time_interleaved(
          {[&] { MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, raw.data_ptr(), int(numel), MPI_FLOAT, MPI_SUM, comm->control())); },
           [&] {
             comm->allreduce(one, dist::ReduceOp::sum);
             comm->wait();
           },
           [&] { red.reduce(); }},
          iters, comm->control());
      double t_raw = t[0], t_comm = t[1], t_fused = t[2];
      auto bw = [&](double t) { return double(bytes) / t / 1e9; };
      if (rt.world_rank() == 0) {
        js << (first ? "" : ", ") << "{\"bytes\": " << bytes << ", \"iters\": " << iters << ", \"buckets\": "
           << red.plan().size() << ", \"raw_mpi\": {\"time_us\": " << t_raw * 1e6 << ", \"algbw_GBps\": " << bw(t_raw)
           << ", \"busbw_GBps\": " << bw(t_raw) * bus << "}, \"comm\": {\"time_us\": " << t_comm * 1e6
           << ", \"algbw_GBps\": " << bw(t_comm) << ", \"busbw_GBps\": " << bw(t_comm) * bus
           << "}, \"fused\": {\"time_us\": " << t_fused * 1e6 << ", \"algbw_GBps\": " << bw(t_fused)
           << ", \"busbw_GBps\": " << bw(t_fused) * bus << "}, \"fused_over_raw\": " << t_raw / t_fused << "}";
        std::fprintf(stderr, "%10lld B  raw %9.1f us  comm %9.1f us  fused %9.1f us (%zu buckets)  fused/raw %.3f\n",
                     static_cast<long long>(bytes), t_raw * 1e6, t_comm * 1e6, t_fused * 1e6, red.plan().size(),
                     t_raw / t_fused);
      }
      first = false;
    }
    js << "]";
    {
      // What every training step adds to agree on a stop (no stop is requested here, so the answer
      // is always "no"; the cost is the same either way).
      int64_t word = 0;
      const int iters = std::max(200, min_iters);
      const auto t = time_interleaved(
          {[&] { MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &word, 1, MPI_INT64_T, MPI_MAX, comm->control())); },
           [&] { (void)dist::stop_agreed(*comm); }},
          iters, comm->control());
      if (rt.world_rank() == 0) {
        js << ", \"stop_agreement\": {\"iters\": " << iters << ", \"time_us\": " << t[1] * 1e6
           << ", \"raw_mpi_8B_us\": " << t[0] * 1e6 << "}";
        std::fprintf(stderr, "stop agreement per step %.1f us (raw 8-byte MPI_Allreduce %.1f us)\n", t[1] * 1e6, t[0] * 1e6);
      }
    }
    js << "}";
    if (rt.world_rank() == 0) std::printf("%s\n", js.str().c_str());
    return 0;
  });
}
