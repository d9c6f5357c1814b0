#include "peer/peer_sync.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>

namespace eta::peer {

PeerSync::PeerSync(uint64_t self, cluster::ClusterState& state, PeerSyncOptions options)
    : self_(self), state_(state), options_(options) {}

void PeerSync::set_replica(int index, std::string_view url) {
  if (index < 0) return;
  if (replica_keys_.size() <= static_cast<size_t>(index)) replica_keys_.resize(index + 1, 0);
  uint32_t& key = replica_keys_[static_cast<size_t>(index)];
  if (key != 0) {
    auto it = by_key_.find(key);
    if (it != by_key_.end() && it->second == index) by_key_.erase(it);
  }
  key = url.empty() ? 0 : replica_key(url);
  if (key != 0) by_key_[key] = index;
}

int PeerSync::local_replica(uint32_t key) const {
  auto it = by_key_.find(key);
  return it == by_key_.end() ? -1 : it->second;
}

// ---------------------------------------------------------------------------------------------
// Outgoing

void PeerSync::queue(const Frame& f) {
  if (out_count_ == 0) out_first_ = next_seq_;
  encode_frame(f, out_);
  ++out_count_;
  ++next_seq_;
}

std::string PeerSync::take_packet() {
  if (out_count_ == 0) return {};
  std::string p = encode_packet(self_, out_first_, out_count_, out_);
  stats_.packets_out++;
  stats_.frames_out += out_count_;
  stats_.bytes_out += p.size();
  out_.clear();
  out_count_ = 0;
  return p;
}

void PeerSync::dispatched(cluster::RequestId id, int replica, const cluster::RequestFeatures& f) {
  if (replica < 0 || static_cast<size_t>(replica) >= replica_keys_.size()) return;
  Frame fr;
  fr.kind = Kind::kDispatch;
  WorkItem& w = fr.work;
  w.id = id;
  w.replica = replica_keys_[static_cast<size_t>(replica)];
  w.prompt_tokens = static_cast<uint32_t>(std::max(0, f.prompt_tokens));
  w.cached_tokens = static_cast<uint32_t>(std::max(0, f.cached_tokens_on(replica)));
  w.predicted_output = static_cast<uint32_t>(f.output_tokens());
  if (f.max_tokens && *f.max_tokens >= 0) w.max_tokens = static_cast<uint32_t>(*f.max_tokens);
  w.exact_output = f.ignore_eos && f.max_tokens.has_value();
  w.model = std::string(f.model.substr(0, 255));
  const size_t n = std::min(f.block_hashes.size(), options_.max_block_hashes);
  w.block_hashes.assign(f.block_hashes.begin(), f.block_hashes.begin() + static_cast<long>(n));
  queue(fr);
  w.block_hashes.clear();
  own_[id] = std::move(w);
}

void PeerSync::first_token(cluster::RequestId id, int tokens) {
  auto it = own_.find(id);
  if (it == own_.end() || it->second.generated > 0) return;
  it->second.generated = static_cast<uint32_t>(std::max(1, tokens));
  Frame f;
  f.kind = Kind::kFirstToken;
  f.id = id;
  f.tokens = it->second.generated;
  queue(f);
}

void PeerSync::finished(cluster::RequestId id, int output_tokens) {
  if (own_.erase(id) == 0) return;
  Frame f;
  f.kind = Kind::kFinish;
  f.id = id;
  f.tokens = static_cast<uint32_t>(std::max(0, output_tokens));
  queue(f);
}

void PeerSync::aborted(cluster::RequestId id) {
  if (own_.erase(id) == 0) return;
  Frame f;
  f.kind = Kind::kAbort;
  f.id = id;
  queue(f);
}

void PeerSync::rate_charge(uint64_t key_hash, uint32_t requests, uint64_t tokens) {
  Frame f;
  f.kind = Kind::kRateCharge;
  f.key_hash = key_hash;
  f.requests = requests;
  f.charge_tokens = tokens;
  queue(f);
}

void PeerSync::outage_charges(std::vector<KeyCharge> charges, double now) {
  if (charges.empty()) return;
  Outage o;
  o.number = next_outage_++;
  o.ended = now;
  o.charges = std::move(charges);
  queue_outage(o);
  outages_.push_back(std::move(o));
  if (outages_.size() > kMaxOutages) outages_.erase(outages_.begin());
}

void PeerSync::queue_outage(const Outage& o) {
  Frame f;
  f.kind = Kind::kOutageCharges;
  f.outage = o.number;
  f.charges = o.charges;
  queue(f);
  stats_.outage_charges_sent++;
}

void PeerSync::queue_snapshot(double now) {
  Frame f;
  f.kind = Kind::kSnapshot;
  f.entries.reserve(own_.size());
  for (const auto& [id, w] : own_) f.entries.push_back(w);
  queue(f);
  last_snapshot_ = now;
  snapshot_wanted_ = false;
  stats_.snapshots_sent++;
  // A peer asking for our snapshot may have missed our last outages' charges (it reconnected
  // after we sent them): again, for a minute; who has them ignores them.
  std::erase_if(outages_, [&](const Outage& o) { return now - o.ended > kOutageResendS; });
  for (const Outage& o : outages_) queue_outage(o);
}

void PeerSync::request_resync(Origin& o, double now) {
  if (now - o.last_resync < options_.resync_interval_s) return;
  o.last_resync = now;
  Frame f;
  f.kind = Kind::kResync;
  f.target = o.origin;
  queue(f);
  stats_.resync_requests++;
}

void PeerSync::reconnected(double now) {
  queue_snapshot(now);
  Frame f;
  f.kind = Kind::kResync;
  f.target = 0;
  queue(f);
  stats_.resync_requests++;
}

// ---------------------------------------------------------------------------------------------
// Incoming

void PeerSync::receive(std::string_view bytes, double now) {
  stats_.bytes_in += bytes.size();
  if (!decode_packet(bytes, packet_)) {
    stats_.garbage++;
    return;
  }
  if (packet_.origin == self_) return;
  stats_.packets_in++;
  auto [it, fresh] = origins_.try_emplace(packet_.origin);
  Origin& o = it->second;
  if (fresh) {
    o.origin = packet_.origin;
    o.slot = next_slot_++;
  }
  o.last_heard = now;
  for (const Frame& f : packet_.frames) {
    stats_.frames_in++;
    const uint64_t seq = f.seq;
    if (o.next == 0) {  // first contact: unless this is its very first frame, we missed its past
      o.next = seq + 1;
      o.seen = 1;
      if (seq != 1 && f.kind != Kind::kSnapshot) request_resync(o, now);
    } else if (seq >= o.next) {
      const uint64_t gap = seq - o.next;
      if (gap > 0) {
        stats_.lost += gap;
        request_resync(o, now);
      }
      o.seen = gap + 1 >= 64 ? 1 : (o.seen << (gap + 1)) | 1;
      o.next = seq + 1;
    } else {
      const uint64_t back = o.next - 1 - seq;
      if (back >= 64 || (o.seen >> back) & 1) {
        stats_.duplicates++;
        continue;
      }
      o.seen |= uint64_t{1} << back;
      stats_.reordered++;
      if (stats_.lost > 0) stats_.lost--;
    }
    apply(o, f, now);
  }
}

void PeerSync::add_work(Origin& o, const WorkItem& w, double now) {
  Entry e;
  e.replica = local_replica(w.replica);
  e.since = now;
  if (e.replica < 0) {
    stats_.unknown_replica++;
  } else {
    cluster::DispatchInfo info;
    info.prompt_tokens = static_cast<int>(w.prompt_tokens);
    info.cached_tokens = static_cast<int>(std::min(w.cached_tokens, w.prompt_tokens));
    info.predicted_output_tokens = static_cast<int>(std::max<uint32_t>(1, w.predicted_output));
    if (w.max_tokens)
      info.max_tokens = static_cast<int>(std::min<uint32_t>(*w.max_tokens, 1u << 30));
    info.exact_output = w.exact_output;
    const cluster::RequestId fid = foreign_id(o.slot, w.id);
    state_.on_foreign_dispatch(fid, e.replica, info, w.model, now, w.block_hashes);
    if (w.generated > 0) {
      const cluster::RequestId ids[1] = {fid};
      state_.on_foreign_tokens(ids, now);
      e.started = true;
    }
  }
  o.entries[w.id] = e;
}

void PeerSync::drop_entry(Origin& o, uint64_t id, const Entry& e) {
  if (e.replica >= 0) state_.on_foreign_abort(foreign_id(o.slot, id));
}

void PeerSync::drop_all(Origin& o) {
  for (const auto& [id, e] : o.entries) drop_entry(o, id, e);
  o.entries.clear();
  o.ended.clear();
}

void PeerSync::apply(Origin& o, const Frame& f, double now) {
  switch (f.kind) {
    case Kind::kDispatch: {
      if (auto t = o.ended.find(f.work.id); t != o.ended.end()) {
        if (t->second.first > f.seq) return;  // it ended already (frames reordered)
        o.ended.erase(t);
      }
      if (auto old = o.entries.find(f.work.id); old != o.entries.end()) {
        drop_entry(o, old->first, old->second);
        o.entries.erase(old);
      }
      add_work(o, f.work, now);
      return;
    }
    case Kind::kFirstToken: {
      auto it = o.entries.find(f.id);
      if (it == o.entries.end() || it->second.started) return;
      it->second.started = true;
      if (it->second.replica >= 0) {
        const cluster::RequestId ids[1] = {foreign_id(o.slot, f.id)};
        state_.on_foreign_tokens(ids, now);
      }
      return;
    }
    case Kind::kFinish:
    case Kind::kAbort: {
      auto it = o.entries.find(f.id);
      if (it == o.entries.end()) {
        o.ended[f.id] = {f.seq, now};  // its dispatch may still come (reordered)
        return;
      }
      if (it->second.replica >= 0) {
        const cluster::RequestId fid = foreign_id(o.slot, f.id);
        if (f.kind == Kind::kFinish) {
          state_.on_foreign_finish(fid, static_cast<int>(f.tokens), now);
        } else {
          state_.on_foreign_abort(fid);
        }
      }
      o.entries.erase(it);
      return;
    }
    case Kind::kHeartbeat:
      if (o.entries.size() != f.in_flight) request_resync(o, now);
      return;
    case Kind::kSnapshot:
      drop_all(o);
      for (const WorkItem& w : f.entries) add_work(o, w, now);
      stats_.snapshots_applied++;
      return;
    case Kind::kResync:
      if (f.target == 0 || f.target == self_) snapshot_wanted_ = true;
      if (snapshot_wanted_ && now - last_snapshot_ >= options_.snapshot_interval_s)
        queue_snapshot(now);
      return;
    case Kind::kRateCharge:
      if (on_rate_charge) on_rate_charge(f.key_hash, f.requests, f.charge_tokens);
      return;
    case Kind::kOutageCharges: {
      auto [it, fresh] = outages_applied_[o.origin].try_emplace(f.outage, now);
      if (!fresh) {
        stats_.outage_charges_repeated++;
        return;
      }
      stats_.outage_charges_applied++;
      if (!on_rate_charge) return;
      for (const KeyCharge& c : f.charges)
        on_rate_charge(c.key_hash,
                       static_cast<uint32_t>(std::min<uint64_t>(c.requests, UINT32_MAX)), c.tokens);
      return;
    }
  }
}

int PeerSync::tick(double now) {
  if (now - last_heartbeat_ >= options_.heartbeat_s) {
    Frame f;
    f.kind = Kind::kHeartbeat;
    f.in_flight = static_cast<uint32_t>(own_.size());
    f.interval_ms = static_cast<uint32_t>(std::lround(options_.heartbeat_s * 1e3));
    queue(f);
    last_heartbeat_ = now;
  }
  if (snapshot_wanted_ && now - last_snapshot_ >= options_.snapshot_interval_s) queue_snapshot(now);
  int dropped = 0;
  for (auto it = origins_.begin(); it != origins_.end();) {
    Origin& o = it->second;
    if (now - o.last_heard > options_.peer_timeout_s) {
      drop_all(o);
      it = origins_.erase(it);
      stats_.peers_expired++;
      ++dropped;
      continue;
    }
    for (auto e = o.entries.begin(); e != o.entries.end();) {
      if (now - e->second.since > options_.entry_ttl_s) {
        drop_entry(o, e->first, e->second);
        e = o.entries.erase(e);
        stats_.entries_expired++;
      } else {
        ++e;
      }
    }
    std::erase_if(o.ended, [&](const auto& kv) { return now - kv.second.second > 30; });
    ++it;
  }
  // Forget the peers' outages we applied well after their sender stops sending them again.
  for (auto it = outages_applied_.begin(); it != outages_applied_.end();) {
    std::erase_if(it->second, [&](const auto& kv) { return now - kv.second > 5 * kOutageResendS; });
    it = it->second.empty() ? outages_applied_.erase(it) : std::next(it);
  }
  return dropped;
}

std::vector<PeerInfo> PeerSync::peers() const {
  std::vector<PeerInfo> out;
  for (const auto& [origin, o] : origins_)
    out.push_back({origin, o.entries.size(), o.last_heard, o.next});
  std::sort(out.begin(), out.end(),
            [](const PeerInfo& a, const PeerInfo& b) { return a.origin < b.origin; });
  return out;
}

size_t PeerSync::foreign_entries() const {
  size_t n = 0;
  for (const auto& [origin, o] : origins_) n += o.entries.size();
  return n;
}

}  // namespace eta::peer
