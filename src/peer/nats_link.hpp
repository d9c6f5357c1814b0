// The peer-sync channel over NATS (libnats, the C client): one subject per cluster,
// `eta.peer.<cluster>`, every router publishing and subscribed (no echo of its own messages).
//
// Threads: libnats runs its own (connection reader, callbacks); this class adds one sender thread
// that connects (so a slow or unreachable server never delays the owner) and publishes what
// publish() queued. Every callback (`on_message`, `on_connected`) runs on one of those threads:
// the owner must hand it over to its own loop (eta route: asio::post onto its io_context) and
// never touch its state there. publish() only appends to a bounded queue under a mutex: it never
// blocks on the network, and while disconnected (or when the queue is full) it drops the message
// and counts it — the receivers see the gap in the sequence and ask for a snapshot, and
// reconnected() sends one.
//
// Reconnection: forever, with backoff 100 ms doubling to 2 s (natsOptions_SetCustomReconnectDelay),
// both for the first connection and after a loss.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

struct __natsConnection;
struct __natsSubscription;
struct __natsOptions;

namespace eta::peer {

struct NatsLinkStats {
  uint64_t published = 0;
  uint64_t dropped = 0;  // not sent: disconnected or the queue was full
  uint64_t publish_errors = 0;
};

class NatsLink {
 public:
  struct Callbacks {
    std::function<void(std::string bytes)> on_message;                 // a libnats thread
    std::function<void(bool connected, std::string detail)> on_state;  // a libnats thread
  };

  NatsLink(std::string url, std::string subject, Callbacks callbacks);
  ~NatsLink();  // closes the connection and joins the sender
  NatsLink(const NatsLink&) = delete;
  NatsLink& operator=(const NatsLink&) = delete;

  // Starts the sender thread (which connects). False with one line if the options are invalid
  // (e.g. a malformed URL).
  bool start(std::string& error);
  // Thread-safe, never blocks on the network.
  void publish(std::string bytes);
  bool connected() const { return connected_.load(); }
  NatsLinkStats stats() const;

  // libnats callbacks (public for the C trampolines).
  void handle_message(const char* data, int size);
  void handle_state(bool connected);

 private:
  void run();

  std::string url_, subject_;
  Callbacks callbacks_;
  __natsOptions* opts_ = nullptr;
  __natsConnection* conn_ = nullptr;
  __natsSubscription* sub_ = nullptr;
  std::thread sender_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  size_t queued_bytes_ = 0;
  bool stopping_ = false;
  std::atomic<bool> connected_{false};
  NatsLinkStats stats_;
};

}  // namespace eta::peer
