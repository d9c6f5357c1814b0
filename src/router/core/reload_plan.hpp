// What a reload (SIGHUP) does, decided without touching the running router: from the running
// configuration, the new one (read, overlaid by the flags and validated) and the running
// replicas, the plan lists the replicas to add, to remove and to revive, the changes that are
// warned about and not applied, and whether the policy must be rebuilt. Pure; the router applies
// the plan (Router::Impl::reload) and logs one warning per kept setting and changed replica.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "router/core/config.hpp"

namespace eta::router {

// A replica of the running router that is not yet removed.
struct RunningReplica {
  ReplicaConfig config;   // as it runs (url canonical; weight, gpu, arch, tls)
  bool removing = false;  // its removal has begun (draining)
  bool from_dns = false;  // found by replica_dns, not configured: a reload never removes it
};

struct ReloadPlan {
  // Non-empty: the reload is rejected and nothing is applied (a bad replica, or the running
  // non-loopback admin listener left without admin.token).
  std::string error;
  std::vector<ReplicaConfig> add;   // in the new file, not running
  std::vector<std::string> remove;  // running, neither in the file nor from DNS: begin removal
  std::vector<std::string> revive;  // removing, but back in the file: routable again
  // In both, with another weight, gpu, arch or (https://) tls: warned, not applied (a change
  // needs a remove and add).
  std::vector<std::string> changed;
  // Restart-only settings whose running value was put back into `next` (keep_restart_only).
  std::vector<std::string> kept;
  bool rebuild_policy = false;  // policy.name, policy.params or policy.seed changed
  bool ok() const { return error.empty(); }
};

// Plans the reload from `running` to `next`. Canonicalises `next`'s replica URLs
// (validate_replica) and puts the running value back into `next` for every restart-only
// setting; after a plan without error, `next` is the configuration to run.
ReloadPlan plan_reload(const RouterConfig& running, RouterConfig& next,
                       std::span<const RunningReplica> replicas);

}  // namespace eta::router
