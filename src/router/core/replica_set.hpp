// The replica set: every replica the router knows, with an explicit lifecycle and the one
// answer to "is this replica routable?". A replica is routable when it is active (not draining,
// removing or removed), healthy (HealthTracker over /health, failed proxies and refused
// scrapes) and its model list is known. ReplicaSet is the only writer of that flag in the
// ClusterState and of the eta_replica_routable / eta_replica_healthy gauges (`refresh`).
//
// Lifecycle:  active <-> draining    (admin drain / undrain: no new requests)
//             active | draining -> removing -> removed
//                                  (admin remove, reload, DNS: in-flight requests finish, then
//                                   removed; a reload that lists it again revives it)
// Eligibility for one request (serves its model, has room, not yet tried) is a mask handed to the
// policy through a filtered copy of the ClusterView (`eligible_view`); it never changes the
// shared state. Pure: no networking (the poller feeds it results).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/state.hpp"
#include "router/aliases.hpp"
#include "router/core/admission.hpp"
#include "router/core/config.hpp"
#include "router/replica_state.hpp"
#include "router/router_metrics.hpp"
#include "router/window_stats.hpp"

namespace eta::router {

enum class Lifecycle : uint8_t { kActive, kDraining, kRemoving, kRemoved };
std::string_view to_string(Lifecycle lifecycle);

struct ReplicaRecord {
  int index = 0;  // ClusterState index
  ReplicaConfig config;
  Lifecycle lifecycle = Lifecycle::kActive;
  Lifecycle before_removal = Lifecycle::kActive;  // what a revived replica returns to
  HealthTracker health;
  bool models_known = false;
  ModelList models;
  // Its polls were answered 401/403 (logged once; unroutable until a poll succeeds).
  bool unauthorized = false;
  bool speed_seeded = false;  // the speed model started at the simulator's time scale
  double last_scrape_ok = -1;
  uint64_t scrapes = 0;
  uint64_t scrape_failures = 0;
  uint64_t requests = 0;
  uint64_t failures = 0;
  int in_flight = 0;
  std::string last_error;
  metrics::Gauge* in_flight_gauge = nullptr;
  mutable ReplicaWindow window;  // the last minute's completions (dashboard, /admin/replicas)

  const std::string& url() const { return config.url; }
  bool removed() const { return lifecycle == Lifecycle::kRemoved; }
  bool gone() const { return lifecycle == Lifecycle::kRemoving || removed(); }
  bool routable() const {
    return lifecycle == Lifecycle::kActive && health.healthy() && models_known;
  }
  // Under its own name or, through a model alias, under one of its served names.
  bool serves(std::string_view model, const std::vector<ModelAlias>& aliases) const {
    return served_name_for(aliases, model, models.ids) != nullptr;
  }
};

// What one health result changed.
enum class HealthChange : uint8_t {
  kNone,
  kBecameHealthy,    // first success, or healthy again (`restarted` then)
  kBecameUnhealthy,  // was healthy
  kFirstFailure,     // its first result is a failure (it starts unhealthy)
};

// One request's view of the replicas: who may take it.
struct EligibilityQuery {
  std::string_view model;
  bool any_model = false;  // stored responses: every replica may answer, whatever the model
  bool retry = false;      // per-replica room does not bound a retry
  int max_in_flight_per_replica = 0;
  const std::vector<int>* tried = nullptr;
};

class ReplicaSet {
 public:
  ReplicaSet(cluster::ClusterState& state, RouterMetrics& metrics);

  // Adds a validated replica (routable once healthy with known models). Returns its index, or
  // -1 with `error`.
  int add(const ReplicaConfig& config, int failure_threshold, int success_threshold, double now,
          std::string& error);
  ReplicaRecord& at(int index) { return *records_[static_cast<size_t>(index)]; }
  const ReplicaRecord& at(int index) const { return *records_[static_cast<size_t>(index)]; }
  size_t size() const { return records_.size(); }
  // The replica with this URL (canonical form) that is not removed, or null.
  ReplicaRecord* find(std::string_view canonical_url);
  bool any_routable() const;
  template <typename F>
  void for_each_live(F&& f) {
    for (auto& r : records_)
      if (!r->removed()) f(*r);
  }
  template <typename F>
  void for_each_live(F&& f) const {
    for (const auto& r : records_)
      if (!r->removed()) f(*r);
  }

  // Writes routability (ClusterState and gauges) from the record. Returns routable().
  bool refresh(ReplicaRecord& r);

  // A health result (`detail`: why it failed).
  HealthChange record_health(ReplicaRecord& r, bool ok, std::string_view detail);
  // Its model list arrived (true: it changed or was unknown).
  bool set_models(ReplicaRecord& r, ModelList list);
  // A poll was answered 401/403: models unknown (unroutable) until one succeeds. True the first
  // time (log it).
  bool set_unauthorized(ReplicaRecord& r, std::string message);
  // Admin drain / undrain. False when the replica is being removed (nothing changes).
  bool set_draining(ReplicaRecord& r, bool on);
  // No new requests; true when it can be removed now (nothing in flight).
  bool begin_removal(ReplicaRecord& r);
  // Removed for good (gauges zeroed, unroutable, its prefix knowledge dropped).
  void finish_removal(ReplicaRecord& r);
  // Listed again while removing: back to what it was.
  void revive(ReplicaRecord& r);
  // Attempts in flight. attempt_ended returns true when a removing replica may now be removed.
  void attempt_started(ReplicaRecord& r);
  bool attempt_ended(ReplicaRecord& r);

  // Why a replica is not routable ("" when it is).
  std::string unroutable_reason(const ReplicaRecord& r) const;
  // Who may take one request: counts, and `mask` (by index; 1 = candidate).
  Eligibility eligibility(const EligibilityQuery& q, const std::vector<ModelAlias>& aliases,
                          std::vector<char>& mask) const;
  // Another candidate besides `current` for a retry (routable, serves, not tried).
  bool has_other(const EligibilityQuery& q, const std::vector<ModelAlias>& aliases,
                 int current) const;
  // The view a policy picks from: `view` with only the mask's replicas routable (a copy, in
  // `storage`; the shared ClusterState is untouched).
  const cluster::ClusterView& eligible_view(const cluster::ClusterView& view,
                                            const std::vector<char>& mask);
  // The one model every replica that reported its models serves, or empty.
  std::string default_model() const;

 private:
  cluster::ClusterState& state_;
  RouterMetrics& metrics_;
  std::vector<std::unique_ptr<ReplicaRecord>> records_;  // by index (removed: tombstones)
  std::vector<cluster::ReplicaView> eligible_storage_;
  cluster::ClusterView eligible_view_;
};

}  // namespace eta::router
