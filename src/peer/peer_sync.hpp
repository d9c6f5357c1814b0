// Live peer sync (issue 13), the protocol state without sockets or clocks: what this router tells
// its peers (its own dispatches, first tokens, finishes, heartbeats, snapshots) and what it makes
// of theirs (foreign work in its ClusterState: ledger entries priced at their predicted size and
// the prompts' prefix blocks on the chosen replica — the same ClusterState::on_foreign_* calls
// cluster-sim's --peer-sync makes).
//
// Guarantees (unit-tested in tests/unit/peer_sync_test.cpp):
//   - per-origin sequence numbers: a gap is counted as lost (and a snapshot requested), a frame
//     that arrives late within 64 of the newest is applied and counted as reordered (no longer
//     lost), a duplicate or older one is counted and ignored;
//   - a peer silent for peer_timeout_s has all its entries dropped (tick());
//   - a foreign entry whose finish never arrives is dropped after entry_ttl_s;
//   - heartbeats carry the origin's in-flight count at that point of its sequence: a receiver
//     holding a different number asks for a snapshot (which replaces what it holds of that peer);
//   - a packet that does not decode is rejected whole (garbage), and changes nothing;
//   - the rate-limit charges a router admitted while its channel was down (outage_charges) reach
//     each peer once, also a peer that reconnects after it: they are sent again with every
//     snapshot of ours for a minute, and a receiver applies each (origin, outage) once.
// Single-threaded: the owner serialises calls (`eta route`: its io_context thread; libnats'
// threads only hand bytes over to it).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cluster/state.hpp"
#include "peer/wire.hpp"

namespace eta::peer {

struct PeerSyncOptions {
  double heartbeat_s = 0.5;          // a heartbeat at least this often
  double peer_timeout_s = 2.0;       // a peer silent this long is dropped with its entries
  double entry_ttl_s = 900;          // a foreign entry older than this is dropped
  double resync_interval_s = 1.0;    // at most one snapshot request per peer this often
  double snapshot_interval_s = 0.2;  // at most one snapshot of our own this often
  size_t max_block_hashes = 512;     // prefix blocks sent per dispatch (the prompt's first ones)
};

struct PeerSyncStats {
  uint64_t packets_out = 0, frames_out = 0, bytes_out = 0;
  uint64_t packets_in = 0, frames_in = 0, bytes_in = 0;
  uint64_t lost = 0;        // frames never received (sequence gaps not filled later)
  uint64_t reordered = 0;   // frames received after a later one
  uint64_t duplicates = 0;  // frames received again (or too old to place): ignored
  uint64_t garbage = 0;     // packets that did not decode: ignored
  uint64_t resync_requests = 0, snapshots_sent = 0, snapshots_applied = 0;
  uint64_t peers_expired = 0, entries_expired = 0;
  uint64_t unknown_replica = 0;         // foreign dispatches to a replica this router does not have
  uint64_t outage_charges_sent = 0;     // kOutageCharges frames (first sending and again)
  uint64_t outage_charges_applied = 0;  // peers' outages whose charges were consumed here
  uint64_t outage_charges_repeated = 0;  // ... received again: ignored
};

struct PeerInfo {
  uint64_t origin = 0;
  size_t entries = 0;     // its requests in flight, as this router knows them
  double last_heard = 0;  // the owner's clock
  uint64_t next_seq = 0;
};

class PeerSync {
 public:
  PeerSync(uint64_t self, cluster::ClusterState& state, PeerSyncOptions options = {});

  uint64_t self() const { return self_; }
  // The replica at `index` of the ClusterState has this canonical URL (call for each, and again
  // when one is removed with url ""): dispatches name replicas by replica_key(url).
  void set_replica(int index, std::string_view url);

  // This router's events (queued for the next packet).
  void dispatched(cluster::RequestId id, int replica, const cluster::RequestFeatures& f);
  void first_token(cluster::RequestId id, int tokens);
  void finished(cluster::RequestId id, int output_tokens);
  void aborted(cluster::RequestId id);
  void rate_charge(uint64_t key_hash, uint32_t requests, uint64_t tokens);
  // What this router admitted while its channel was down (RateLimiter::end_outage, hashed):
  // queued now, and again with each snapshot of ours for the next minute. Nothing if empty.
  void outage_charges(std::vector<KeyCharge> charges, double now);

  // Frames queued since the last packet, as one packet ("" if none).
  bool has_output() const { return out_count_ > 0; }
  std::string take_packet();

  // A packet from the channel (our own are ignored).
  void receive(std::string_view bytes, double now);
  // Heartbeat when due; peers and entries past their bounds dropped. Call every ~0.25 s.
  // Returns how many peers were dropped now.
  int tick(double now);
  // The channel (re)connected: our snapshot and a request for everyone's.
  void reconnected(double now);

  // A peer's rate-limit charge (key hash, requests, tokens); its outage charges come here too,
  // one call per key.
  std::function<void(uint64_t, uint32_t, uint64_t)> on_rate_charge;

  const PeerSyncStats& stats() const { return stats_; }
  std::vector<PeerInfo> peers() const;
  size_t foreign_entries() const;
  size_t own_in_flight() const { return own_.size(); }

  // The ledger id a peer's request gets here (high bit set: never one of ours).
  static cluster::RequestId foreign_id(uint32_t slot, uint64_t id) {
    return (uint64_t{1} << 63) | (uint64_t{slot & 0x7fffff} << 40) |
           (id & ((uint64_t{1} << 40) - 1));
  }

 private:
  struct Entry {
    int replica = -1;  // our index; -1: a replica we do not have
    bool started = false;
    double since = 0;
  };
  struct Origin {
    uint64_t origin = 0;
    uint32_t slot = 0;
    uint64_t next = 0;  // the seq after the newest received; 0: none yet
    uint64_t seen = 0;  // bit i: seq next-1-i was received
    double last_heard = 0;
    double last_resync = -1e300;
    std::unordered_map<uint64_t, Entry> entries;
    std::unordered_map<uint64_t, std::pair<uint64_t, double>> ended;  // id -> (seq, time)
  };

  struct Outage {  // ours, sent again with our snapshots for kOutageResendS
    uint64_t number = 0;
    double ended = 0;
    std::vector<KeyCharge> charges;
  };
  static constexpr double kOutageResendS = 60;  // a bucket holds one minute
  static constexpr size_t kMaxOutages = 8;      // flapping: the newest 8 are sent again

  void queue(const Frame& f);
  void queue_outage(const Outage& o);
  void queue_snapshot(double now);
  void request_resync(Origin& o, double now);
  void apply(Origin& o, const Frame& f, double now);
  void add_work(Origin& o, const WorkItem& w, double now);
  void drop_entry(Origin& o, uint64_t id, const Entry& e);
  void drop_all(Origin& o);
  int local_replica(uint32_t key) const;

  uint64_t self_;
  cluster::ClusterState& state_;
  PeerSyncOptions options_;
  PeerSyncStats stats_;
  std::vector<uint32_t> replica_keys_;        // by our index (0: none)
  std::unordered_map<uint32_t, int> by_key_;  // replica key -> our index
  std::unordered_map<uint64_t, Origin> origins_;
  uint32_t next_slot_ = 1;
  std::unordered_map<cluster::RequestId, WorkItem> own_;  // what our snapshot holds
  std::string out_;
  uint32_t out_count_ = 0;
  uint64_t out_first_ = 1;
  uint64_t next_seq_ = 1;
  double last_heartbeat_ = -1e300;
  double last_snapshot_ = -1e300;
  bool snapshot_wanted_ = false;
  std::vector<Outage> outages_;  // ours, newest last
  uint64_t next_outage_ = 1;
  // Peers' outages applied here: origin -> (outage number -> when). Kept apart from origins_ (a
  // peer silent through the outage expired there) and forgotten after a few minutes.
  std::unordered_map<uint64_t, std::unordered_map<uint64_t, double>> outages_applied_;
  Packet packet_;  // receive() scratch
};

}  // namespace eta::peer
