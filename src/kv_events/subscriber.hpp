// A consumer of one publisher's KV-cache events (one thread per subscriber): a SUB socket
// connected to the publisher's endpoint and, when a replay endpoint is known, a DEALER socket
// that asks the publisher's ROUTER socket to fill gaps. Messages are ordered and de-duplicated
// by sequence number (Orderer), decoded (decode_batch) and handed to `sink` on the subscriber's
// thread, in order:
//   kBatch  a decoded batch;
//   kClear  forget what was known of this publisher: it restarted (sequence 0 again) or a gap
//           could not be filled (no replay socket, or it no longer holds the batches).
// The sink must be quick (the router posts each update to its io_context).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "kv_events/event.hpp"

namespace eta::kv_events {

struct SubscriberConfig {
  std::string endpoint;  // tcp://host:5557
  std::string replay;    // tcp://host:5558; empty: none
  std::string topic;     // subscription prefix; empty: all
  int replay_timeout_ms = 1000;
};

struct Update {
  enum class Kind { kBatch, kClear };
  Kind kind = Kind::kBatch;
  uint64_t seq = 0;
  EventBatch batch;
  std::string reason;  // kClear: "restart" or "gap"
};

struct SubscriberStats {
  std::atomic<uint64_t> messages{0};  // batches delivered
  std::atomic<uint64_t> duplicates{0};
  std::atomic<uint64_t> gaps{0};
  std::atomic<uint64_t> gaps_filled{0};
  std::atomic<uint64_t> gaps_lost{0};
  std::atomic<uint64_t> restarts{0};
  std::atomic<uint64_t> decode_errors{0};
  std::atomic<uint64_t> last_seq{0};
};

class Subscriber {
 public:
  Subscriber(SubscriberConfig config, std::function<void(Update&&)> sink);
  ~Subscriber();
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  // Connects (ZeroMQ connects in the background: a publisher not yet up is no error) and starts
  // the thread; false with one line in `error` for a malformed endpoint.
  bool start(std::string& error);
  void stop();
  const SubscriberConfig& config() const { return config_; }
  const SubscriberStats& stats() const { return stats_; }

 private:
  struct Impl;
  SubscriberConfig config_;
  std::function<void(Update&&)> sink_;
  std::unique_ptr<Impl> impl_;
  SubscriberStats stats_;
};

}  // namespace eta::kv_events
