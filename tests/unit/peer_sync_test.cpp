// Live peer sync's protocol state without sockets (src/peer/): the wire format, sequence numbers
// (loss, reordering, duplicates), heartbeats and expiry, snapshots, garbage.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cluster/state.hpp"
#include "peer/peer_sync.hpp"
#include "peer/wire.hpp"
#include "policy_test_util.hpp"

namespace eta::peer {
namespace {

using cluster::ClusterState;

// A router's state with replicas u1 and u2, in the given order (routers index them differently).
struct Router {
  explicit Router(uint64_t id, bool reversed = false) : sync(id, state) {
    const std::vector<std::string> urls =
        reversed ? std::vector<std::string>{"http://u2:1", "http://u1:1"}
                 : std::vector<std::string>{"http://u1:1", "http://u2:1"};
    for (const std::string& u : urls) {
      cluster::ReplicaSpec spec;
      spec.name = u;
      spec.engine = eta::testing::config_for();
      const int i = state.add_replica(spec);
      state.set_routable(i, true);
      sync.set_replica(i, u);
    }
  }
  int index_of(const std::string& url) const {
    for (int i = 0; i < state.num_replicas(); ++i)
      if (state.replica(i).name == url) return i;
    return -1;
  }
  const cluster::LedgerSummary& on(const std::string& url) const {
    return state.ledger().summary(index_of(url));
  }
  // Dispatches request `id` (a 64-token prompt: 4 blocks) to `url`, as the router would.
  void dispatch(cluster::RequestId id, const std::string& url, std::vector<uint64_t>& hashes) {
    cluster::PreparedRequest p;
    state.prepare("m", 64, hashes, 100, false, std::nullopt, p);
    const int r = index_of(url);
    state.on_dispatch(id, r, p.features, 0);
    sync.dispatched(id, r, p.features);
  }
  ClusterState state;
  PeerSync sync;
};

std::vector<uint64_t> hashes_of(uint64_t seed) {
  return {seed, seed + 1, seed + 2, seed + 3};
}

TEST(PeerWire, RoundTripsEveryKind) {
  std::string frames;
  Frame d;
  d.kind = Kind::kDispatch;
  d.work.id = 123456789;
  d.work.replica = replica_key("http://u1:1");
  d.work.prompt_tokens = 1000;
  d.work.cached_tokens = 512;
  d.work.predicted_output = 200;
  d.work.max_tokens = 256;
  d.work.exact_output = true;
  d.work.model = "llama";
  d.work.block_hashes = {1, 2, 0xffffffffffffffffull};
  encode_frame(d, frames);
  Frame t;
  t.kind = Kind::kFirstToken;
  t.id = 7;
  t.tokens = 3;
  encode_frame(t, frames);
  Frame h;
  h.kind = Kind::kHeartbeat;
  h.in_flight = 42;
  h.interval_ms = 500;
  encode_frame(h, frames);
  Frame s;
  s.kind = Kind::kSnapshot;
  s.entries.push_back(d.work);
  s.entries[0].block_hashes.clear();
  s.entries[0].generated = 9;
  s.entries[0].max_tokens.reset();
  encode_frame(s, frames);
  Frame r;
  r.kind = Kind::kRateCharge;
  r.key_hash = 0x1234;
  r.requests = 1;
  r.charge_tokens = 5000;
  encode_frame(r, frames);
  const std::string p = encode_packet(99, 17, 5, frames);
  Packet out;
  ASSERT_TRUE(decode_packet(p, out));
  EXPECT_EQ(out.origin, 99u);
  ASSERT_EQ(out.frames.size(), 5u);
  EXPECT_EQ(out.frames[0].seq, 17u);
  EXPECT_EQ(out.frames[4].seq, 21u);
  const WorkItem& w = out.frames[0].work;
  EXPECT_EQ(w.id, 123456789u);
  EXPECT_EQ(w.prompt_tokens, 1000u);
  EXPECT_EQ(w.cached_tokens, 512u);
  EXPECT_EQ(w.predicted_output, 200u);
  EXPECT_EQ(w.max_tokens, 256u);
  EXPECT_TRUE(w.exact_output);
  EXPECT_EQ(w.model, "llama");
  EXPECT_EQ(w.block_hashes, d.work.block_hashes);
  EXPECT_EQ(out.frames[1].tokens, 3u);
  EXPECT_EQ(out.frames[2].in_flight, 42u);
  ASSERT_EQ(out.frames[3].entries.size(), 1u);
  EXPECT_EQ(out.frames[3].entries[0].generated, 9u);
  EXPECT_FALSE(out.frames[3].entries[0].max_tokens.has_value());
  EXPECT_EQ(out.frames[4].charge_tokens, 5000u);
  // Every strict prefix, and any byte appended, is rejected.
  for (size_t n = 0; n < p.size(); ++n) EXPECT_FALSE(decode_packet(p.substr(0, n), out)) << n;
  EXPECT_FALSE(decode_packet(p + "x", out));
}

TEST(PeerWire, RejectsGarbage) {
  Packet out;
  EXPECT_FALSE(decode_packet("", out));
  EXPECT_FALSE(decode_packet("hello world, this is not a packet", out));
  std::string bad = encode_packet(5, 1, 1, std::string(1, '\x63'));  // unknown kind
  EXPECT_FALSE(decode_packet(bad, out));
  EXPECT_FALSE(decode_packet(encode_packet(0, 1, 1, "\x05\x00\x00"), out));  // origin 0
  EXPECT_FALSE(decode_packet(encode_packet(5, 0, 1, "\x05\x00\x00"), out));  // seq 0
  EXPECT_TRUE(decode_packet(encode_packet(5, 1, 1, std::string("\x05\x00\x00", 3)), out));
  // A dispatch claiming more cached than prompt tokens, or 10^6 hashes it does not carry.
  Frame d;
  d.kind = Kind::kDispatch;
  d.work.prompt_tokens = 10;
  d.work.cached_tokens = 11;
  std::string f;
  encode_frame(d, f);
  EXPECT_FALSE(decode_packet(encode_packet(5, 1, 1, f), out));
}

TEST(PeerSync, PeersWorkIsForeignWorkInTheLedgerAndPrefixIndex) {
  Router a(1), b(2, /*reversed=*/true);
  std::vector<uint64_t> h = hashes_of(100);
  a.dispatch(10, "http://u1:1", h);
  b.sync.receive(a.sync.take_packet(), 0.1);
  EXPECT_EQ(b.on("http://u1:1").in_flight, 1);
  EXPECT_EQ(b.on("http://u1:1").prefilling, 1);
  EXPECT_EQ(b.on("http://u2:1").in_flight, 0);
  EXPECT_EQ(b.state.prefix_index().match(b.index_of("http://u1:1"), h), 4u);
  EXPECT_EQ(b.sync.foreign_entries(), 1u);
  a.sync.first_token(10, 2);
  b.sync.receive(a.sync.take_packet(), 0.2);
  EXPECT_EQ(b.on("http://u1:1").decoding, 1);
  a.sync.finished(10, 50);
  b.sync.receive(a.sync.take_packet(), 0.3);
  EXPECT_EQ(b.on("http://u1:1").in_flight, 0);
  EXPECT_EQ(b.sync.foreign_entries(), 0u);
  EXPECT_EQ(b.sync.stats().lost, 0u);
  // The finish taught the averages the real output size.
  EXPECT_GT(b.state.ledger().averages().output_tokens, 0);
}

TEST(PeerSync, DuplicatesAreIgnored) {
  Router a(1), b(2);
  std::vector<uint64_t> h = hashes_of(1);
  a.dispatch(10, "http://u1:1", h);
  const std::string p = a.sync.take_packet();
  b.sync.receive(p, 0.1);
  a.sync.finished(10, 5);
  b.sync.receive(a.sync.take_packet(), 0.2);
  b.sync.receive(p, 0.3);  // the dispatch again, after its finish
  EXPECT_EQ(b.on("http://u1:1").in_flight, 0);
  EXPECT_EQ(b.sync.stats().duplicates, 1u);
}

TEST(PeerSync, LossIsCountedAndRepairedBySnapshot) {
  Router a(1), b(2);
  std::vector<uint64_t> h = hashes_of(1);
  a.dispatch(10, "http://u1:1", h);
  b.sync.receive(a.sync.take_packet(), 0.1);
  a.dispatch(11, "http://u2:1", h);
  (void)a.sync.take_packet();  // lost
  a.dispatch(12, "http://u2:1", h);
  b.sync.receive(a.sync.take_packet(), 0.2);
  EXPECT_EQ(b.sync.stats().lost, 1u);
  EXPECT_EQ(b.on("http://u2:1").in_flight, 1);
  ASSERT_TRUE(b.sync.has_output());  // its resync request
  a.sync.receive(b.sync.take_packet(), 0.25);
  ASSERT_TRUE(a.sync.has_output());  // the snapshot
  b.sync.receive(a.sync.take_packet(), 0.3);
  EXPECT_EQ(b.sync.stats().snapshots_applied, 1u);
  EXPECT_EQ(b.on("http://u1:1").in_flight, 1);
  EXPECT_EQ(b.on("http://u2:1").in_flight, 2);
  EXPECT_EQ(b.sync.foreign_entries(), 3u);
}

TEST(PeerSync, ReorderedFramesAreAppliedAndNotLost) {
  Router a(1), b(2);
  std::vector<uint64_t> h = hashes_of(1);
  a.dispatch(10, "http://u1:1", h);
  const std::string p1 = a.sync.take_packet();
  a.sync.finished(10, 5);
  const std::string p2 = a.sync.take_packet();
  a.dispatch(11, "http://u2:1", h);
  const std::string p3 = a.sync.take_packet();
  b.sync.receive(p1, 0.1);
  b.sync.receive(p3, 0.2);  // p2 late
  EXPECT_EQ(b.sync.stats().lost, 1u);
  b.sync.receive(p2, 0.3);
  EXPECT_EQ(b.sync.stats().lost, 0u);
  EXPECT_EQ(b.sync.stats().reordered, 1u);
  EXPECT_EQ(b.on("http://u1:1").in_flight, 0);
  EXPECT_EQ(b.on("http://u2:1").in_flight, 1);
  // A finish overtaking its dispatch: the dispatch, arriving later, is not entered.
  Router c(3);
  c.sync.receive(p2, 0.1);
  c.sync.receive(p1, 0.2);
  EXPECT_EQ(c.on("http://u1:1").in_flight, 0);
}

TEST(PeerSync, SilentPeerIsDroppedWithinTheTimeout) {
  Router a(1), b(2);
  std::vector<uint64_t> h = hashes_of(1);
  a.dispatch(10, "http://u1:1", h);
  a.dispatch(11, "http://u2:1", h);
  b.sync.receive(a.sync.take_packet(), 1.0);
  EXPECT_EQ(b.sync.peers().size(), 1u);
  EXPECT_EQ(b.sync.tick(2.9), 0);  // 1.9 s of silence: kept (timeout 2 s)
  EXPECT_EQ(b.on("http://u1:1").in_flight, 1);
  EXPECT_EQ(b.sync.tick(3.1), 1);
  EXPECT_EQ(b.on("http://u1:1").in_flight, 0);
  EXPECT_EQ(b.on("http://u2:1").in_flight, 0);
  EXPECT_TRUE(b.sync.peers().empty());
  EXPECT_EQ(b.sync.stats().peers_expired, 1u);
}

TEST(PeerSync, AnEntryWithoutItsFinishExpires) {
  PeerSyncOptions o;
  o.entry_ttl_s = 10;
  Router a(1);
  ClusterState sb;
  cluster::ReplicaSpec spec;
  spec.name = "http://u1:1";
  spec.engine = eta::testing::config_for();
  sb.add_replica(spec);
  PeerSync b(2, sb, o);
  b.set_replica(0, "http://u1:1");
  std::vector<uint64_t> h = hashes_of(1);
  a.dispatch(10, "http://u1:1", h);
  b.receive(a.sync.take_packet(), 0);
  for (double t = 0.5; t < 12; t += 0.5) {  // the peer stays alive (heartbeats) ...
    a.sync.tick(t);
    b.receive(a.sync.take_packet(), t);
    b.tick(t);
    if (t < 10) {
      EXPECT_EQ(sb.ledger().summary(0).in_flight, 1) << t;
    }
  }
  // ... but the finish never came (and its heartbeats say 1 in flight: no snapshot removes it).
  EXPECT_EQ(sb.ledger().summary(0).in_flight, 0);
  EXPECT_EQ(b.stats().entries_expired, 1u);
  EXPECT_EQ(b.peers().size(), 1u);
}

TEST(PeerSync, HeartbeatCountMismatchAsksForASnapshot) {
  // No frame is lost, but b dropped a's entry (its TTL passed) while a still runs it: a's next
  // heartbeat says 1 in flight, b holds 0, so b asks a for its snapshot, which restores it.
  PeerSyncOptions o;
  o.entry_ttl_s = 1;
  Router a(1);
  ClusterState sb;
  cluster::ReplicaSpec spec;
  spec.name = "http://u1:1";
  spec.engine = eta::testing::config_for();
  sb.add_replica(spec);
  PeerSync b(2, sb, o);
  b.set_replica(0, "http://u1:1");
  std::vector<uint64_t> h = hashes_of(1);
  a.dispatch(10, "http://u1:1", h);
  b.receive(a.sync.take_packet(), 0);
  a.sync.tick(0.5);
  b.receive(a.sync.take_packet(), 0.5);  // heartbeat: 1 in flight, b holds 1
  EXPECT_FALSE(b.has_output());
  b.tick(1.2);  // the entry's TTL: dropped
  EXPECT_EQ(sb.ledger().summary(0).in_flight, 0);
  (void)b.take_packet();  // b's own heartbeat
  a.sync.tick(1.3);
  b.receive(a.sync.take_packet(), 1.3);
  EXPECT_EQ(b.stats().lost, 0u);
  ASSERT_TRUE(b.has_output());
  Packet p;
  ASSERT_TRUE(decode_packet(b.take_packet(), p));
  ASSERT_EQ(p.frames.size(), 1u);
  EXPECT_EQ(p.frames[0].kind, Kind::kResync);
  EXPECT_EQ(p.frames[0].target, 1u);
  a.sync.receive(encode_packet(2, p.first_seq, 1,
                               [&] {
                                 std::string f;
                                 encode_frame(p.frames[0], f);
                                 return f;
                               }()),
                 1.3);
  b.receive(a.sync.take_packet(), 1.4);  // the snapshot
  EXPECT_EQ(sb.ledger().summary(0).in_flight, 1);
}

TEST(PeerSync, GarbageAndReplaysChangeNothing) {
  Router a(1), b(2);
  std::vector<uint64_t> h = hashes_of(1);
  std::vector<std::string> history;
  for (cluster::RequestId id = 1; id <= 5; ++id) {
    a.dispatch(id, "http://u1:1", h);
    history.push_back(a.sync.take_packet());
    a.sync.finished(id, 10);
    history.push_back(a.sync.take_packet());
  }
  for (const std::string& p : history) b.sync.receive(p, 0.1);
  EXPECT_EQ(b.on("http://u1:1").in_flight, 0);
  for (const std::string& p : history) b.sync.receive(p, 0.2);  // replayed
  EXPECT_EQ(b.on("http://u1:1").in_flight, 0);
  EXPECT_EQ(b.sync.stats().duplicates, 10u);
  std::string junk = history[0];
  junk[junk.size() - 3] ^= 0x55;
  b.sync.receive(junk.substr(0, junk.size() - 2), 0.3);
  b.sync.receive("\xff\xfe garbage", 0.3);
  EXPECT_EQ(b.sync.stats().garbage, 2u);
  EXPECT_EQ(b.on("http://u1:1").in_flight, 0);
  // Our own packets (echoed by the channel) are ignored.
  Router a2(1);
  a2.dispatch(1, "http://u1:1", h);
  a.sync.receive(a2.sync.take_packet(), 0.4);
  EXPECT_TRUE(a.sync.peers().empty());
}

TEST(PeerSync, RateChargesReachTheCallback) {
  Router a(1), b(2);
  uint64_t got_key = 0, got_tokens = 0;
  uint32_t got_requests = 0;
  b.sync.on_rate_charge = [&](uint64_t k, uint32_t r, uint64_t t) {
    got_key = k;
    got_requests = r;
    got_tokens = t;
  };
  a.sync.rate_charge(77, 1, 300);
  b.sync.receive(a.sync.take_packet(), 0);
  EXPECT_EQ(got_key, 77u);
  EXPECT_EQ(got_requests, 1u);
  EXPECT_EQ(got_tokens, 300u);
}

TEST(PeerWire, OutageChargesRoundTrip) {
  Frame f;
  f.kind = Kind::kOutageCharges;
  f.outage = 3;
  f.charges = {{0x1234, 20, 2000}, {~uint64_t{0}, 1, 0}};
  std::string frames;
  encode_frame(f, frames);
  const std::string p = encode_packet(5, 1, 1, frames);
  Packet out;
  ASSERT_TRUE(decode_packet(p, out));
  ASSERT_EQ(out.frames.size(), 1u);
  EXPECT_EQ(out.frames[0].kind, Kind::kOutageCharges);
  EXPECT_EQ(out.frames[0].outage, 3u);
  EXPECT_EQ(out.frames[0].charges, f.charges);
  for (size_t n = 0; n < p.size(); ++n) EXPECT_FALSE(decode_packet(p.substr(0, n), out)) << n;
  // Outage number 0 is not one; a count larger than the bytes left is rejected.
  Frame zero = f;
  zero.outage = 0;
  frames.clear();
  encode_frame(zero, frames);
  EXPECT_FALSE(decode_packet(encode_packet(5, 1, 1, frames), out));
  const std::string huge = std::string("\x09\x01") + "\xff\xff\xff\xff\x0f";
  EXPECT_FALSE(decode_packet(encode_packet(5, 1, 1, huge), out));
}

// What a router admitted while cut off reaches every peer once: b hears it at once, c (which
// reconnects later and asks for snapshots) with a's snapshot; repeats are ignored, and after a
// minute it is no longer sent.
TEST(PeerSync, OutageChargesReachEachPeerOnce) {
  Router a(1), b(2), c(3);
  std::vector<std::pair<uint64_t, uint64_t>> at_b, at_c;  // (key, requests)
  b.sync.on_rate_charge = [&](uint64_t k, uint32_t r, uint64_t) { at_b.emplace_back(k, r); };
  c.sync.on_rate_charge = [&](uint64_t k, uint32_t r, uint64_t) { at_c.emplace_back(k, r); };
  a.sync.outage_charges({}, 10.0);  // nothing admitted: nothing sent
  EXPECT_FALSE(a.sync.has_output());
  a.sync.outage_charges({{77, 20, 2000}, {78, 1, 10}}, 10.0);
  const std::string first = a.sync.take_packet();
  b.sync.receive(first, 10.0);  // c is still disconnected: it misses this packet
  ASSERT_EQ(at_b.size(), 2u);
  EXPECT_EQ(at_b[0], (std::pair<uint64_t, uint64_t>{77, 20}));
  EXPECT_EQ(b.sync.stats().outage_charges_applied, 1u);
  // c reconnects: its snapshot and a request for everyone's.
  c.sync.reconnected(11.0);
  const std::string hello = c.sync.take_packet();
  a.sync.receive(hello, 11.0);
  b.sync.receive(hello, 11.0);
  const std::string again = a.sync.take_packet();  // a's snapshot, and its outage again
  ASSERT_FALSE(again.empty());
  c.sync.receive(again, 11.0);
  b.sync.receive(again, 11.0);
  ASSERT_EQ(at_c.size(), 2u);
  EXPECT_EQ(at_c[1], (std::pair<uint64_t, uint64_t>{78, 1}));
  EXPECT_EQ(at_b.size(), 2u);  // b had it: ignored
  EXPECT_EQ(b.sync.stats().outage_charges_repeated, 1u);
  EXPECT_EQ(a.sync.stats().outage_charges_sent, 2u);
  // b expires a (silent past the peer timeout) and hears it again: still applied once.
  b.sync.tick(20.0);
  EXPECT_TRUE(b.sync.peers().empty());
  b.sync.receive(again, 20.5);
  EXPECT_EQ(at_b.size(), 2u);
  // After a minute a's snapshots no longer carry it.
  a.sync.tick(71.0);
  (void)a.sync.take_packet();
  const uint64_t sent = a.sync.stats().outage_charges_sent;
  const uint64_t snapshots = a.sync.stats().snapshots_sent;
  c.sync.reconnected(71.0);  // another request for snapshots
  a.sync.receive(c.sync.take_packet(), 71.0);
  EXPECT_EQ(a.sync.stats().snapshots_sent, snapshots + 1);
  EXPECT_EQ(a.sync.stats().outage_charges_sent, sent);
}

}  // namespace
}  // namespace eta::peer
