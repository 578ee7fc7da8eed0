#pragma once
// The two kinds of task of a sweep (DESIGN.md §1), run by one run group, each a short sequence
// of stages (src/pipeline/dense_task.cpp, prune_task.cpp):
//  * dense task: open the data, build the dense model, train it, test it, write
//    <results>/dense/<dense_id>.h5. Shared by every prune task of that arch, dataset and seed.
//  * prune task: open the data, load the dense model, find the keep plan of the method (PASS
//    search or a baseline) at the exact MAC budget, agree on it across the group, slice and
//    fine-tune the compact network, evaluate and measure it, write <results>/runs/<run_id>.h5.
// Training checkpoints live under <results>/work/<id>/ so an interrupted task resumes its stage.
#include "passlab/pipeline/context.hpp"  // config::Config, dist:: declarations

namespace passlab::pipeline {

// Both return after the file is complete on disk (every rank of the group).
void run_dense_task(const config::Config& task, const dist::Runtime& rt, dist::Communicator& comm);
void run_prune_task(const config::Config& task, const dist::Runtime& rt, dist::Communicator& comm);

}  // namespace passlab::pipeline
