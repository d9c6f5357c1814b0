// What the router's pure core needs from the world, as interfaces: a clock and timers, a way to
// send a request to a replica, and observers of what happens to requests and replicas. The live
// router implements them on Asio and its upstream pools (src/router/router_impl.hpp lists its
// parts); the core's tests implement them in virtual time (tests/core/fake_env.hpp), so every
// decision about a request — admission, queueing, retries, held-back errors, failover, drain,
// shutdown — is tested without a socket.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include "http/message.hpp"

namespace eta::cluster {
struct Decision;
}  // namespace eta::cluster

namespace eta::router {

struct Call;

// A one-shot timer. arm() replaces a pending wait; cancel() drops it (its function never runs).
class Timer {
 public:
  virtual ~Timer() = default;
  virtual void arm(double at_s, std::function<void()> fn) = 0;
  virtual void cancel() = 0;
};

// One request sent to a replica. cancel(): the upstream sees a disconnect; no handler runs after.
class UpstreamCall {
 public:
  virtual ~UpstreamCall() = default;
  virtual void cancel() = 0;
};

class Env {
 public:
  virtual ~Env() = default;
  // Seconds on the router's monotonic clock (0 at start).
  virtual double now() const = 0;
  // Seconds since the Unix epoch (records and logs only).
  virtual double unix_now() const = 0;
  // Runs `fn` soon, outside the current call chain.
  virtual void post(std::function<void()> fn) = 0;
  virtual std::unique_ptr<Timer> make_timer() = 0;
  // The worker the caller runs on (`threads`: 0 is the main thread; each worker has its own
  // client listener and upstream pools). A request stays on the worker that accepted it.
  virtual int worker() const { return 0; }
  // Sends `request` to replica `replica` (ReplicaSet index) from worker `worker` (its pools;
  // posted there when called from another thread). Handlers run later on that worker, never
  // inside this call; on_complete exactly once unless the call is canceled.
  virtual std::unique_ptr<UpstreamCall> send(int worker, int replica, http::ClientRequest request,
                                             http::ResponseHandlers handlers) = 0;
};

// What the core tells the rest of the router about requests (the decision log, the access log,
// completion records, peer sync). Metrics are updated by the core itself (RouterMetrics).
class CallObserver {
 public:
  virtual ~CallObserver() = default;
  // A routing decision: `chosen` is the replica the request goes to, -1 if it was shed.
  virtual void decided(const Call&, const cluster::Decision&, int /*chosen*/) {}
  // A rate-limited key was charged `tokens` at admission (peers charge it too).
  virtual void rate_charged(std::string_view /*key*/, uint64_t /*tokens*/) {}
  // An attempt started on c.replica (the ledger has it).
  virtual void dispatched(const Call&) {}
  // The first output tokens of a stream (`tokens` of them) reached the client.
  virtual void first_token(const Call&, int /*tokens*/) {}
  // A 2xx response ended with `output_tokens` as counted (peers learn its finish), before its
  // attempt ends.
  virtual void succeeded(const Call&, int /*output_tokens*/) {}
  // A 2xx response completed with `output_tokens` (the predictor's count).
  virtual void completed(const Call&, double /*now_s*/, int /*output_tokens*/) {}
  // An attempt ended (completed or not): peers drop it.
  virtual void attempt_ended(const Call&) {}
  // The request's answer is final (status 499: the client went away).
  virtual void finished(const Call&, int /*status*/) {}
};

// What the core tells the rest of the router about replicas.
class ReplicaObserver {
 public:
  virtual ~ReplicaObserver() = default;
  // Healthy again after being unhealthy: it probably restarted with an empty cache.
  virtual void restarted(int /*replica*/) {}
  // Turned healthy (first time or again): its model list should be fetched now.
  virtual void became_healthy(int /*replica*/) {}
  // Removed for good (its upstream pool and KV-event subscription can go).
  virtual void removed(int /*replica*/) {}
};

}  // namespace eta::router
