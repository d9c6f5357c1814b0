#include "kv_events/publisher.hpp"

#include <boost/json.hpp>
#include <deque>
#include <utility>
#include <zmq.hpp>

#include "kv_events/codec.hpp"

namespace eta::kv_events {

namespace json = boost::json;

bool parse_publisher_config(std::string_view text, PublisherConfig& out, std::string& error) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) {
    error = "--kv-events-config is not a JSON object";
    return false;
  }
  PublisherConfig c = out;
  std::string publisher = "zmq";
  for (const auto& member : v.as_object()) {
    // Named references, not a structured binding: clang 14 cannot capture bindings in lambdas.
    const std::string_view key = member.key();
    const json::value& value = member.value();
    auto str = [&](std::string& dst) {
      if (!value.is_string()) {
        error = "--kv-events-config: " + std::string(key) + " must be a string";
        return false;
      }
      dst = std::string(value.as_string());
      return true;
    };
    auto positive = [&](int& dst) {
      if (!value.is_int64() || value.as_int64() <= 0 || value.as_int64() > (1 << 30)) {
        error = "--kv-events-config: " + std::string(key) + " must be a positive integer";
        return false;
      }
      dst = static_cast<int>(value.as_int64());
      return true;
    };
    bool ok = true;
    if (key == "enable_kv_cache_events") {
      if (!value.is_bool()) {
        error = "--kv-events-config: enable_kv_cache_events must be true or false";
        return false;
      }
      c.enable = value.as_bool();
    } else if (key == "publisher") {
      if (value.is_null()) continue;
      ok = str(publisher);
    } else if (key == "endpoint") {
      ok = str(c.endpoint);
    } else if (key == "replay_endpoint") {
      if (value.is_null())
        c.replay_endpoint.clear();
      else
        ok = str(c.replay_endpoint);
    } else if (key == "topic") {
      ok = str(c.topic);
    } else if (key == "buffer_steps") {
      ok = positive(c.buffer_steps);
    } else if (key == "hwm") {
      ok = positive(c.hwm);
    } else if (key == "max_queue_size") {
      ok = positive(c.max_queue_size);
    }  // vLLM's other keys (e.g. enable_kv_cache_events' companions) are not ours to refuse
    if (!ok) return false;
  }
  if (publisher != "zmq" && publisher != "null") {
    error = "--kv-events-config: publisher must be \"zmq\" or \"null\" (got \"" + publisher + "\")";
    return false;
  }
  if (publisher == "null") c.enable = false;
  if (c.endpoint.find("://") == std::string::npos) {
    error = "--kv-events-config: endpoint must be a ZeroMQ address such as tcp://*:5557";
    return false;
  }
  if (!c.replay_endpoint.empty() && c.replay_endpoint.find("://") == std::string::npos) {
    error = "--kv-events-config: replay_endpoint must be a ZeroMQ address such as tcp://*:5558";
    return false;
  }
  out = c;
  return true;
}

std::string offset_endpoint_port(const std::string& endpoint, int rank) {
  if (rank == 0 || endpoint.rfind("tcp://", 0) != 0) return endpoint;
  const size_t colon = endpoint.rfind(':');
  if (colon == std::string::npos || colon < 6) return endpoint;
  const std::string port = endpoint.substr(colon + 1);
  if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos) return endpoint;
  return endpoint.substr(0, colon + 1) + std::to_string(std::stol(port) + rank);
}

bool endpoint_binds(const std::string& e) {
  return e.find('*') != std::string::npos || e.find("::") != std::string::npos ||
         e.rfind("ipc://", 0) == 0 || e.rfind("inproc://", 0) == 0;
}

struct Publisher::Impl {
  zmq::context_t ctx{1};
  zmq::socket_t pub{ctx, zmq::socket_type::pub};
  zmq::socket_t replay;
  zmq::socket_t tx{ctx, zmq::socket_type::pair};  // the producer's end
  zmq::socket_t rx{ctx, zmq::socket_type::pair};  // the thread's end
  std::thread thread;
  std::deque<std::pair<uint64_t, std::string>> buffer;
  uint64_t next_seq = 0;
  std::string scratch;
  bool started = false;

  void run(const PublisherConfig& c, std::atomic<uint64_t>& published) {
    const std::string end_seq(8, '\xff');  // -1 as a signed 8-byte integer
    std::vector<zmq::pollitem_t> items{{rx.handle(), 0, ZMQ_POLLIN, 0}};
    if (replay) items.push_back({replay.handle(), 0, ZMQ_POLLIN, 0});
    for (;;) {
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(-1));
      if (items[0].revents & ZMQ_POLLIN) {
        zmq::message_t m;
        while (rx.recv(m, zmq::recv_flags::dontwait)) {
          if (m.size() == 0) return;  // stop()
          const uint64_t seq = next_seq++;
          std::string payload(static_cast<const char*>(m.data()), m.size());
          const bool drop =
              c.drop_every > 0 && (seq + 1) % static_cast<uint64_t>(c.drop_every) == 0;
          if (!drop) {
            pub.send(zmq::buffer(c.topic), zmq::send_flags::sndmore);
            pub.send(zmq::buffer(encode_seq(seq)), zmq::send_flags::sndmore);
            pub.send(zmq::buffer(payload), zmq::send_flags::dontwait);
          }
          published.store(seq + 1);
          if (replay) {
            buffer.emplace_back(seq, std::move(payload));
            while (buffer.size() > static_cast<size_t>(c.buffer_steps)) buffer.pop_front();
          }
        }
      }
      if (items.size() > 1 && (items[1].revents & ZMQ_POLLIN)) {
        std::vector<zmq::message_t> frames;
        for (;;) {
          zmq::message_t f;
          if (!replay.recv(f, zmq::recv_flags::dontwait)) break;
          const bool more = f.more();
          frames.push_back(std::move(f));
          if (!more) {
            serve_replay(frames, end_seq);
            frames.clear();
          }
        }
      }
    }
  }

  void serve_replay(std::vector<zmq::message_t>& frames, const std::string& end_seq) {
    if (frames.size() != 3) return;  // vLLM: "Invalid replay request"
    uint64_t start = 0;
    if (!decode_seq(frames[2].to_string_view(), start)) return;
    const std::string id = frames[0].to_string();
    for (const auto& [seq, payload] : buffer) {
      if (seq < start) continue;
      replay.send(zmq::buffer(id), zmq::send_flags::sndmore);
      replay.send(zmq::str_buffer(""), zmq::send_flags::sndmore);
      replay.send(zmq::buffer(encode_seq(seq)), zmq::send_flags::sndmore);
      replay.send(zmq::buffer(payload), zmq::send_flags::none);
    }
    replay.send(zmq::buffer(id), zmq::send_flags::sndmore);
    replay.send(zmq::str_buffer(""), zmq::send_flags::sndmore);
    replay.send(zmq::buffer(end_seq), zmq::send_flags::sndmore);
    replay.send(zmq::str_buffer(""), zmq::send_flags::none);
  }
};

Publisher::Publisher(PublisherConfig config)
    : config_(std::move(config)), impl_(std::make_unique<Impl>()) {}

Publisher::~Publisher() {
  stop();
}

bool Publisher::start(std::string& error) {
  Impl& m = *impl_;
  const std::string endpoint = offset_endpoint_port(config_.endpoint, config_.data_parallel_rank);
  const std::string replay_endpoint =
      offset_endpoint_port(config_.replay_endpoint, config_.data_parallel_rank);
  try {
    m.pub.set(zmq::sockopt::sndhwm, config_.hwm);
    m.pub.set(zmq::sockopt::linger, 0);
    if (endpoint_binds(endpoint))
      m.pub.bind(endpoint);
    else
      m.pub.connect(endpoint);
    if (!replay_endpoint.empty()) {
      m.replay = zmq::socket_t(m.ctx, zmq::socket_type::router);
      m.replay.set(zmq::sockopt::linger, 0);
      m.replay.bind(replay_endpoint);  // vLLM always binds the replay socket
    }
    const std::string inproc =
        "inproc://eta-kv-events-" + std::to_string(reinterpret_cast<uintptr_t>(this));
    m.rx.set(zmq::sockopt::rcvhwm, config_.max_queue_size);
    m.tx.set(zmq::sockopt::sndhwm, config_.max_queue_size);
    m.rx.bind(inproc);
    m.tx.connect(inproc);
  } catch (const zmq::error_t& e) {
    error = "kv events: cannot open " + endpoint +
            (replay_endpoint.empty() ? "" : " / " + replay_endpoint) + ": " + e.what();
    return false;
  }
  m.started = true;
  m.thread = std::thread([this] { impl_->run(config_, published_); });
  return true;
}

void Publisher::publish(const EventBatch& batch) {
  Impl& m = *impl_;
  if (!m.started) return;
  EventBatch b = batch;
  b.data_parallel_rank = config_.data_parallel_rank;
  m.scratch.clear();
  encode_batch(b, config_.encode, m.scratch);
  // Never blocks the engine: past max_queue_size batches are dropped (vLLM drops too).
  (void)m.tx.send(zmq::buffer(m.scratch), zmq::send_flags::dontwait);
}

void Publisher::stop() {
  if (!impl_ || !impl_->started) return;
  impl_->started = false;
  impl_->tx.send(zmq::message_t(), zmq::send_flags::none);
  impl_->thread.join();
}

}  // namespace eta::kv_events
