// `eta route`'s side of live peer sync (issue 13; docs/architecture.md "Peer sync"): a
// peer::PeerSync (the protocol state, pure) over a peer::NatsLink (libnats), wired to the
// router's ClusterState, its metrics and its loop. Free of Asio: the router passes `post` (run a
// function on its io_context thread), and calls tick() every 250 ms from its own timer.
//
// Everything but the constructor's `post` runs on the router's thread. libnats' threads only call
// `post` with a copy of the bytes (or the new connection state); the posted functions hold a
// weak token, so none runs after this object is gone.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "cluster/state.hpp"
#include "metrics/registry.hpp"
#include "peer/peer_sync.hpp"
#include "router/config.hpp"

namespace eta::peer {
class NatsLink;
}

namespace eta::router {

class PeerLink {
 public:
  using Post = std::function<void(std::function<void()>)>;
  // `post` runs a function on the router's loop soon; `post_later` runs it there about
  // kFlushDelay later (one pending at a time): frames are batched that long into one packet.
  PeerLink(const PeerSyncConfig& config, cluster::ClusterState& state, metrics::Registry& registry,
           Post post, Post post_later, std::function<double()> now);
  static constexpr double kFlushDelayS = 0.001;
  // How long a dead connection may go unnoticed: NatsLink pings every second and gives up after
  // two unanswered pings. What was published in that time may be lost.
  static constexpr double kUnconfirmedS = 2.0;
  ~PeerLink();

  // Starts connecting (never waits for NATS). False with one line on a bad URL.
  bool start(std::string& error);
  void stop();

  void set_replica(int index, std::string_view url) { sync_.set_replica(index, url); }
  // This router's events; each queues a frame and (once per loop turn) a flush to NATS.
  void dispatched(cluster::RequestId id, int replica, const cluster::RequestFeatures& f);
  void first_token(cluster::RequestId id, int tokens);
  void finished(cluster::RequestId id, int output_tokens);
  void ended(cluster::RequestId id);  // the attempt ended without finished(): an abort
  // An admitted charge of a rate-limited key: published while connected; while not, the
  // router's RateLimiter keeps it (begin_outage) and outage_charges() sends it on reconnection.
  void rate_charge(uint64_t key_hash, uint32_t requests, uint64_t tokens);
  std::function<void(uint64_t, uint32_t, uint64_t)>& on_rate_charge() {
    return sync_.on_rate_charge;
  }
  void outage_charges(std::vector<peer::KeyCharge> charges);
  // The channel went down (false, with the routers last seen: this one and its peers) or came
  // back (true), on the router's thread; also (false, 1) from start(), not yet connected.
  std::function<void(bool connected, int routers)> on_channel;

  void tick();
  void refresh_metrics();
  std::string admin_json() const;  // GET /admin/peers
  bool connected() const { return connected_; }
  peer::PeerSync& sync() { return sync_; }

 private:
  void flush_soon();
  void flush();
  void on_state(bool connected, const std::string& detail);

  PeerSyncConfig config_;
  peer::PeerSync sync_;
  Post post_;
  Post post_later_;
  std::function<double()> now_;
  std::unique_ptr<peer::NatsLink> link_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  bool flush_posted_ = false;
  bool connected_ = false;
  bool said_down_ = false;  // "unreachable" logged once per outage
  metrics::Gauge& g_connected_;
  metrics::Gauge& g_peers_;
  metrics::Gauge& g_foreign_;
  metrics::CounterFamily& c_frames_;  // {direction, outcome}
  metrics::Counter& c_bytes_out_;
  metrics::Counter& c_bytes_in_;
  peer::PeerSyncStats last_;
  uint64_t last_dropped_ = 0;
};

// A keyed 64-bit hash of an API key for rate-limit charges between routers (the key never leaves
// the router): the first 8 bytes of SHA-256(cluster || 0 || key).
uint64_t rate_key_hash(std::string_view cluster, std::string_view key);

}  // namespace eta::router
