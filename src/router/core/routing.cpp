// RouterCore: admission, routing and the router queue. Every refusal goes through refuse() /
// answer_refusal() with admission.hpp's wording; every "may it take the request?" through the
// ReplicaSet's eligibility mask.
#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "openai/request.hpp"
#include "predict/completion_model.hpp"
#include "router/core/late_binding.hpp"
#include "router/core/router_core.hpp"

namespace eta::router {

void RouterCore::admit(const CallPtr& c) {
  // FIFO: behind waiting requests (admission's queue, or those late binding holds).
  if (queue_behind(config_.admission, config_.late_binding, queue_.size())) {
    enqueue(c);
    pump_queue();
    return;
  }
  const RouteResult result = route(c);
  switch (dispose(config_.admission, result)) {
    case Disposition::kDispatched:
      return;
    case Disposition::kQueue:
      return enqueue(c);
    case Disposition::kRefuse:
      return refuse(c, refusal_of(result));
  }
}

EligibilityQuery RouterCore::eligibility_query(const Call& c, bool retry) const {
  EligibilityQuery q;
  q.model = c.info.model;
  q.any_model = c.route && c.route->cls == RouteClass::kStored;
  q.retry = retry;
  q.max_in_flight_per_replica = config_.admission.max_in_flight_per_replica;
  q.tried = &c.tried;
  return q;
}

bool RouterCore::has_retry_target(const Call& c) const {
  return replicas_.has_other(eligibility_query(c, true), config_.models.aliases, c.replica);
}

RetryBudget RouterCore::retry_budget(const Call& c) const {
  RetryBudget b;
  b.attempt = c.attempt;
  b.retries = config_.retries;
  b.pinned = c.pinned >= 0;
  b.has_target = !b.pinned && c.attempt <= config_.retries && has_retry_target(c);
  return b;
}

RouteResult RouterCore::route(const CallPtr& c) {
  const bool retry = c->attempt > 0;
  if (const RouteResult r = admit_in_flight(config_.admission, retry, total_in_flight_);
      r != RouteResult::kDispatched) {
    return r;
  }
  // A stored response's retrieval or cancel goes to its replica, whatever the model (none is
  // sent), draining or not: the response lives there alone (drain stops new work only).
  if (c->pinned >= 0 && !retry) {
    const ReplicaRecord& p = replicas_.at(c->pinned);
    if (!p.gone() && p.health.healthy() && p.models_known) {
      decision_.replica = c->pinned;
      decision_.candidates.clear();
      decision_.reason = "stored response: its replica";
      dispatch_to(c, c->pinned);
      return RouteResult::kDispatched;
    }
  }
  const Eligibility e =
      replicas_.eligibility(eligibility_query(*c, retry), config_.models.aliases, mask_);
  if (const RouteResult r = admit_eligible(e, retry); r != RouteResult::kDispatched) {
    return r;
  }
  if (!c->use_ledger) return route_pinned_or_utility(c, mask_);

  const double t0 = now();
  const cluster::ClusterView& view = replicas_.eligible_view(state_.view(now()), mask_);
  policy_->pick_into(c->prepared.features, view, rng_, decision_);
  metrics_.decision_seconds.with().observe(c->decision_s + (now() - t0));
  if (!decision_.ok()) return RouteResult::kNoReplica;
  if (slo_shed(c, view, retry)) return RouteResult::kSloShed;
  if (!retry && hold(c, view)) return RouteResult::kHeld;
  const cluster::Candidate* chosen = decision_.candidate(decision_.replica);
  c->predicted_ttft_s = chosen ? chosen->ttft_s : cluster::kNotPredicted;
  c->predicted_e2e_s = chosen ? chosen->e2e_s : cluster::kNotPredicted;
  dispatch_to(c, decision_.replica);
  return RouteResult::kDispatched;
}

// Stored responses: the replica that created it. Utilities (and a stored response whose replica
// is gone, which any replica answers with vLLM's 404): the least busy candidate.
RouteResult RouterCore::route_pinned_or_utility(const CallPtr& c, const std::vector<char>& mask) {
  auto candidate = [&](int i) { return i >= 0 && mask[static_cast<size_t>(i)] != 0; };
  int chosen = candidate(c->pinned) ? c->pinned : -1;
  if (chosen < 0) {
    replicas_.for_each_live([&](const ReplicaRecord& r) {
      if (!candidate(r.index)) return;
      if (chosen < 0 || r.in_flight < replicas_.at(chosen).in_flight) chosen = r.index;
    });
  }
  if (chosen < 0) return RouteResult::kNoReplica;
  decision_.replica = chosen;
  decision_.candidates.clear();
  decision_.reason = c->pinned >= 0 && chosen == c->pinned ? "stored response: its replica"
                     : c->route->cls == RouteClass::kStored
                         ? "stored response of unknown replica: least in flight"
                         : "utility route: least in flight";
  c->predicted_ttft_s = cluster::kNotPredicted;
  c->predicted_e2e_s = cluster::kNotPredicted;
  dispatch_to(c, chosen);
  return RouteResult::kDispatched;
}

// TTFT SLO shedding: when even the best candidate is predicted to miss it. Policies that do not
// predict get the completion model's prediction.
bool RouterCore::slo_shed(const CallPtr& c, const cluster::ClusterView& view, bool retry) {
  if (retry || config_.admission.ttft_slo_s <= 0) return false;
  double best = std::numeric_limits<double>::infinity();
  for (const cluster::Candidate& cand : decision_.candidates) {
    double ttft = cand.ttft_s;
    if (!std::isfinite(ttft)) {
      const cluster::ReplicaView& v = state_.replica(cand.replica);
      predict::CompletionQuery q;
      q.prompt_tokens = std::max(1, c->prepared.features.prompt_tokens);
      q.cached_tokens = c->prepared.features.cached_tokens_on(cand.replica);
      q.output_tokens = c->prepared.features.output_tokens();
      ttft = predict::estimate_completion(v, q, view, state_.speed(cand.replica)).ttft_s;
    }
    best = std::min(best, ttft);
  }
  if (admit_after_pick(config_.admission, retry, best) == RouteResult::kDispatched) return false;
  decision_.reason += fmt::format("; shed: best predicted ttft {:.3f}s > slo {:.3f}s", best,
                                  config_.admission.ttft_slo_s);
  if (!c->queued) observer_.decided(*c, decision_, -1);  // not again at every re-check
  return true;
}

// Late binding: held while every candidate is busy (or would make it wait), for at most
// max_hold_s; once not held, where it goes (late_binding.hpp).
bool RouterCore::hold(const CallPtr& c, const cluster::ClusterView& view) {
  const LateBindingConfig& lb = config_.late_binding;
  if (!lb.enabled) return false;
  if (!c->queued && static_cast<int>(queue_.size()) >= lb.max_held) return false;
  const LateBindingVerdict v = late_binding_decide(
      lb, view, mask_, decision_.replica, now() - c->arrival, c->held_by_late_binding,
      [&](int i) {
        const cluster::Candidate* cand = decision_.candidate(i);
        return cand ? cand->ttft_s : std::numeric_limits<double>::quiet_NaN();
      },
      [&](const cluster::ReplicaView& r) {
        return model_ttft(r, c->prepared.features, view, state_.speed(r.index));
      });
  if (v.hold) {
    c->held_by_late_binding = true;
    return true;
  }
  decision_.replica = v.replica;  // a held request: the replica that starts it first
  return false;
}

void RouterCore::dispatch_to(const CallPtr& c, int replica) {
  c->attempt += 1;
  observer_.decided(*c, decision_, replica);
  start_attempt(c, replica);
}

void RouterCore::refuse(const CallPtr& c, Refusal refusal) {
  if (refusal == Refusal::kUnknownModel) {
    note_error(*c, "unknown_model");
    // The simulator's body (openai::model_not_found), so the two stay the same.
    const openai::Error e = openai::model_not_found(c->info.model);
    http::Response r = http::error_response(e);  // with vLLM 2026's param "model"
    add_eta_headers(*c, r.headers);
    c->exchange->respond(std::move(r));
    finish(c, e.status);
    return;
  }
  answer_refusal(c, refusal_answer(refusal, config_.admission, c->info.model));
}

void RouterCore::answer_refusal(const CallPtr& c, const RefusalAnswer& a) {
  note_error(*c, a.reason);
  http::Headers h;
  if (a.retry_after_s > 0) h.emplace_back("Retry-After", std::to_string(a.retry_after_s));
  respond_error(c, a.status, a.type, a.message, std::move(h));
}

// ---------------------------------------------------------------------------------------------
// The router queue: FIFO, bounded; a request leaves it when route() dispatches it, when it times
// out (429), or when its client goes away.

size_t RouterCore::queue_length() {
  queue_.drop([this](uint64_t id) { return !calls_.count(id); });
  return queue_.size();
}

void RouterCore::enqueue(const CallPtr& c) {
  queue_length();  // a client that gave up holds no place
  const double deadline = queue_deadline(config_.admission, config_.late_binding,
                                         c->held_by_late_binding, now(), config_.scrape.interval_s);
  if (!queue_.push(c->id, deadline, queue_capacity(config_.admission, config_.late_binding))) {
    return refuse(c, Refusal::kQueueFull);
  }
  c->queued = true;
  arm_queue_timer();
}

void RouterCore::pump_queue() {
  if (stopped_ || queue_.pumping()) return;
  auto call_of = [this](uint64_t id) { return calls_.at(id); };
  RouterQueue::PumpHandlers h;
  h.gone = [this](uint64_t id) { return !calls_.count(id); };
  h.route = [this, call_of](uint64_t id) {
    const CallPtr c = call_of(id);
    const RouteResult r = route(c);
    if (r != RouteResult::kAtCapacity && r != RouteResult::kSloShed && r != RouteResult::kHeld)
      c->queued = false;
    return r;
  };
  h.timed_out = [this, call_of](uint64_t id) {
    const CallPtr c = call_of(id);
    c->queued = false;
    refuse(c, Refusal::kQueueTimeout);
  };
  h.refuse = [this, call_of](uint64_t id, RouteResult result) {
    refuse(call_of(id), refusal_of(result));
  };
  queue_.pump(now(), h);
  arm_queue_timer();
}

void RouterCore::arm_queue_timer() {
  if (queue_.empty() || queue_timer_armed_ || stopped_) return;
  // Wake at the head's deadline, or sooner to re-check predictions as scrapes arrive.
  const double at = queue_.next_wake(now(), config_.scrape.interval_s) + 1e-4;
  queue_timer_armed_ = true;
  queue_timer_->arm(at, [this] {
    queue_timer_armed_ = false;
    if (!stopped_) pump_queue();
  });
}

}  // namespace eta::router
