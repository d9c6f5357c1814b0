// The core's observers (router_impl.hpp): what happens to requests goes to the decision log,
// the access log, the completion records and peer sync; what happens to replicas to the poller,
// the KV-event subscriptions and the upstream pools.
#include <cmath>
#include <limits>

#include "router/router_impl.hpp"

namespace eta::router {

void RouterObserver::decided(const Call& c, const cluster::Decision& d, int chosen) {
  DecisionRecord* rec = m_.decisions.next();
  if (!rec) return;
  const ReplicaSet& replicas = m_.core->replicas();
  rec->unix_time_s = m_.env.unix_now();
  rec->request_id = c.id;
  rec->attempt = chosen >= 0 ? c.attempt : c.attempt + 1;
  rec->policy = m_.config().policy.name;
  rec->model = c.info.model;
  rec->prompt_tokens = c.prepared.features.prompt_tokens;
  rec->cached_tokens = chosen >= 0 ? c.prepared.features.cached_tokens_on(chosen) : 0;
  rec->predicted_output_tokens = c.prepared.features.output_tokens();
  rec->chosen = chosen >= 0 ? replicas.at(chosen).url() : "";
  rec->prefix_source = chosen < 0                                  ? ""
                       : m_.core->state().kv_events().live(chosen) ? "kv_events"
                                                                   : "router_index";
  rec->prompt_tokens_source = to_string(c.tokens_source);
  rec->tokenize_s = c.tokenize_s;
  rec->reason = d.reason;
  rec->decision_s = c.decision_s;
  rec->candidates.resize(d.candidates.size());
  for (size_t i = 0; i < d.candidates.size(); ++i) {
    const cluster::Candidate& cand = d.candidates[i];
    CandidateRecord& cr = rec->candidates[i];
    cr.replica = replicas.at(cand.replica).url();
    cr.ttft_s = cand.ttft_s;
    cr.e2e_s = cand.e2e_s;
    cr.score = cand.score;
  }
}

void RouterObserver::rate_charged(std::string_view key, uint64_t tokens) {
  if (m_.peer) m_.peer->rate_charge(rate_key_hash(m_.config().peer_sync.cluster, key), 1, tokens);
}

void RouterObserver::dispatched(const Call& c) {
  if (m_.peer) m_.peer->dispatched(c.id, c.replica, c.prepared.features);
}

void RouterObserver::first_token(const Call& c, int tokens) {
  if (m_.peer) m_.peer->first_token(c.id, tokens);
}

void RouterObserver::succeeded(const Call& c, int output_tokens) {
  if (m_.peer) m_.peer->finished(c.id, output_tokens);
}

void RouterObserver::completed(const Call& c, double now_s, int output_tokens) {
  m_.admin.record_completion(c, now_s, output_tokens);
}

void RouterObserver::attempt_ended(const Call& c) {
  if (m_.peer) m_.peer->ended(c.id);  // an abort unless succeeded() said finished first
}

void RouterObserver::finished(const Call& c, int status) {
  if (!m_.access_log) return;
  auto opt_ms = [](double s) -> std::optional<double> {
    if (!(s >= 0) || !std::isfinite(s)) return std::nullopt;
    return s * 1e3;
  };
  const double t = m_.env.now();
  AccessRecord r;
  r.unix_time_s = m_.env.unix_now() - (t - c.arrival);
  r.request_id = c.id;
  if (c.replica >= 0) r.replica = m_.core->replicas().at(c.replica).url();
  r.policy = m_.config().policy.name;
  r.model = c.info.model.empty() ? std::string_view(c.req.model) : c.info.model;
  r.prompt_tokens = c.prepared.features.prompt_tokens;
  r.output_tokens = c.output_tokens;
  r.predicted_ttft_ms = opt_ms(c.predicted_ttft_s);
  r.ttft_ms = opt_ms(c.ttft_s);
  r.predicted_e2e_ms = opt_ms(c.predicted_e2e_s);
  r.e2e_ms = opt_ms(c.e2e_s);
  if (c.replica >= 0 && c.dispatch >= 0) r.dispatch_ms = (c.dispatch - c.arrival) * 1e3;
  r.status = status;
  r.retries = std::max(0, c.attempt - 1);  // attempts after the first (not failed attempts)
  r.stream = c.req.stream;
  r.error = c.error;  // cleared when a retry succeeded: the client saw no error
  m_.access_log->write(r);
}

void RouterObserver::restarted(int replica) {
  m_.kv_events->restart(replica);
  m_.endpoints[static_cast<size_t>(replica)].counters = ScrapeCounters{};
}

void RouterObserver::became_healthy(int replica) {
  m_.poller.fetch_models(replica);
}

void RouterObserver::removed(int replica) {
  m_.kv_events->detach(replica);
  if (m_.peer) m_.peer->set_replica(replica, "");
  m_.env.release_pools(replica);  // later, each on its worker
}

}  // namespace eta::router
