// The ZeroMQ side of `eta vllm-sim --kv-events-config`: publishes event batches as vLLM's
// ZmqEventPublisher does (vllm/distributed/kv_events.py):
//   - a PUB socket on `endpoint`; each batch is three frames: topic, the sequence number
//     (8 bytes big-endian, from 0), the msgpack payload;
//   - the last `buffer_steps` batches are kept for the ROUTER socket on `replay_endpoint` (if
//     set): a request [client id, "", start seq (8 bytes)] is answered with
//     [id, "", seq, payload] for each kept batch from there, then [id, "", -1 (8 bytes), ""];
//   - the PUB endpoint is bound when it has '*' or '::' or is ipc:// / inproc://, otherwise
//     connected (to a subscriber that binds); the replay endpoint is always bound; with a
//     data-parallel rank the tcp ports are offset by it.
// publish() runs on the caller's thread (encode + one inproc send, never blocks); the sockets
// live on a thread of their own, which also serves replay.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "kv_events/event.hpp"

namespace eta::kv_events {

struct PublisherConfig {
  bool enable = false;  // enable_kv_cache_events (and publisher "zmq")
  std::string endpoint = "tcp://*:5557";
  std::string replay_endpoint;  // empty: no replay socket
  std::string topic;
  int buffer_steps = 10000;
  int hwm = 100000;
  int max_queue_size = 100000;
  int data_parallel_rank = 0;
  EncodeOptions encode;
  // Fault injection (eta only): every Nth batch is kept for replay but not sent live, so that
  // subscribers see a gap. 0: off.
  int drop_every = 0;
};

// Parses vLLM's --kv-events-config JSON (enable_kv_cache_events, publisher, endpoint,
// replay_endpoint, buffer_steps, hwm, max_queue_size, topic; vLLM's other keys are accepted and
// ignored). Returns false with one line in `error`. The encoding options are not part of it.
bool parse_publisher_config(std::string_view json, PublisherConfig& out, std::string& error);

// `endpoint` with its tcp port offset by `rank` (vLLM's offset_endpoint_port); others as is.
std::string offset_endpoint_port(const std::string& endpoint, int rank);
// vLLM's rule: bind when the endpoint has '*' or '::' or is ipc:// or inproc://.
bool endpoint_binds(const std::string& endpoint);

class Publisher {
 public:
  explicit Publisher(PublisherConfig config);
  ~Publisher();
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  // Binds / connects the sockets and starts the thread; false with one line in `error`.
  bool start(std::string& error);
  // Assigns the batch the next sequence number and publishes it. Thread: one producer.
  void publish(const EventBatch& batch);
  void stop();

  const PublisherConfig& config() const { return config_; }
  uint64_t published() const { return published_.load(); }

 private:
  struct Impl;
  PublisherConfig config_;
  std::unique_ptr<Impl> impl_;
  std::atomic<uint64_t> published_{0};
};

}  // namespace eta::kv_events
