#include "peer/nats_link.hpp"

#include <nats/nats.h>

#include <algorithm>
#include <chrono>

namespace eta::peer {

namespace {

constexpr size_t kMaxQueuedBytes = 8u << 20;

void on_msg(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  static_cast<NatsLink*>(closure)->handle_message(natsMsg_GetData(msg), natsMsg_GetDataLength(msg));
  natsMsg_Destroy(msg);
}
void on_connected(natsConnection*, void* closure) {
  static_cast<NatsLink*>(closure)->handle_state(true);
}
void on_disconnected(natsConnection*, void* closure) {
  static_cast<NatsLink*>(closure)->handle_state(false);
}
int64_t reconnect_delay(natsConnection*, int attempts, void*) {
  return std::min<int64_t>(2000, int64_t{100} << std::min(attempts, 5));
}

}  // namespace

NatsLink::NatsLink(std::string url, std::string subject, Callbacks callbacks)
    : url_(std::move(url)), subject_(std::move(subject)), callbacks_(std::move(callbacks)) {}

NatsLink::~NatsLink() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (sender_.joinable()) sender_.join();
  if (sub_) natsSubscription_Destroy(sub_);
  if (conn_) {
    natsConnection_Close(conn_);
    natsConnection_Destroy(conn_);
  }
  if (opts_) natsOptions_Destroy(opts_);
}

bool NatsLink::start(std::string& error) {
  auto check = [&](natsStatus s, const char* what) {
    if (s == NATS_OK) return true;
    error = std::string("peer_sync: ") + what + ": " + natsStatus_GetText(s);
    return false;
  };
  if (!check(natsOptions_Create(&opts_), "options")) return false;
  if (!check(natsOptions_SetURL(opts_, url_.c_str()), "url") ||
      !check(natsOptions_SetNoEcho(opts_, true), "no echo") ||
      !check(natsOptions_SetMaxReconnect(opts_, -1), "reconnect") ||
      !check(natsOptions_SetCustomReconnectDelay(opts_, reconnect_delay, nullptr), "backoff") ||
      !check(natsOptions_SetReconnectBufSize(opts_, 0), "reconnect buffer") ||
      !check(natsOptions_SetTimeout(opts_, 1000), "timeout") ||
      !check(natsOptions_SetPingInterval(opts_, 1000), "ping") ||
      !check(natsOptions_SetMaxPingsOut(opts_, 2), "pings") ||
      !check(natsOptions_SetDisconnectedCB(opts_, on_disconnected, this), "callback") ||
      !check(natsOptions_SetReconnectedCB(opts_, on_connected, this), "callback") ||
      !check(natsOptions_SetRetryOnFailedConnect(opts_, true, on_connected, this), "retry"))
    return false;
  sender_ = std::thread([this] { run(); });
  return true;
}

void NatsLink::handle_message(const char* data, int size) {
  if (callbacks_.on_message && size >= 0) callbacks_.on_message(std::string(data, size));
}

void NatsLink::handle_state(bool connected) {
  connected_.store(connected);
  if (callbacks_.on_state) callbacks_.on_state(connected, connected ? "" : "connection lost");
}

void NatsLink::publish(std::string bytes) {
  {
    std::lock_guard lock(mu_);
    if (!connected_.load() || queued_bytes_ + bytes.size() > kMaxQueuedBytes) {
      stats_.dropped++;
      return;
    }
    queued_bytes_ += bytes.size();
    queue_.push_back(std::move(bytes));
  }
  cv_.notify_one();
}

NatsLinkStats NatsLink::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void NatsLink::run() {
  // The first connection: NATS_OK, or NATS_NOT_YET_CONNECTED while libnats keeps trying (then
  // on_connected runs when it succeeds).
  natsConnection* conn = nullptr;
  const natsStatus s = natsConnection_Connect(&conn, opts_);
  if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
    if (callbacks_.on_state)
      callbacks_.on_state(false, std::string("connect: ") + natsStatus_GetText(s));
    return;
  }
  natsSubscription* sub = nullptr;
  natsConnection_Subscribe(&sub, conn, subject_.c_str(), on_msg, this);
  {
    std::lock_guard lock(mu_);
    conn_ = conn;
    sub_ = sub;
  }
  if (s == NATS_OK) {
    handle_state(true);
  } else if (callbacks_.on_state) {
    callbacks_.on_state(false, "not yet connected");
  }
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) {  // stopping, everything queued sent: make sure it left
      lock.unlock();
      if (connected_.load()) natsConnection_FlushTimeout(conn, 500);
      return;
    }
    std::string msg = std::move(queue_.front());
    queue_.pop_front();
    queued_bytes_ -= msg.size();
    lock.unlock();
    const natsStatus p =
        natsConnection_Publish(conn, subject_.c_str(), msg.data(), static_cast<int>(msg.size()));
    lock.lock();
    if (p == NATS_OK) {
      stats_.published++;
    } else {
      stats_.publish_errors++;
    }
  }
}

}  // namespace eta::peer
