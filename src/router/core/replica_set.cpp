#include "router/core/replica_set.hpp"

#include <algorithm>

#include "engine/engine.hpp"
#include "engine/profile.hpp"

namespace eta::router {

std::string_view to_string(Lifecycle lifecycle) {
  switch (lifecycle) {
    case Lifecycle::kActive:
      return "active";
    case Lifecycle::kDraining:
      return "draining";
    case Lifecycle::kRemoving:
      return "removing";
    case Lifecycle::kRemoved:
      return "removed";
  }
  return "unknown";
}

ReplicaSet::ReplicaSet(cluster::ClusterState& state, RouterMetrics& metrics)
    : state_(state), metrics_(metrics) {}

int ReplicaSet::add(const ReplicaConfig& rc, int failure_threshold, int success_threshold,
                    double now, std::string& error) {
  if (find(rc.url)) {
    error = "duplicate replica " + rc.url;
    return -1;
  }
  cluster::ReplicaSpec spec;
  spec.name = rc.url;
  spec.weight = rc.weight;
  const std::string arch = rc.arch.empty() ? "llama-2-7b" : rc.arch;
  const std::string gpu = rc.gpu.empty() ? "h100" : rc.gpu;
  if (!engine::make_config(engine::ProfileSet::builtin(), arch, gpu, spec.engine, error)) {
    return -1;
  }
  auto r = std::make_unique<ReplicaRecord>();
  r->config = rc;
  r->config.arch = arch;
  r->config.gpu = gpu;
  r->health = HealthTracker(failure_threshold, success_threshold);
  r->index = state_.add_replica(spec);
  if (r->index != static_cast<int>(records_.size())) {
    error = "internal: replica index mismatch";
    return -1;
  }
  r->window = ReplicaWindow(now);
  r->in_flight_gauge = &metrics_.in_flight.with({rc.url});
  r->in_flight_gauge->set(0);
  metrics_.healthy.with({rc.url}).set(0);
  records_.push_back(std::move(r));
  refresh(*records_.back());
  return records_.back()->index;
}

ReplicaRecord* ReplicaSet::find(std::string_view url) {
  for (auto& r : records_)
    if (!r->removed() && r->url() == url) return r.get();
  return nullptr;
}

bool ReplicaSet::any_routable() const {
  return std::any_of(records_.begin(), records_.end(), [](const auto& r) { return r->routable(); });
}

bool ReplicaSet::refresh(ReplicaRecord& r) {
  const bool routable = r.routable();
  metrics_.routable.with({r.url()}).set(routable ? 1 : 0);
  state_.set_routable(r.index, routable);
  return routable;
}

HealthChange ReplicaSet::record_health(ReplicaRecord& r, bool ok, std::string_view detail) {
  if (!ok) {
    r.last_error = std::string(detail);
    metrics_.health_failures.with({r.url()}).inc();
  }
  const bool was_known = r.health.known();
  HealthChange change = HealthChange::kNone;
  if (r.health.record(ok)) {
    metrics_.healthy.with({r.url()}).set(r.health.healthy() ? 1 : 0);
    if (r.health.healthy()) {
      change = HealthChange::kBecameHealthy;
      if (was_known) {
        // It was down: it probably restarted with an empty prefix cache.
        state_.forget_prefix_cache(r.index);
      }
    } else {
      change = was_known ? HealthChange::kBecameUnhealthy : HealthChange::kFirstFailure;
    }
  } else if (!ok && !was_known) {
    change = HealthChange::kFirstFailure;  // it starts unhealthy: nothing changed but say why
  }
  refresh(r);
  return change;
}

bool ReplicaSet::set_models(ReplicaRecord& r, ModelList list) {
  const bool changed = !r.models_known || list.ids != r.models.ids;
  r.models = std::move(list);
  r.models_known = true;
  r.unauthorized = false;
  // eta vllm-sim runs `time_scale` simulated seconds per wall second: start the speed model
  // there (the profile is in simulated time) instead of learning it from scratch.
  predict::SpeedModel& speed = state_.speed(r.index);
  if (!r.speed_seeded && r.models.time_scale && speed.decode_observations() == 0 &&
      speed.prefill_observations() == 0) {
    speed.set_factors(*r.models.time_scale, *r.models.time_scale, 0);
    r.speed_seeded = true;
  }
  refresh(r);
  return changed;
}

bool ReplicaSet::set_unauthorized(ReplicaRecord& r, std::string message) {
  r.last_error = std::move(message);
  r.models_known = false;  // what it serves cannot be known: unroutable
  refresh(r);
  if (r.unauthorized) return false;
  r.unauthorized = true;
  return true;
}

bool ReplicaSet::set_draining(ReplicaRecord& r, bool on) {
  if (r.gone()) return false;
  r.lifecycle = on ? Lifecycle::kDraining : Lifecycle::kActive;
  refresh(r);
  return true;
}

bool ReplicaSet::begin_removal(ReplicaRecord& r) {
  if (r.removed()) return false;
  if (r.lifecycle != Lifecycle::kRemoving) r.before_removal = r.lifecycle;
  r.lifecycle = Lifecycle::kRemoving;
  refresh(r);
  return r.in_flight == 0;
}

void ReplicaSet::finish_removal(ReplicaRecord& r) {
  if (r.removed()) return;
  r.lifecycle = Lifecycle::kRemoved;
  refresh(r);
  state_.forget_prefix_cache(r.index);
  metrics_.healthy.with({r.url()}).set(0);
  r.in_flight_gauge->set(0);
}

void ReplicaSet::revive(ReplicaRecord& r) {
  if (r.lifecycle != Lifecycle::kRemoving) return;
  r.lifecycle = r.before_removal;
  refresh(r);
}

void ReplicaSet::attempt_started(ReplicaRecord& r) {
  ++r.in_flight;
  ++r.requests;
  r.in_flight_gauge->set(r.in_flight);
}

bool ReplicaSet::attempt_ended(ReplicaRecord& r) {
  --r.in_flight;
  if (r.in_flight_gauge) r.in_flight_gauge->set(r.in_flight);
  return r.lifecycle == Lifecycle::kRemoving && r.in_flight == 0;
}

std::string ReplicaSet::unroutable_reason(const ReplicaRecord& r) const {
  if (r.routable()) return "";
  if (r.gone()) return "removing";
  if (r.lifecycle == Lifecycle::kDraining) return "draining";
  if (!r.health.known()) return "not probed yet";
  if (!r.health.healthy()) return "unhealthy: " + r.last_error;
  if (r.unauthorized) return r.last_error;
  return "models not known yet";
}

Eligibility ReplicaSet::eligibility(const EligibilityQuery& q,
                                    const std::vector<ModelAlias>& aliases,
                                    std::vector<char>& mask) const {
  Eligibility e;
  mask.assign(records_.size(), 0);
  for (const auto& r : records_) {
    if (r->removed()) continue;
    e.any_known = e.any_known || r->models_known;
    const bool serves = q.any_model || r->serves(q.model, aliases);
    e.any_serving = e.any_serving || serves;
    if (!r->routable() || !serves) continue;
    ++e.eligible;
    const bool tried = q.tried != nullptr &&
                       std::find(q.tried->begin(), q.tried->end(), r->index) != q.tried->end();
    const bool room =
        q.retry || q.max_in_flight_per_replica == 0 || r->in_flight < q.max_in_flight_per_replica;
    if (!tried && room) {
      mask[static_cast<size_t>(r->index)] = 1;
      ++e.candidates;
    }
  }
  return e;
}

bool ReplicaSet::has_other(const EligibilityQuery& q, const std::vector<ModelAlias>& aliases,
                           int current) const {
  for (const auto& r : records_) {
    if (r->index == current || !r->routable() || (!q.any_model && !r->serves(q.model, aliases)))
      continue;
    if (q.tried != nullptr &&
        std::find(q.tried->begin(), q.tried->end(), r->index) != q.tried->end())
      continue;
    return true;
  }
  return false;
}

const cluster::ClusterView& ReplicaSet::eligible_view(const cluster::ClusterView& view,
                                                      const std::vector<char>& mask) {
  eligible_storage_.assign(view.replicas.begin(), view.replicas.end());
  for (cluster::ReplicaView& v : eligible_storage_) {
    v.routable = static_cast<size_t>(v.index) < mask.size() && mask[static_cast<size_t>(v.index)];
  }
  eligible_view_ = view;
  eligible_view_.replicas = eligible_storage_;
  return eligible_view_;
}

std::string ReplicaSet::default_model() const {
  std::string only;
  for (const auto& r : records_) {
    if (r->removed() || !r->models_known) continue;
    for (const std::string& m : r->models.ids) {
      if (only.empty()) {
        only = m;
      } else if (m != only) {
        return "";
      }
    }
  }
  return only;
}

}  // namespace eta::router
