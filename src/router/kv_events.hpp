// The router's consumer of its replicas' KV-cache events (issue 15). One subscriber thread per
// replica that publishes (kv_events::Subscriber: ordering, de-duplication, replay of gaps);
// each decoded batch, and each "forget it" (a restart, a gap replay could not fill), is posted
// to the router's io_context and applied there to ClusterState's KvEventIndex, so all routing
// state stays on the one thread. A replica with events is matched from them (the source shown
// as "kv_events" in /admin/replicas, the dashboard and the decision log); the others keep the
// router's own index ("router_index").
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cluster/state.hpp"
#include "router/config.hpp"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace eta::router {

struct KvEventsStatus {
  bool enabled = false;
  KvEventsEndpoints endpoints;
  uint64_t batches = 0;  // applied
  uint64_t last_seq = 0;
  uint64_t duplicates = 0;
  uint64_t gaps = 0;
  uint64_t gaps_filled = 0;
  uint64_t gaps_lost = 0;
  uint64_t restarts = 0;
  uint64_t decode_errors = 0;
  prefix::KvEventReplicaStats index;
};

// The endpoints a replica's events come from: its own, else the pattern with "{host}" replaced
// by the host of its URL; empty endpoint: none.
KvEventsEndpoints resolve_kv_events(const ReplicaConfig& replica, const KvEventsEndpoints& pattern);

class KvEventsConsumer {
 public:
  // `now` is the router's clock (seconds), for the index's seeds.
  // `mu`: held while an update is applied (the router core's mutex), or null.
  KvEventsConsumer(boost::asio::io_context& io, cluster::ClusterState& state,
                   std::function<double()> now, std::recursive_mutex* mu = nullptr);
  ~KvEventsConsumer();
  KvEventsConsumer(const KvEventsConsumer&) = delete;
  KvEventsConsumer& operator=(const KvEventsConsumer&) = delete;

  // Subscribes to the replica's events and marks its estimates as coming from them.
  bool attach(int replica, const KvEventsEndpoints& endpoints, std::string& error);
  // Stops the replica's subscriber and forgets what it said (a removed replica).
  void detach(int replica);
  // The replica restarted (the router saw it down, then up): a new subscriber, whose first
  // message opens a gap from sequence 0 that the new publisher's replay buffer fills.
  void restart(int replica);
  void stop_all();
  KvEventsStatus status(int replica) const;

 private:
  struct Core;
  struct Feed;
  std::shared_ptr<Core> core_;
  std::vector<std::unique_ptr<Feed>> feeds_;  // by replica index
};

}  // namespace eta::router
