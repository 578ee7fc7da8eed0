// passlab prepare <format> [source] --out <file.h5> [--size S] [--threads N] [--classes 0,1,..] [--shift invert]
//                 [--train-per-class N] ...
#include <csignal>
#include <iostream>
#include <memory>

#include "commands.hpp"
#include "passlab/core/error.hpp"
#include "passlab/data/prepare.hpp"

namespace passlab::cli {

namespace {
extern "C" void on_prepare_signal(int) { data::request_prepare_cancel(); }

std::string format_list() {
  std::string all;
  for (auto& f : data::prepare_formats()) all += (all.empty() ? "" : ", ") + f;
  return all;
}
}  // namespace

Command add_prepare_command(CLI::App& app) {
  struct Opts {
    std::string format, source, out;
    data::PrepareOptions prep;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("prepare", "Convert a raw dataset into an HDF5 image store (docs/datasets.md)");
  sub->add_option("format", o->format, "Input format: " + format_list())->required();
  sub->add_option("source", o->source,
                  "Source directory (fashion-mnist: defaults to Debian's /usr/share/datasets/fashion-mnist)");
  sub->add_option("--out,-o", o->out, "Output store (.h5), written atomically")->required();
  sub->add_option("--size", o->prep.size, "Resolution: shorter side to S, centre crop (0: native)");
  sub->add_option("--threads", o->prep.threads, "Decode/resize threads")->check(CLI::Range(1, 256));
  sub->add_option("--channels", o->prep.channels, "imagefolder: 1 (gray) or 3 (RGB, default)")->check(CLI::IsMember({0, 1, 3}));
  sub->add_option("--gzip", o->prep.gzip, "Deflate level of the image datasets (0: none, fastest reads)")->check(CLI::Range(0, 9));
  sub->add_option("--classes", o->prep.classes,
                  "Keep only these classes (indices of the source's labels), relabelled 0..k-1 in this order, e.g. "
                  "--classes 6,7,8,9 (not imagefolder)")
      ->delimiter(',');
  sub->add_option("--shift", o->prep.shift,
                  "Domain shift applied to every image: none, or invert (v -> 255 - v); docs/transfer.md (not imagefolder)")
      ->check(CLI::IsMember(data::prepare_shifts()));
  sub->add_option("--train-per-class", o->prep.train_per_class,
                  "Few-shot training split: keep the first N training images of each class (0: all; the test split "
                  "stays whole; not imagefolder)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  sub->add_flag("--force", o->prep.force, "Replace an existing store");
  return {sub, [o](const Context&) -> int {
            // Ctrl-C / SIGTERM: stop at the next block and remove the partial file.
            std::signal(SIGINT, on_prepare_signal);
            std::signal(SIGTERM, on_prepare_signal);
            data::StoreInfo info = data::prepare(o->format, o->source, o->out, o->prep);
            std::cout << info.path.string() << ": " << info.train_size << " train, " << info.test_size << " test, "
                      << info.height << "x" << info.width << "x" << info.channels << ", " << info.num_classes()
                      << " classes, mean";
            for (double m : info.mean) std::cout << " " << m;
            std::cout << ", std";
            for (double s : info.std) std::cout << " " << s;
            std::cout << ", " << info.checksum << "\n";
            return 0;
          }};
}

}  // namespace passlab::cli
