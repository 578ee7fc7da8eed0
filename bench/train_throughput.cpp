// Training throughput (images/s) of passlab's Trainer against the same model and step in
// PyTorch (bench/train_throughput_ref.py, run side by side in this process's run), and the
// data-parallel scaling from 1 to N ranks. Prints one JSON document on rank 0.
//
//   mpirun -np 2 --oversubscribe --bind-to none build/bench/bench_train_throughput [--steps 4] [--warmup 1]
//       [--models resnet18,resnet20] [--threads T (default: all cores)] [--no-python] [--python-tcmalloc]
//       [--ghost-batch 32] [--bn-rounds 3]
//   build/bench/bench_train_throughput --device cuda [--precision bf16] [--models resnet18:256,resnet50:64]
//
// Models (--models NAME[:BATCH],...), from passlab::models::make_model: resnet18 (CIFAR stem,
// 3x32x32), resnet20 (Fashion-MNIST-sized 1x28x28), resnet50 (ImageNet stem, 3x224x224). Batch
// per rank: 128 unless given. Defaults: on CPU resnet18,resnet20; on CUDA resnet18:256,resnet50:64.
// The step is the Trainer's: SGD momentum 0.9, weight decay 5e-4, constant lr, cross-entropy,
// train mode, gradients through the GradientReducer; fp32, or bf16 autocast on CUDA
// (--precision bf16). On CUDA the batch lives on the GPU (no copies) and the clock starts after
// a device synchronisation at the first timed step. Time = from the first timed step's start to
// the epoch's end. Each result carries the model's forward MACs per image, so that model FLOPs
// (6 x MACs per trained image) and utilisation can be derived.
// Phases (others ranks wait without spinning): passlab 1 rank × all cores; PyTorch 1 process ×
// all cores; on CPU only: passlab 1 rank × 1 thread; passlab N ranks × 1 thread (same global batch).
// passlab_images_per_s trains with plain BatchNorm (statistics over the whole batch), like the
// PyTorch reference. BatchNorm cost: ghost-batch BatchNorm (models/ghost_batchnorm.hpp, groups of
// --ghost-batch samples, default 32 as model.ghost_batch) against plain BatchNorm on rank 0 × all
// cores, in --bn-rounds alternating rounds (the first plain one is the passlab phase above);
// "ghost_bn" gives the medians and ghost_over_plain = ghost / plain images/s (1: no cost).
#include <ATen/ATen.h>
#include <dlfcn.h>
#include <sys/resource.h>
#include <sched.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "passlab/core/error.hpp"
#include "passlab/core/log.hpp"
#include "passlab/dist/communicator.hpp"
#include "passlab/dist/runtime.hpp"
#include "passlab/models/factory.hpp"
#include "passlab/models/ghost_batchnorm.hpp"
#include "passlab/train/trainer.hpp"

using namespace passlab;
using Clock = std::chrono::steady_clock;

namespace {

// The same batch every step (data loading is not what this measures).
class FixedSource : public data::BatchSource {
 public:
  FixedSource(at::Tensor x, at::Tensor y, int64_t steps) : x_(std::move(x)), y_(std::move(y)), steps_(steps) {}
  void start_epoch(int64_t) override { i_ = 0; }
  std::optional<data::Batch> next() override {
    if (i_ >= steps_) return std::nullopt;
    ++i_;
    return data::Batch{x_, y_, at::arange(x_.size(0), at::kLong)};
  }
  int64_t batches_per_epoch() const override { return steps_; }
  int64_t samples_per_epoch() const override { return steps_ * x_.size(0); }
  int64_t dataset_size() const override { return x_.size(0); }

 private:
  at::Tensor x_, y_;
  int64_t steps_, i_ = 0;
};

struct ModelCase {
  std::string arch;
  int64_t in_ch, size;
  std::string stem;
  int64_t batch = 128;
};

// The benchmark's device and arithmetic.
struct Setup {
  c10::Device device{c10::kCPU};
  std::string precision = "fp32";
};

int cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  return sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
}

const char* allocator() { return dlsym(RTLD_DEFAULT, "tc_malloc") ? "tcmalloc" : "glibc"; }

int64_t minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

// The 1-minute load average (-1 when unknown): the bench reports it at its start and end.
double load_1min() {
  double l[1];
  return getloadavg(l, 1) == 1 ? l[0] : -1;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? -1 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Images/s of the passlab Trainer: `batch` per rank on `comm`, with `threads` intra-op threads,
// BatchNorm statistics over groups of `bn_group` samples (0: the whole batch, plain BatchNorm).
// `faults_per_step` (optional): minor page faults per timed step on this rank — the allocator
// signature (glibc returns large buffers to the OS and faults them back every step).
double passlab_ips(const ModelCase& m, int64_t batch, int threads, dist::Communicator& comm, int warmup, int steps,
                   const Setup& setup, double* faults_per_step = nullptr, int64_t bn_group = 0) {
  at::set_num_threads(threads);
  torch::manual_seed(0);
  auto net = models::make_model(m.arch, 10, m.in_ch, m.size, m.stem);
  const bool cuda = setup.device.is_cuda();
  train::TrainerOptions o;
  o.device = setup.device;
  o.train.precision = setup.precision;
  o.train.epochs = 1;
  o.train.batch_size = batch * comm.size();
  o.train.optimizer = "sgd";
  o.train.lr = 0.1;
  o.train.momentum = 0.9;
  o.train.weight_decay = 5e-4;
  o.train.schedule = "constant";
  o.progress = "none";
  o.label = "bench";
  o.bn_group = bn_group;
  train::Trainer t(*net, comm, o);
  std::vector<Clock::time_point> starts;
  Clock::time_point end;
  int64_t faults0 = 0, faults1 = 0;
  t.set_step([&](const data::Batch& b) {
    if (int(starts.size()) == warmup) {
      if (cuda) torch::cuda::synchronize();  // the warm-up steps' GPU work is not timed
      faults0 = minor_faults();
    }
    starts.push_back(Clock::now());
    at::Tensor logits = net->forward(b.images);
    return train::StepOutput{train::cross_entropy(logits, b.labels), logits};
  });
  t.on_epoch_end([&](const train::EpochStats&) {
    if (cuda) torch::cuda::synchronize();
    end = Clock::now();
    faults1 = minor_faults();
  });
  FixedSource src(at::randn({batch, m.in_ch, m.size, m.size}).to(setup.device),
                  at::randint(0, 10, {batch}, at::kLong).to(setup.device), warmup + steps);
  t.fit(src);
  double s = std::chrono::duration<double>(end - starts.at(size_t(warmup))).count();
  if (faults_per_step) *faults_per_step = double(faults1 - faults0) / steps;
  return double(batch * comm.size() * steps) / s;
}

using bench::json_number;
using bench::run_capture;

double pytorch_ips(const ModelCase& m, int64_t batch, int threads, int warmup, int steps, bool tcmalloc,
                   const Setup& setup, std::string* raw) {
  const char* py = std::getenv("PASSLAB_PYTHON");
  std::ostringstream cmd;
  if (tcmalloc) cmd << bench::tcmalloc_preload();
  cmd << (py && *py ? py : PASSLAB_BENCH_PYTHON) << " " << PASSLAB_BENCH_SOURCE_DIR << "/bench/train_throughput_ref.py"
      << " --arch " << m.arch << " --in-ch " << m.in_ch << " --size " << m.size << " --stem " << m.stem
      << " --batch " << batch << " --threads " << threads << " --steps " << steps << " --warmup " << warmup
      << " --device " << (setup.device.is_cuda() ? "cuda" : "cpu") << " --precision " << setup.precision << " 2>&1";
  *raw = run_capture(cmd.str());
  return json_number(*raw, "images_per_s");
}

}  // namespace

int main(int argc, char** argv) {
  int warmup = 1, steps = 4, threads = 0, bn_rounds = 3;
  int64_t ghost_batch = 32;
  bool python = true, python_tcmalloc = false;
  const std::vector<ModelCase> known = {{"resnet18", 3, 32, "cifar"}, {"resnet20", 1, 28, "cifar"},
                                        {"resnet50", 3, 224, "imagenet"}};
  std::string models, device = "cpu", precision = "fp32";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--steps" && i + 1 < argc) steps = std::atoi(argv[++i]);
    else if (a == "--warmup" && i + 1 < argc) warmup = std::atoi(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--no-python") python = false;
    else if (a == "--python-tcmalloc") python_tcmalloc = true;
    else if (a == "--models" && i + 1 < argc) models = argv[++i];
    else if (a == "--device" && i + 1 < argc) device = argv[++i];
    else if (a == "--precision" && i + 1 < argc) precision = argv[++i];
    else if (a == "--ghost-batch" && i + 1 < argc) ghost_batch = std::atoll(argv[++i]);
    else if (a == "--bn-rounds" && i + 1 < argc) bn_rounds = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "bench_train_throughput: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (models.empty()) models = device == "cuda" ? "resnet18:256,resnet50:64" : "resnet18,resnet20";
  std::vector<ModelCase> cases;
  for (size_t pos = 0; pos <= models.size();) {
    size_t comma = models.find(',', pos);
    if (comma == std::string::npos) comma = models.size();
    std::string item = models.substr(pos, comma - pos), name = item;
    int64_t batch = 128;
    if (auto colon = item.find(':'); colon != std::string::npos) {
      name = item.substr(0, colon);
      batch = std::atoll(item.c_str() + colon + 1);
    }
    pos = comma + 1;
    if (name.empty()) continue;
    auto it = std::find_if(known.begin(), known.end(), [&](const ModelCase& c) { return c.arch == name; });
    if (it == known.end() || batch <= 0) {
      std::fprintf(stderr, "bench_train_throughput: unknown model '%s' (resnet18, resnet20, resnet50; NAME:BATCH)\n", item.c_str());
      return 2;
    }
    cases.push_back(*it);
    cases.back().batch = batch;
  }
  log::init(log::Level::warn);
  dist::RuntimeOptions ro;
  ro.ranks_per_run = 0;
  ro.device = device;
  ro.threads_per_rank = 1;
  dist::Runtime rt(ro, &argc, &argv);
  return dist::run_or_abort(rt, [&] {
    Setup setup{rt.device(), precision};
    const bool cuda = setup.device.is_cuda();
    auto group = dist::make_communicator("mpi", rt);
    auto self = dist::make_mpi_communicator(MPI_COMM_SELF);
    // All cores of the node (run with `mpirun --bind-to none`: Open MPI binds each rank to one
    // core by default, and a rank's threads could not use the others).
    const int all_cores = threads > 0 ? threads : std::max(1, int(std::thread::hardware_concurrency()));
    if (cores() < all_cores && rt.world_rank() == 0)
      std::fprintf(stderr, "warning: this rank may use %d of %d cores (launch with --bind-to none)\n", cores(), all_cores);
    std::ostringstream js;
    js << "{\"bench\": \"train_throughput\", \"allocator\": \"" << allocator() << "\", \"device\": \""
       << setup.device.str() << "\", \"precision\": \"" << (cuda ? precision : std::string("fp32"))
       << "\", \"ranks\": " << rt.world_size() << ", \"cores\": " << all_cores << ", \"warmup\": " << warmup
       << ", \"steps\": " << steps << ", \"load_1min_start\": " << load_1min() << ", \"results\": [";
    for (size_t c = 0; c < cases.size(); ++c) {
      const auto& m = cases[c];
      const int64_t batch = m.batch;
      double pl = 0, py = -1, py_tc = -1, one = 0, many = 0, faults = 0;
      std::string raw, raw_tc;
      if (rt.world_rank() == 0) pl = passlab_ips(m, batch, all_cores, *self, warmup, steps, setup, &faults);
      group->vote_barrier();  // waits without busy-polling: the cores stay with the measured rank
      // Ghost against plain BatchNorm, alternating so that a change of machine load hits both.
      const int64_t ghost = std::min(ghost_batch, batch);
      std::vector<double> plain_ips = {pl}, ghost_ips;
      if (rt.world_rank() == 0 && bn_rounds > 0 && batch % ghost == 0) {
        for (int k = 0; k < bn_rounds; ++k) {
          if (k > 0) plain_ips.push_back(passlab_ips(m, batch, all_cores, *self, warmup, steps, setup, nullptr, 0));
          ghost_ips.push_back(passlab_ips(m, batch, all_cores, *self, warmup, steps, setup, nullptr, ghost));
        }
      }
      group->vote_barrier();
      if (rt.world_rank() == 0 && python) py = pytorch_ips(m, batch, all_cores, warmup, steps, false, setup, &raw);
      if (rt.world_rank() == 0 && python_tcmalloc)
        py_tc = pytorch_ips(m, batch, all_cores, warmup, steps, true, setup, &raw_tc);
      group->vote_barrier();
      if (rt.world_size() > 1 && !cuda) {
        Setup cpu;
        if (rt.world_rank() == 0) one = passlab_ips(m, batch, 1, *self, warmup, steps, cpu);
        group->vote_barrier();
        many = passlab_ips(m, batch / rt.world_size(), 1, *group, warmup, steps, cpu);
        group->vote_barrier();
      }
      if (rt.world_rank() == 0) {
        if (py < 0 && python) std::fprintf(stderr, "pytorch reference failed:\n%s\n", raw.c_str());
        const int64_t macs = models::make_model(m.arch, 10, m.in_ch, m.size, m.stem)->count().macs;
        js << (c ? ", " : "") << "{\"arch\": \"" << m.arch << "\", \"stem\": \"" << m.stem << "\", \"input\": [" << m.in_ch
           << ", " << m.size << ", " << m.size << "], \"batch\": " << batch << ", \"forward_macs_per_image\": " << macs
           << ", \"threads\": " << all_cores << ", \"passlab_images_per_s\": " << pl
           << ", \"passlab_minor_faults_per_step\": " << faults << ", \"pytorch_images_per_s\": " << py
           << ", \"pytorch_minor_faults_per_step\": " << json_number(raw, "minor_faults_per_step");
        if (python_tcmalloc)
          js << ", \"pytorch_tcmalloc_images_per_s\": " << py_tc << ", \"pytorch_tcmalloc_minor_faults_per_step\": "
             << json_number(raw_tc, "minor_faults_per_step");
        js << ", \"passlab_over_pytorch\": " << (py > 0 ? pl / py : -1);
        if (!ghost_ips.empty()) {
          const double mp = median(plain_ips), mg = median(ghost_ips);
          js << ", \"ghost_bn\": {\"group\": " << ghost << ", \"rounds\": " << ghost_ips.size()
             << ", \"plain_images_per_s\": " << mp << ", \"ghost_images_per_s\": " << mg
             << ", \"ghost_over_plain\": " << (mp > 0 ? mg / mp : -1) << "}";
        }
        if (rt.world_size() > 1 && !cuda)
          js << ", \"scaling\": {\"one_rank_one_thread_images_per_s\": " << one << ", \"ranks\": " << rt.world_size()
             << ", \"n_ranks_one_thread_each_images_per_s\": " << many
             << ", \"efficiency\": " << (one > 0 ? many / (one * rt.world_size()) : -1) << "}";
        js << "}";
        std::fflush(stdout);
      }
    }
    js << "], \"load_1min_end\": " << load_1min() << "}";
    if (rt.world_rank() == 0) std::printf("%s\n", js.str().c_str());
    return 0;
  });
}
