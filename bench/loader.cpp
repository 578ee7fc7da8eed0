// bench_loader: throughput of the HDF5 loader (images/s, with augmentation, 1 and 2 threads) on
// a 32x32 and a 224x224 store, next to the training-step throughput of ResNet-18 on this CPU,
// and their ratio (target: loader >= 5x training at 32 px, >= 2x at 224 px).
// Prints one JSON object. Never part of the test pass/fail.
//   bench_loader [--n32 N] [--n224 N] [--steps K] [--dir DIR] [--builtin-resnet]
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <unistd.h>
#include <filesystem>
#include <map>
#include <string>

#include "passlab/core/files.hpp"
#include "passlab/core/log.hpp"
#include "passlab/core/rng.hpp"
#include "passlab/data/loader.hpp"
#include "passlab/data/store.hpp"
#include "passlab/models/factory.hpp"

namespace fs = std::filesystem;
using namespace passlab;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// A store of n random-ish images (deterministic content; the loader's cost does not depend on it).
double make_store(const fs::path& path, int64_t n, int64_t size) {
  auto t0 = Clock::now();
  data::StoreWriter::Meta m;
  m.format = "bench";
  m.source = "bench_loader";
  for (int c = 0; c < 10; ++c) m.classes.push_back("c" + std::to_string(c));
  m.height = m.width = size;
  m.channels = 3;
  data::StoreWriter w(path, m);
  const int64_t rb = size * size * 3, block = std::max<int64_t>(1, (32 << 20) / rb);
  std::vector<uint8_t> buf(static_cast<size_t>(block * rb));
  std::vector<int64_t> labels(static_cast<size_t>(block));
  for (const char* split : {"train", "test"}) {
    const int64_t rows = std::string(split) == "train" ? n : std::max<int64_t>(1, n / 10);
    w.begin_split(split, rows);
    Rng rng(derive_seed(1, size));
    for (int64_t s = 0; s < rows; s += block) {
      const int64_t c = std::min(block, rows - s);
      for (int64_t i = 0; i < c * rb; i += 8) {
        const uint64_t v = rng.next_u64();
        std::memcpy(buf.data() + i, &v, static_cast<size_t>(std::min<int64_t>(8, c * rb - i)));
      }
      for (int64_t i = 0; i < c; ++i) labels[static_cast<size_t>(i)] = (s + i) % 10;
      w.write(c, buf.data(), labels.data());
    }
  }
  w.commit();
  return seconds_since(t0);
}

struct LoaderResult {
  double images_per_s;
  int64_t images;
  double seconds;
};

LoaderResult time_loader(const fs::path& store, data::Augment aug, int64_t threads, double min_seconds) {
  data::SplitOptions so;
  so.val_fraction = 0;
  auto view = data::make_splits(data::Store::open(store), so).train;
  data::LoaderOptions o;
  o.batch_size = 128;
  o.augment = aug;
  o.threads = threads;
  o.prefetch_batches = 4;
  o.seed = 1;
  data::Loader loader(view, o);
  int64_t images = 0;
  auto t0 = Clock::now();
  int64_t epoch = 0;
  do {
    loader.start_epoch(epoch++);
    while (auto b = loader.next()) images += b->images.size(0);
  } while (seconds_since(t0) < min_seconds);
  const double s = seconds_since(t0);
  return {static_cast<double>(images) / s, images, s};
}

// ---- a self-contained torchvision-style ResNet-18 (fallback / cross-check) --------------------
struct BlockImpl : torch::nn::Module {
  torch::nn::Conv2d c1{nullptr}, c2{nullptr}, sc{nullptr};
  torch::nn::BatchNorm2d b1{nullptr}, b2{nullptr}, sb{nullptr};
  BlockImpl(int64_t in, int64_t out, int64_t stride) {
    c1 = register_module("c1", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false)));
    b1 = register_module("b1", torch::nn::BatchNorm2d(out));
    c2 = register_module("c2", torch::nn::Conv2d(torch::nn::Conv2dOptions(out, out, 3).padding(1).bias(false)));
    b2 = register_module("b2", torch::nn::BatchNorm2d(out));
    if (stride != 1 || in != out) {
      sc = register_module("sc", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 1).stride(stride).bias(false)));
      sb = register_module("sb", torch::nn::BatchNorm2d(out));
    }
  }
  torch::Tensor forward(torch::Tensor x) {
    auto y = torch::relu(b1(c1(x)));
    y = b2(c2(y));
    return torch::relu(y + (sc ? sb(sc(x)) : x));
  }
};
TORCH_MODULE(Block);

struct ResNet18Impl : torch::nn::Module {
  torch::nn::Sequential body;
  torch::nn::Linear fc{nullptr};
  bool imagenet_stem;
  ResNet18Impl(int64_t classes, bool imagenet) : imagenet_stem(imagenet) {
    if (imagenet)
      body->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 64, 7).stride(2).padding(3).bias(false)));
    else
      body->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 64, 3).padding(1).bias(false)));
    body->push_back(torch::nn::BatchNorm2d(64));
    body->push_back(torch::nn::Functional(torch::relu));
    if (imagenet) body->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(3).stride(2).padding(1)));
    int64_t in = 64;
    for (int64_t out : {64, 128, 256, 512}) {
      body->push_back(Block(in, out, out == 64 ? 1 : 2));
      body->push_back(Block(out, out, 1));
      in = out;
    }
    register_module("body", body);
    fc = register_module("fc", torch::nn::Linear(512, classes));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = body->forward(x);
    return fc(torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1));
  }
};
TORCH_MODULE(ResNet18);

struct TrainResult {
  std::string model, stem;
  int64_t size, batch, steps;
  double images_per_s;
};

TrainResult time_training(int64_t size, int64_t batch, int64_t steps, bool builtin) {
  const std::string stem = size < 64 ? "cifar" : "imagenet";
  std::shared_ptr<torch::nn::Module> module;
  std::function<torch::Tensor(const torch::Tensor&)> fwd;
  if (builtin) {
    auto m = ResNet18(10, stem == "imagenet");
    module = m.ptr();
    fwd = [m](const torch::Tensor& x) mutable { return m->forward(x); };
  } else {
    auto m = models::make_model("resnet18", 10, 3, size, stem);
    module = m;
    fwd = [m](const torch::Tensor& x) { return m->forward(x); };
  }
  module->train();
  torch::optim::SGD opt(module->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9).weight_decay(5e-4));
  auto x = torch::randn({batch, 3, size, size});
  auto y = torch::randint(0, 10, {batch}, torch::kLong);
  auto step = [&] {
    opt.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(fwd(x), y);
    loss.backward();
    opt.step();
  };
  step();  // warm-up (allocator, kernels)
  auto t0 = Clock::now();
  for (int64_t s = 0; s < steps; ++s) step();
  const double secs = seconds_since(t0);
  return {builtin ? "builtin_resnet18" : "passlab resnet18", stem, size, batch, steps,
          static_cast<double>(batch * steps) / secs};
}

}  // namespace

int main(int argc, char** argv) {
  int64_t n32 = 8192, n224 = 512, steps = 3, steps224 = 2, batch224 = 32;
  bool builtin = false;
  fs::path dir;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--n32") n32 = std::stoll(next());
    else if (a == "--n224") n224 = std::stoll(next());
    else if (a == "--steps") steps = std::stoll(next());
    else if (a == "--steps224") steps224 = std::stoll(next());
    else if (a == "--batch224") batch224 = std::stoll(next());
    else if (a == "--dir") dir = next();
    else if (a == "--builtin-resnet") builtin = true;
    else {
      std::fprintf(stderr, "usage: bench_loader [--n32 N] [--n224 N] [--steps K] [--steps224 K] [--batch224 B] [--dir DIR] [--builtin-resnet]\n");
      return 2;
    }
  }
  log::init(log::Level::warn);
  at::set_num_threads(2);
  const bool own_dir = dir.empty();
  if (own_dir) dir = fs::temp_directory_path() / ("passlab-bench-loader-" + std::to_string(::getpid()));
  fs::create_directories(dir);

  std::map<int64_t, double> write_s;
  write_s[32] = make_store(dir / "s32.h5", n32, 32);
  write_s[224] = make_store(dir / "s224.h5", n224, 224);

  std::string loaders;
  std::map<std::pair<int64_t, int64_t>, double> loader_rate;
  for (int64_t size : {32, 224}) {
    const auto aug = size < 64 ? data::Augment::crop_flip : data::Augment::rrc_flip;
    for (int64_t threads : {1, 2}) {
      auto r = time_loader(dir / ("s" + std::to_string(size) + ".h5"), aug, threads, 3.0);
      loader_rate[{size, threads}] = r.images_per_s;
      char buf[256];
      std::snprintf(buf, sizeof buf,
                    "%s\n    {\"size\": %ld, \"augment\": \"%s\", \"threads\": %ld, \"batch\": 128, \"images\": %ld, "
                    "\"seconds\": %.3f, \"images_per_s\": %.1f}",
                    loaders.empty() ? "" : ",", static_cast<long>(size), data::to_string(aug), static_cast<long>(threads),
                    static_cast<long>(r.images), r.seconds, r.images_per_s);
      loaders += buf;
    }
  }
  auto t32 = time_training(32, 128, steps, builtin);
  auto t224 = time_training(224, batch224, steps224, builtin);
  auto train_json = [](const TrainResult& t) {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "{\"model\": \"%s\", \"stem\": \"%s\", \"size\": %ld, \"batch\": %ld, \"steps\": %ld, \"images_per_s\": %.2f}",
                  t.model.c_str(), t.stem.c_str(), static_cast<long>(t.size), static_cast<long>(t.batch),
                  static_cast<long>(t.steps), t.images_per_s);
    return std::string(buf);
  };
  std::printf("{\n  \"torch_threads\": %d,\n  \"stores\": {\"32\": {\"train_images\": %ld, \"write_s\": %.2f}, "
              "\"224\": {\"train_images\": %ld, \"write_s\": %.2f}},\n  \"loader\": [%s\n  ],\n"
              "  \"train\": [\n    %s,\n    %s\n  ],\n"
              "  \"ratio_loader_over_train\": {\"32\": {\"threads1\": %.1f, \"threads2\": %.1f, \"target\": 5}, "
              "\"224\": {\"threads1\": %.1f, \"threads2\": %.1f, \"target\": 2}}\n}\n",
              at::get_num_threads(), static_cast<long>(n32), write_s[32], static_cast<long>(n224), write_s[224],
              loaders.c_str(), train_json(t32).c_str(), train_json(t224).c_str(),
              loader_rate[{32, 1}] / t32.images_per_s, loader_rate[{32, 2}] / t32.images_per_s,
              loader_rate[{224, 1}] / t224.images_per_s, loader_rate[{224, 2}] / t224.images_per_s);
  if (own_dir) passlab::remove_tree(dir);
  return 0;
}
