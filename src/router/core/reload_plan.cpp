#include "router/core/reload_plan.hpp"

#include <algorithm>
#include <set>

#include "router/core/settings.hpp"

namespace eta::router {

namespace {

// What a reload cannot change on a running replica.
bool replica_changed(const RouterConfig& running, const RunningReplica& r, const RouterConfig& next,
                     const ReplicaConfig& rc) {
  return r.config.weight != rc.weight || (!rc.gpu.empty() && rc.gpu != r.config.gpu) ||
         (!rc.arch.empty() && rc.arch != r.config.arch) ||
         (rc.url.rfind("https://", 0) == 0 &&
          tls_options_for(next, rc) != tls_options_for(running, r.config));
}

}  // namespace

ReloadPlan plan_reload(const RouterConfig& running, RouterConfig& next,
                       std::span<const RunningReplica> replicas) {
  ReloadPlan plan;
  for (ReplicaConfig& rc : next.replicas) {
    if (!validate_replica(rc, plan.error)) return plan;
  }
  plan.rebuild_policy = next.policy.name != running.policy.name ||
                        next.policy.params != running.policy.params ||
                        next.policy.seed != running.policy.seed;
  plan.kept = keep_restart_only(running, next);
  // The token is reloaded, the address is not (validate_config saw the new file's address).
  if (running.admin.port >= 0 && !is_loopback_host(running.admin.host) &&
      next.admin.token.empty()) {
    plan.error = "the running admin listener on " + running.admin.host +
                 " needs admin.token (a new admin address needs a restart)";
    return plan;
  }
  std::set<std::string> wanted;
  for (const ReplicaConfig& rc : next.replicas) {
    wanted.insert(rc.url);
    const auto it = std::find_if(replicas.begin(), replicas.end(),
                                 [&](const RunningReplica& r) { return r.config.url == rc.url; });
    if (it == replicas.end()) {
      plan.add.push_back(rc);
      continue;
    }
    if (replica_changed(running, *it, next, rc)) plan.changed.push_back(rc.url);
    if (it->removing) plan.revive.push_back(rc.url);
  }
  for (const RunningReplica& r : replicas) {
    if (r.removing || r.from_dns || wanted.count(r.config.url)) continue;
    plan.remove.push_back(r.config.url);
  }
  return plan;
}

}  // namespace eta::router
