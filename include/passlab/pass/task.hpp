#pragma once
// The two kinds of task of a sweep (DESIGN.md §1), run by one run group:
//  * dense task: build the model (optionally import pretrained weights with a new head), train
//    it on the dataset, write <results>/dense/<dense_id>.h5. Shared by every prune task of that
//    arch, dataset and seed.
//  * prune task: load the dense model, find the channels to keep (PASS search or a baseline),
//    allocate them to the exact MAC budget, slice the compact network, fine-tune it, evaluate
//    it (top-1, top-5, MACs, params, dense and pruned latency) and write
//    <results>/runs/<run_id>.h5 with the layout of DESIGN.md §4.
// Files are written by the group leader through io::AtomicWriter (status set last). Training
// checkpoints live under <results>/work/<id>/ so an interrupted task resumes its stage.
#include <filesystem>

#include "passlab/config/config.hpp"

namespace passlab::dist {
class Runtime;
class Communicator;
}  // namespace passlab::dist

namespace passlab::pass {

std::filesystem::path dense_path(const config::Config& task);  // <output.dir>/dense/<dense_id>.h5
std::filesystem::path run_path(const config::Config& task);    // <output.dir>/runs/<run_id>.h5
std::filesystem::path work_dir(const config::Config& task, const std::string& id);

// Both return after the file is complete on disk (every rank of the group).
void run_dense_task(const config::Config& task, const dist::Runtime& rt, dist::Communicator& comm);
void run_prune_task(const config::Config& task, const dist::Runtime& rt, dist::Communicator& comm);

}  // namespace passlab::pass
