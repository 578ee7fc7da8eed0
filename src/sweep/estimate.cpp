// Cost estimates for the plan: the only sweep file that builds models (to count their MACs).
#include <algorithm>
#include <map>
#include <mutex>
#include <tuple>

#include "passlab/config/methods.hpp"
#include "passlab/core/log.hpp"
#include "passlab/io/hdf5.hpp"
#include "passlab/models/factory.hpp"
#include "passlab/sweep/plan.hpp"

namespace passlab::sweep {
namespace {

struct StoreShape {
  double train = kAssumedTrainImages;
  int64_t side = 0, channels = 0;
  bool readable = false;
};

StoreShape store_shape(const config::Config& t) {
  StoreShape s;
  try {
    io::File f = io::File::open(t.resolved_store());
    auto shape = f.root().open_dataset("train/images").shape();  // [N, H, W, C]
    if (shape.size() == 4) {
      s.train = double(shape[0]);
      s.side = static_cast<int64_t>(shape[1]);
      s.channels = static_cast<int64_t>(shape[3]);
      s.readable = true;
    }
  } catch (const std::exception& e) {
    PL_DEBUG("plan: store {} not readable here ({}); estimates assume defaults", t.resolved_store(), e.what());
  }
  return s;
}

}  // namespace

bool store_readable(const config::Config& t) { return store_shape(t).readable; }

double train_images(const config::Config& t) {
  StoreShape s = store_shape(t);
  double n = s.train * (1.0 - t.data.val_fraction);
  if (t.data.limit_train > 0) n = std::min(n, double(t.data.limit_train));
  return std::max(1.0, n);
}

double forward_macs(const config::Config& t) {
  static std::mutex mu;
  static std::map<std::tuple<std::string, std::string, int64_t, int64_t>, double> cache;
  StoreShape s = store_shape(t);
  const bool small_arch = t.model.arch == "resnet20" || t.model.arch == "resnet56";
  int64_t side = t.data.input_size > 0 ? t.data.input_size : (s.side > 0 ? s.side : (small_arch ? 32 : 224));
  int64_t channels = !t.model.pretrained.empty() ? 3 : (s.channels > 0 ? s.channels : 3);
  auto key = std::make_tuple(t.model.arch, t.model.stem, side, channels);
  std::lock_guard<std::mutex> lk(mu);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  double macs = 1.0;
  try {
    auto net = models::make_model(t.model.arch, 10, channels, side, t.model.stem);
    macs = double(net->count().macs);
  } catch (const std::exception& e) {
    PL_WARN("plan: cannot count the MACs of {} at {} px ({}); its tasks are estimated as equal", t.model.arch, side,
            e.what());
  }
  cache[key] = macs;
  return macs;
}

double estimate_cost(const config::Config& t, Task::Kind kind) {
  const double f = forward_macs(t), n = train_images(t);
  if (kind == Task::Kind::dense) {
    // A head epoch runs the frozen backbone forward only (no backward through it, the classifier
    // is negligible): a third of a training epoch's forward + backward.
    const bool head_only = t.dense.mode == "head";
    const double full_epochs = head_only ? 0.0 : double(t.dense.epochs);
    const double head_epochs = head_only ? double(t.dense.epochs) : double(t.dense.head_epochs);
    return f * n * (3.0 * full_epochs + head_epochs);
  }
  // Search (masked dense forward/backward) or regularisation phase (dense training), then
  // fine-tuning of the compact network.
  const config::MethodSpec& m = config::method_spec(t.prune.method);
  const double search = 3.0 * f * (m.search_images(t) + n * double(m.regularise_epochs(t)));
  const double finetune = 3.0 * f * t.prune.budget * n * double(t.finetune.epochs);
  return search + finetune;
}

}  // namespace passlab::sweep
