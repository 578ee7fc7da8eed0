#include "passlab/pipeline/pretrained.hpp"

#include "passlab/core/check.hpp"
#include "passlab/io/hdf5.hpp"
#include "passlab/io/result_file.hpp"
#include "passlab/io/run_schema.hpp"

namespace passlab::pipeline {

namespace rf = io::run_file;

PretrainedSource open_pretrained(const std::filesystem::path& file, const std::string& arch) {
  PretrainedSource s;
  s.weights_file = file;
  io::File f = io::File::open(file);
  const io::Group& root = f.root();
  const std::string kind = root.has_attr(rf::kKind) ? root.attr_string(rf::kKind) : "";
  if (kind == rf::kPruneKind) {
    // <results>/runs/<run_id>.h5 -> <results>/dense/<dense_id>.h5
    const auto dense = file.parent_path().parent_path() / "dense" / (root.attr_string(rf::kDenseId) + ".h5");
    PASSLAB_CHECK(std::filesystem::exists(dense), IOError,
                  "model.pretrained = " + file.string() + " is a run file; its compact weights cannot start a dense " + arch +
                      ", and the dense file it was pruned from, " + dense.string() + ", is not there");
    return open_pretrained(dense, arch);
  }
  // A weights file without an arch attribute (written by hand or by a tool other than the
  // exporter) is loaded by tensor names and shapes alone, as before passlab files were accepted.
  if (root.has_attr(rf::kArch)) {
    const std::string file_arch = root.attr_string(rf::kArch);
    PASSLAB_CHECK(file_arch == arch, IOError,
                  "model.pretrained = " + file.string() + " holds a " + file_arch + ", not the task's " + arch);
  }
  if (kind.empty()) {
    s.kind = "torchvision";
    s.channels = 3;
    s.mean = kImagenetMean;
    s.std = kImagenetStd;
    return s;
  }
  PASSLAB_CHECK(kind == rf::kDenseKind, IOError, "model.pretrained = " + file.string() + " has kind = " + kind);
  // The sweep's notion of a usable result (io/result_file.hpp): a dense file still being written,
  // failed, changed since its digest was written, or non-finite never starts another model.
  const io::File complete = io::run_file::open_usable(file);
  PASSLAB_CHECK(complete.root().has(rf::kNormalization), IOError,
                "model.pretrained = " + file.string() + " is a dense file written before passlab recorded its input (/" +
                    rf::kNormalization + "); train it again");
  const io::Group input = complete.root().open_group(rf::kNormalization);
  s.kind = "dense";
  s.mean = input.read<double>(rf::kNormMean);
  s.std = input.read<double>(rf::kNormStd);
  PASSLAB_CHECK(!s.mean.empty() && s.mean.size() == s.std.size(), IOError,
                file.string() + ": /normalization/mean and /normalization/std differ in length");
  s.channels = static_cast<int64_t>(s.mean.size());
  return s;
}

}  // namespace passlab::pipeline
