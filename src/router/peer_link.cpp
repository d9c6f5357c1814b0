#include "router/peer_link.hpp"

#include <openssl/sha.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <random>

#include "peer/nats_link.hpp"

namespace eta::router {

namespace {

uint64_t random_origin() {
  std::random_device rd;
  uint64_t v = 0;
  while (v == 0) v = (uint64_t{rd()} << 32) ^ rd();
  return v;
}

peer::PeerSyncOptions options_of(const PeerSyncConfig& c) {
  peer::PeerSyncOptions o;
  o.heartbeat_s = c.heartbeat_s;
  o.peer_timeout_s = c.peer_timeout_s;
  o.entry_ttl_s = c.entry_ttl_s;
  return o;
}

}  // namespace

uint64_t rate_key_hash(std::string_view cluster, std::string_view key) {
  std::string in(cluster);
  in.push_back('\0');
  in.append(key);
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(in.data()), in.size(), md);
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | md[i];
  return v;
}

PeerLink::PeerLink(const PeerSyncConfig& config, cluster::ClusterState& state,
                   metrics::Registry& registry, Post post, Post post_later,
                   std::function<double()> now)
    : config_(config),
      sync_(random_origin(), state, options_of(config)),
      post_(std::move(post)),
      post_later_(std::move(post_later)),
      now_(std::move(now)),
      g_connected_(registry
                       .gauge("eta_peer_sync_connected",
                              "1 while the peer-sync channel (NATS) is connected, else 0")
                       .with()),
      g_peers_(
          registry.gauge("eta_peer_sync_peers", "peer routers heard within the timeout").with()),
      g_foreign_(registry
                     .gauge("eta_peer_sync_foreign_requests",
                            "peers' requests in flight, as this router prices them")
                     .with()),
      c_frames_(registry.counter("eta_peer_sync_events",
                                 "peer-sync frames and packets by event: frames_out, frames_in, "
                                 "lost, reordered, duplicate, garbage_packets, dropped_packets, "
                                 "resync_requests, snapshots_sent, snapshots_applied, "
                                 "peers_expired, entries_expired, unknown_replica, "
                                 "outage_charges_sent, outage_charges_applied, "
                                 "outage_charges_repeated",
                                 {"event"})),
      c_bytes_out_(
          registry.counter("eta_peer_sync_bytes_sent", "peer-sync packet bytes published").with()),
      c_bytes_in_(
          registry.counter("eta_peer_sync_bytes_received", "peer-sync packet bytes received")
              .with()) {
  g_connected_.set(0);
}

PeerLink::~PeerLink() {
  stop();
}

bool PeerLink::start(std::string& error) {
  std::weak_ptr<int> token = alive_;
  peer::NatsLink::Callbacks cb;
  cb.on_message = [this, token, post = post_](std::string bytes) {
    post([this, token, bytes = std::move(bytes)] {
      if (token.expired()) return;
      sync_.receive(bytes, now_());
      if (sync_.has_output()) flush_soon();
    });
  };
  cb.on_state = [this, token, post = post_](bool connected, std::string detail) {
    post([this, token, connected, detail = std::move(detail)] {
      if (!token.expired()) on_state(connected, detail);
    });
  };
  link_ =
      std::make_unique<peer::NatsLink>(config_.url, "eta.peer." + config_.cluster, std::move(cb));
  if (!link_->start(error)) {
    link_.reset();
    return false;
  }
  spdlog::info("peer sync: router {:016x}, cluster '{}', NATS {}", sync_.self(), config_.cluster,
               config_.url);
  if (on_channel) on_channel(false, 1);  // not connected yet: rate charges are kept until then
  return true;
}

void PeerLink::stop() {
  if (link_) flush();  // frames still batched (finishes of the last requests) go out first
  alive_.reset();
  link_.reset();  // sends what is queued, joins the sender, closes the connection
}

void PeerLink::on_state(bool connected, const std::string& detail) {
  if (connected) {
    if (connected_) return;
    connected_ = true;
    g_connected_.set(1);
    spdlog::info("peer sync: connected to NATS {}", config_.url);
    said_down_ = false;
    sync_.reconnected(now_());
    if (on_channel) on_channel(true, 1 + static_cast<int>(sync_.peers().size()));
    flush_soon();
    return;
  }
  const bool was_connected = connected_;
  connected_ = false;
  g_connected_.set(0);
  // The routers last seen (peers expire peer_timeout_s after their last packet, later).
  if (was_connected && on_channel) on_channel(false, 1 + static_cast<int>(sync_.peers().size()));
  if (said_down_) return;  // once per outage (and once while the first connection is pending)
  said_down_ = true;
  spdlog::warn(
      "peer sync: NATS {} unreachable ({}); routing on this router's ledger and scrapes, "
      "reconnecting",
      config_.url, detail);
}

void PeerLink::flush_soon() {
  if (flush_posted_) return;
  flush_posted_ = true;
  std::weak_ptr<int> token = alive_;
  // About 1 ms later: the frames of every request dispatched, started or finished meanwhile go
  // as one packet (one NATS message, one wake-up of each receiver) instead of one each.
  post_later_([this, token] {
    if (token.expired()) return;
    flush_posted_ = false;
    flush();
  });
}

void PeerLink::flush() {
  if (!sync_.has_output()) return;
  std::string packet = sync_.take_packet();
  if (link_) link_->publish(std::move(packet));
}

void PeerLink::dispatched(cluster::RequestId id, int replica, const cluster::RequestFeatures& f) {
  sync_.dispatched(id, replica, f);
  flush_soon();
}

void PeerLink::first_token(cluster::RequestId id, int tokens) {
  sync_.first_token(id, tokens);
  flush_soon();
}

void PeerLink::finished(cluster::RequestId id, int output_tokens) {
  sync_.finished(id, output_tokens);
  flush_soon();
}

void PeerLink::ended(cluster::RequestId id) {
  sync_.aborted(id);
  if (sync_.has_output()) flush_soon();
}

void PeerLink::rate_charge(uint64_t key_hash, uint32_t requests, uint64_t tokens) {
  if (!connected_) return;  // the packet would be dropped: outage_charges() tells it later
  sync_.rate_charge(key_hash, requests, tokens);
  flush_soon();
}

void PeerLink::outage_charges(std::vector<peer::KeyCharge> charges) {
  if (charges.empty()) return;
  spdlog::info(
      "peer sync: telling the peers the rate-limit charges of {} key(s) admitted while "
      "NATS was unreachable",
      charges.size());
  sync_.outage_charges(std::move(charges), now_());
  flush_soon();
}

void PeerLink::tick() {
  const int dropped = sync_.tick(now_());
  if (dropped > 0)
    spdlog::warn("peer sync: {} peer router(s) silent for {} s: their requests dropped", dropped,
                 config_.peer_timeout_s);
  if (sync_.has_output()) flush_soon();
}

void PeerLink::refresh_metrics() {
  const peer::PeerSyncStats& s = sync_.stats();
  auto bump = [&](const char* event, uint64_t now, uint64_t before) {
    metrics::Counter& c = c_frames_.with({event});
    if (now > before) c.inc(static_cast<double>(now - before));
  };
  bump("frames_out", s.frames_out, last_.frames_out);
  bump("frames_in", s.frames_in, last_.frames_in);
  // lost can shrink (a late frame fills a gap): the counter shows the gaps seen so far.
  bump("lost", s.lost, last_.lost);
  bump("reordered", s.reordered, last_.reordered);
  bump("duplicate", s.duplicates, last_.duplicates);
  bump("garbage_packets", s.garbage, last_.garbage);
  bump("resync_requests", s.resync_requests, last_.resync_requests);
  bump("snapshots_sent", s.snapshots_sent, last_.snapshots_sent);
  bump("snapshots_applied", s.snapshots_applied, last_.snapshots_applied);
  bump("peers_expired", s.peers_expired, last_.peers_expired);
  bump("entries_expired", s.entries_expired, last_.entries_expired);
  bump("unknown_replica", s.unknown_replica, last_.unknown_replica);
  bump("outage_charges_sent", s.outage_charges_sent, last_.outage_charges_sent);
  bump("outage_charges_applied", s.outage_charges_applied, last_.outage_charges_applied);
  bump("outage_charges_repeated", s.outage_charges_repeated, last_.outage_charges_repeated);
  const uint64_t dropped = link_ ? link_->stats().dropped : 0;
  bump("dropped_packets", dropped, last_dropped_);
  last_dropped_ = std::max(dropped, last_dropped_);
  if (s.bytes_out > last_.bytes_out)
    c_bytes_out_.inc(static_cast<double>(s.bytes_out - last_.bytes_out));
  if (s.bytes_in > last_.bytes_in)
    c_bytes_in_.inc(static_cast<double>(s.bytes_in - last_.bytes_in));
  peer::PeerSyncStats next = s;
  next.lost = std::max(s.lost, last_.lost);
  last_ = next;
  g_peers_.set(static_cast<double>(sync_.peers().size()));
  g_foreign_.set(static_cast<double>(sync_.foreign_entries()));
}

std::string PeerLink::admin_json() const {
  namespace json = boost::json;
  const peer::PeerSyncStats& s = sync_.stats();
  json::object o;
  o["router"] = fmt::format("{:016x}", sync_.self());
  o["cluster"] = config_.cluster;
  o["url"] = config_.url;
  o["connected"] = connected_;
  o["own_in_flight"] = sync_.own_in_flight();
  o["foreign_in_flight"] = sync_.foreign_entries();
  json::array peers;
  const double t = now_();
  for (const peer::PeerInfo& p : sync_.peers()) {
    json::object po;
    po["router"] = fmt::format("{:016x}", p.origin);
    po["in_flight"] = p.entries;
    po["last_heard_s_ago"] = t - p.last_heard;
    po["next_seq"] = p.next_seq;
    peers.push_back(std::move(po));
  }
  o["peers"] = std::move(peers);
  json::object st;
  st["packets_out"] = s.packets_out;
  st["frames_out"] = s.frames_out;
  st["bytes_out"] = s.bytes_out;
  st["packets_in"] = s.packets_in;
  st["frames_in"] = s.frames_in;
  st["bytes_in"] = s.bytes_in;
  st["lost"] = s.lost;
  st["reordered"] = s.reordered;
  st["duplicates"] = s.duplicates;
  st["garbage"] = s.garbage;
  st["resync_requests"] = s.resync_requests;
  st["snapshots_sent"] = s.snapshots_sent;
  st["snapshots_applied"] = s.snapshots_applied;
  st["peers_expired"] = s.peers_expired;
  st["entries_expired"] = s.entries_expired;
  st["unknown_replica"] = s.unknown_replica;
  st["outage_charges_sent"] = s.outage_charges_sent;
  st["outage_charges_applied"] = s.outage_charges_applied;
  st["outage_charges_repeated"] = s.outage_charges_repeated;
  st["dropped_packets"] = link_ ? link_->stats().dropped : 0;
  o["stats"] = std::move(st);
  return json::serialize(o);
}

}  // namespace eta::router
