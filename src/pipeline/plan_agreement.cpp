#include "passlab/pipeline/plan_agreement.hpp"

#include <cstring>

#include "passlab/core/error.hpp"
#include "passlab/core/log.hpp"
#include "passlab/dist/communicator.hpp"

namespace passlab::pipeline {

// Wire format: int64 values [groups, size of each group..., indices of each group...] in host
// byte order (the ranks of a run group share one architecture).
void broadcast_plan(prune::KeepPlan& plan, dist::Communicator& comm, int root) {
  std::vector<int64_t> values{static_cast<int64_t>(plan.size())};
  for (auto& k : plan) values.push_back(static_cast<int64_t>(k.size()));
  for (auto& k : plan) values.insert(values.end(), k.begin(), k.end());
  std::string bytes(values.size() * sizeof(int64_t), '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());
  comm.broadcast_bytes(bytes, root);

  const size_t n = bytes.size() / sizeof(int64_t);
  values.assign(n, 0);
  std::memcpy(values.data(), bytes.data(), n * sizeof(int64_t));
  if (n == 0 || bytes.size() % sizeof(int64_t) != 0 || values[0] < 0 || 1 + static_cast<size_t>(values[0]) > n)
    throw DistError("keep plan broadcast: malformed message of " + std::to_string(bytes.size()) + " bytes");
  const size_t groups = static_cast<size_t>(values[0]);
  prune::KeepPlan got(groups);
  size_t at = 1 + groups;
  for (size_t g = 0; g < groups; ++g) {
    const int64_t len = values[1 + g];
    if (len < 0 || at + static_cast<size_t>(len) > n)
      throw DistError("keep plan broadcast: group " + std::to_string(g) + " overruns the message");
    got[g].assign(values.begin() + static_cast<std::ptrdiff_t>(at), values.begin() + static_cast<std::ptrdiff_t>(at + len));
    at += static_cast<size_t>(len);
  }
  if (at != n) throw DistError("keep plan broadcast: " + std::to_string(n - at) + " values after the last group");
  plan = std::move(got);
}

bool agree_on_plan(prune::Allocation& alloc, const models::Structure& dense, dist::Communicator& comm,
                   PlanPolicy policy, const std::string& what) {
  if (comm.size() <= 1) return false;
  prune::KeepPlan leader = alloc.keep;
  broadcast_plan(leader, comm, 0);
  if (leader == alloc.keep) return false;
  if (policy == PlanPolicy::must_match)
    throw DistError("prune task " + what + ": ranks of the run group allocated different channels");
  prune::validate_plan(dense, leader);
  alloc.keep = std::move(leader);
  alloc.kept = prune::kept_counts(alloc.keep);
  alloc.macs = dense.macs(alloc.kept);
  PL_DEBUG("prune {}: using the group leader's channels (its method is data-dependent)", what);
  return true;
}

}  // namespace passlab::pipeline
