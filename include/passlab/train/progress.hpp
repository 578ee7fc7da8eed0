#pragma once
// Training progress on the group leader: a one-line bar with images/s and ETA when stderr is a
// terminal, periodic log lines in batch logs (stderr not a terminal), or nothing.
#include <chrono>
#include <cstdint>
#include <string>

namespace passlab::train {

class Progress {
 public:
  enum class Mode { bar, lines, none };
  // mode: auto | bar | lines | none ("auto": bar on a terminal, lines otherwise).
  static Mode resolve(const std::string& mode, bool is_leader);
  Progress(Mode mode, std::string label, int64_t total_steps, double line_every_s = 30.0);
  // After a step: steps done in this epoch, images processed in the group (all ranks) so far
  // this epoch, last loss, current learning rate.
  void update(int64_t step, int64_t images, double loss, double lr);
  // Whether update() would print now (so callers read the loss from the device only then).
  bool due(int64_t step) const;
  void finish();

 private:
  Mode mode_;
  std::string label_;
  int64_t total_;
  double line_every_s_;
  std::chrono::steady_clock::time_point start_, last_;
  bool open_ = false;
};

// The bar of every progress display, `width` cells for the fraction done: "[=========>        ]".
std::string text_bar(double fraction, int width = 24);

// "1:02:03" / "2:03" for seconds.
std::string format_duration(double seconds);

}  // namespace passlab::train
