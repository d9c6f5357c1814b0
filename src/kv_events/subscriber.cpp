#include "kv_events/subscriber.hpp"

#include <chrono>
#include <vector>
#include <zmq.hpp>

#include "kv_events/codec.hpp"
#include "kv_events/orderer.hpp"

namespace eta::kv_events {

struct Subscriber::Impl {
  zmq::context_t ctx{1};
  zmq::socket_t sub{ctx, zmq::socket_type::sub};
  zmq::socket_t dealer;
  zmq::socket_t stop_rx{ctx, zmq::socket_type::pair};
  zmq::socket_t stop_tx{ctx, zmq::socket_type::pair};
  std::thread thread;
  Orderer orderer;
  bool started = false;

  void new_dealer(const std::string& endpoint) {
    dealer = zmq::socket_t(ctx, zmq::socket_type::dealer);
    dealer.set(zmq::sockopt::linger, 0);
    dealer.connect(endpoint);
  }
};

Subscriber::Subscriber(SubscriberConfig config, std::function<void(Update&&)> sink)
    : config_(std::move(config)), sink_(std::move(sink)), impl_(std::make_unique<Impl>()) {}

Subscriber::~Subscriber() {
  stop();
}

bool Subscriber::start(std::string& error) {
  Impl& m = *impl_;
  try {
    m.sub.set(zmq::sockopt::linger, 0);
    m.sub.set(zmq::sockopt::rcvhwm, 100000);
    m.sub.set(zmq::sockopt::subscribe, config_.topic);
    m.sub.connect(config_.endpoint);
    if (!config_.replay.empty()) m.new_dealer(config_.replay);
    const std::string inproc =
        "inproc://eta-kv-sub-" + std::to_string(reinterpret_cast<uintptr_t>(this));
    m.stop_rx.bind(inproc);
    m.stop_tx.connect(inproc);
  } catch (const zmq::error_t& e) {
    error = "kv events: cannot connect to " + config_.endpoint +
            (config_.replay.empty() ? "" : " / " + config_.replay) + ": " + e.what();
    return false;
  }
  m.started = true;
  m.thread = std::thread([this] {
    Impl& m = *impl_;
    std::vector<Orderer::Message> ready;
    auto deliver = [&](std::vector<Orderer::Message>& msgs) {
      for (auto& msg : msgs) {
        Update u;
        u.seq = msg.seq;
        std::string error;
        if (!decode_batch(msg.payload, u.batch, error)) {
          stats_.decode_errors.fetch_add(1);
          continue;
        }
        stats_.messages.fetch_add(1);
        stats_.last_seq.store(msg.seq);
        sink_(std::move(u));
      }
      msgs.clear();
    };
    auto clear = [&](const char* reason) {
      Update u;
      u.kind = Update::Kind::kClear;
      u.reason = reason;
      sink_(std::move(u));
    };
    zmq::pollitem_t items[] = {{m.sub.handle(), 0, ZMQ_POLLIN, 0},
                               {m.stop_rx.handle(), 0, ZMQ_POLLIN, 0}};
    for (;;) {
      zmq::poll(items, 2, std::chrono::milliseconds(-1));
      if (items[1].revents & ZMQ_POLLIN) return;
      if (!(items[0].revents & ZMQ_POLLIN)) continue;
      // One message: topic, seq, payload (anything else is skipped whole).
      std::vector<zmq::message_t> frames;
      for (;;) {
        zmq::message_t f;
        if (!m.sub.recv(f, zmq::recv_flags::dontwait)) break;
        const bool more = f.more();
        frames.push_back(std::move(f));
        if (!more) break;
      }
      uint64_t seq = 0;
      if (frames.size() != 3 || !decode_seq(frames[1].to_string_view(), seq)) {
        stats_.decode_errors.fetch_add(1);
        continue;
      }
      const uint64_t gaps_before = m.orderer.gaps();
      const Orderer::Verdict v = m.orderer.accept(seq, frames[2].to_string(), ready);
      if (v == Orderer::Verdict::kDuplicate) stats_.duplicates.fetch_add(1);
      if (v == Orderer::Verdict::kRestart) {
        stats_.restarts.fetch_add(1);
        clear("restart");
      }
      if (m.orderer.gaps() != gaps_before) stats_.gaps.fetch_add(1);
      deliver(ready);
      if (!m.orderer.in_gap()) continue;
      // A gap: ask the replay socket from the first missing sequence number.
      if (m.dealer) {
        try {
          m.dealer.send(zmq::str_buffer(""), zmq::send_flags::sndmore);
          m.dealer.send(zmq::buffer(encode_seq(m.orderer.next())), zmq::send_flags::none);
          const auto deadline = std::chrono::steady_clock::now() +
                                std::chrono::milliseconds(config_.replay_timeout_ms);
          bool ended = false;
          while (!ended) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) break;
            zmq::pollitem_t r[] = {{m.dealer.handle(), 0, ZMQ_POLLIN, 0},
                                   {m.stop_rx.handle(), 0, ZMQ_POLLIN, 0}};
            zmq::poll(r, 2, left);
            if (r[1].revents & ZMQ_POLLIN) return;
            if (!(r[0].revents & ZMQ_POLLIN)) continue;
            std::vector<zmq::message_t> rep;
            for (;;) {
              zmq::message_t f;
              if (!m.dealer.recv(f, zmq::recv_flags::dontwait)) break;
              const bool more = f.more();
              rep.push_back(std::move(f));
              if (!more) break;
            }
            // [ "", seq, payload ]; the end marker has seq -1 and an empty payload.
            if (rep.size() != 3) continue;
            uint64_t rseq = 0;
            if (!decode_seq(rep[1].to_string_view(), rseq)) continue;
            if (rseq == ~0ull) {
              ended = true;
              break;
            }
            m.orderer.replayed(rseq, rep[2].to_string(), ready);
            deliver(ready);
          }
          if (!ended) m.new_dealer(config_.replay);  // late answers must not reach the next ask
        } catch (const zmq::error_t&) {
          m.new_dealer(config_.replay);
        }
      }
      const bool filled = m.orderer.close_gap(ready);
      if (filled) {
        stats_.gaps_filled.fetch_add(1);
      } else {
        stats_.gaps_lost.fetch_add(1);
        clear("gap");
      }
      deliver(ready);
    }
  });
  return true;
}

void Subscriber::stop() {
  if (!impl_ || !impl_->started) return;
  impl_->started = false;
  impl_->stop_tx.send(zmq::str_buffer("x"), zmq::send_flags::none);
  impl_->thread.join();
}

}  // namespace eta::kv_events
