// Admission: whether a request is dispatched now, waits in the router queue, or is refused, and
// why. This is the one place that answers "why did this request get a 429 (or 503, or 404)?":
// `admit` decides for one routing attempt, `dispose` says what becomes of a request that was
// not dispatched, and `refusal_answer` words every refusal the router makes for a client.
// Pure (no clock, no I/O): the live router (router/core/router_core.cpp) and eta cluster-sim
// (cluster_sim/simulator.cpp) call the same functions, with the same RouterQueue
// (router/core/router_queue.hpp), so shedding and queueing are simulated as they run live.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "router/core/admission_config.hpp"  // AdmissionConfig

namespace eta::router {

// How many replicas could take one request (ReplicaSet::eligibility).
struct Eligibility {
  bool any_known = false;    // some replica reported its models
  bool any_serving = false;  // some replica (even an unroutable one) serves the model
  int eligible = 0;          // routable and serving the model
  int candidates = 0;        // ... with room (max_in_flight_per_replica) and not tried yet
};

// Where one routing attempt ended.
enum class RouteResult : uint8_t {
  kDispatched,    // admitted (before the pick: go on and pick; after it: sent)
  kAtCapacity,    // the in-flight bounds are reached: queue or 429
  kSloShed,       // every candidate's predicted TTFT is over the SLO: queue or 429
  kNoReplica,     // no routable replica serves the model (or none is left to retry on): 503
  kUnknownModel,  // no replica serves the model at all: 404
  kHeld,          // late binding: every candidate is busy; wait in the router queue
};

// Before the pick, in this order. `retry`: an attempt after a failed one (the in-flight bounds
// do not apply: the request holds its place already). kDispatched: go on. admit_in_flight is the
// router's own bound (checked first: even a stored response's retrieval waits for it),
// admit_eligible the replicas' room.
RouteResult admit_in_flight(const AdmissionConfig& config, bool retry, int total_in_flight);
RouteResult admit_eligible(const Eligibility& eligibility, bool retry);
// After the pick: the TTFT objective. `best_ttft_s`: the best predicted TTFT among the pick's
// candidates (infinity when none predicts).
RouteResult admit_after_pick(const AdmissionConfig& config, bool retry, double best_ttft_s);

// What becomes of a new request before it is routed: FIFO, so while requests wait in the queue
// a newcomer queues behind them instead of overtaking them.
bool queue_first(const AdmissionConfig& config, size_t queue_length);

// What becomes of a request whose attempt did not dispatch: it waits (capacity or SLO with a
// queue; late binding's hold always) or is refused.
enum class Disposition : uint8_t { kDispatched, kQueue, kRefuse };
Disposition dispose(const AdmissionConfig& config, RouteResult result);

// Every reason the router itself refuses a client's request.
enum class Refusal : uint8_t {
  kRateLimited,   // 429: the API key's request or token rate (router/rate_limit.hpp)
  kAtCapacity,    // 429: max_in_flight / max_in_flight_per_replica, no queue
  kSloShed,       // 429: every replica predicted over ttft_slo_s, no queue
  kQueueFull,     // 429: the queue holds queue_size requests
  kQueueTimeout,  // 429: waited queue_timeout_s in the queue
  kNoReplica,     // 503: no routable replica serves the model
  kUnknownModel,  // 404: no replica serves the model (vLLM's body, openai::model_not_found)
  kShuttingDown,  // 503: SIGTERM received
};
Refusal refusal_of(RouteResult result);

struct RefusalAnswer {
  int status = 0;
  std::string type;         // the OpenAI error type ("TooManyRequestsError", ...)
  std::string message;      // one sentence for the client
  std::string_view reason;  // eta_errors_total{reason} and the access log's "error"
  int retry_after_s = 0;    // > 0: a Retry-After header
  bool rejection = false;   // counted in eta_rejections_total{reason} (admission's own 429s)
};
// `model`: the request's model. kUnknownModel's body is openai::model_not_found's (the caller
// answers with it); kRateLimited is worded by rate_limit_answer.
RefusalAnswer refusal_answer(Refusal refusal, const AdmissionConfig& config,
                             std::string_view model);
// kRateLimited: `tokens` what this request counts, `per_minute` the limit that refused it.
RefusalAnswer rate_limit_answer(bool tokens_limit, double per_minute, double request_tokens,
                                int retry_after_s);

}  // namespace eta::router
