#include "passlab/train/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "passlab/core/error.hpp"
#include "passlab/core/log.hpp"

namespace passlab::train {

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  long t = std::lround(s);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}

Progress::Mode Progress::resolve(const std::string& mode, bool is_leader) {
  if (!is_leader || mode == "none") return Mode::none;
  if (mode == "bar") return Mode::bar;
  if (mode == "lines") return Mode::lines;
  if (mode == "auto") return isatty(STDERR_FILENO) ? Mode::bar : Mode::lines;
  throw ConfigError("output.progress must be auto, bar, lines or none, not \"" + mode + "\"");
}

Progress::Progress(Mode mode, std::string label, int64_t total_steps, double line_every_s)
    : mode_(mode), label_(std::move(label)), total_(total_steps), line_every_s_(line_every_s) {
  start_ = last_ = std::chrono::steady_clock::now();
}

bool Progress::due(int64_t step) const {
  if (mode_ == Mode::none) return false;
  if (step >= total_) return true;
  double since = std::chrono::duration<double>(std::chrono::steady_clock::now() - last_).count();
  return since >= (mode_ == Mode::bar ? 0.2 : line_every_s_);
}

void Progress::update(int64_t step, int64_t images, double loss, double lr) {
  if (mode_ == Mode::none) return;
  auto now = std::chrono::steady_clock::now();
  double elapsed = std::chrono::duration<double>(now - start_).count();
  double since = std::chrono::duration<double>(now - last_).count();
  bool last_step = step >= total_;
  if (mode_ == Mode::bar && since < 0.2 && !last_step) return;
  if (mode_ == Mode::lines && since < line_every_s_ && !last_step) return;
  last_ = now;
  double ips = elapsed > 0 ? double(images) / elapsed : 0.0;
  double eta = step > 0 ? elapsed * double(total_ - step) / double(step) : NAN;
  if (mode_ == Mode::bar) {
    const std::string bar = text_bar(total_ > 0 ? double(step) / double(total_) : 1.0);
    std::fprintf(stderr, "\r%s %s %lld/%lld %6.0f img/s  ETA %s  loss %.4f  lr %.3g\x1b[K", label_.c_str(), bar.c_str(),
                 static_cast<long long>(step), static_cast<long long>(total_), ips, format_duration(eta).c_str(), loss, lr);
    std::fflush(stderr);
    open_ = true;
  } else {
    PL_INFO("{}: step {}/{} ({:.0f}%), {:.0f} img/s, ETA {}, loss {:.4f}, lr {:.3g}", label_, step, total_,
            total_ > 0 ? 100.0 * double(step) / double(total_) : 100.0, ips, format_duration(eta), loss, lr);
  }
}

std::string text_bar(double fraction, int width) {
  const int filled = static_cast<int>(std::clamp(fraction, 0.0, 1.0) * width);
  std::string b(static_cast<size_t>(filled), '=');
  if (filled < width) b += '>' + std::string(static_cast<size_t>(width - filled - 1), ' ');
  return "[" + b + "]";
}

void Progress::finish() {
  if (open_) {
    std::fprintf(stderr, "\n");
    std::fflush(stderr);
    open_ = false;
  }
}

}  // namespace passlab::train
