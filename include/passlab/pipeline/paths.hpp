#pragma once
// Where the files of a sweep's tasks live under [output] dir (DESIGN.md §4): the dense model of
// an (arch, dataset, seed) in dense/, one run file per prune task in runs/, and the scratch of a
// running task (its training checkpoints) in work/<task id>/, removed once the task is done.
#include <filesystem>
#include <string>

#include "passlab/config/config.hpp"

namespace passlab::pipeline {

std::filesystem::path dense_path(const config::Config& task);  // <output.dir>/dense/<dense_id>.h5
std::filesystem::path run_path(const config::Config& task);    // <output.dir>/runs/<run_id>.h5
std::filesystem::path work_dir(const config::Config& task, const std::string& id);  // <output.dir>/work/<id>
// Removes work/<id> once the task's file is written (the group leader calls it). A failure only
// warns: the task is complete, and a left-over directory is removed by the next attempt's clean-up.
void remove_work_dir(const config::Config& task, const std::string& id);

}  // namespace passlab::pipeline
