// session: consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam 2018) on the
// request's session key hash. Each replica owns `virtual_nodes` points on a 64-bit ring (points
// hashed from the replica's *name*, so every router builds the same ring); a session goes to
// the first replica clockwise from its hash whose in-flight count (router ledger) is below
// ceil(load_factor x (total in flight + 1) / routable replicas). When its home replica is over
// that bound the session spills to the next one on the ring, and comes back when the home has
// room. Requests without a session key go to the least loaded replica.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "policy/common.hpp"

namespace eta::policy {
namespace {

uint64_t fnv1a(std::string_view s, uint64_t h = 0xcbf29ce484222325ull) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

class Session final : public Policy {
 public:
  Session(int virtual_nodes, double load_factor)
      : virtual_nodes_(virtual_nodes), load_factor_(load_factor) {}

  std::string_view name() const override { return "session"; }
  Reads reads() const override { return {.prefix = false, .speed = false, .progress = false}; }

  void pick_into(const RequestFeatures& request, const ClusterView& view, Rng& rng,
                 Decision& out) override {
    reset(out);
    MinPicker least;
    double total = 0;
    int routable = 0;
    for (const ReplicaView& r : view.replicas) {
      if (!r.routable) continue;
      add_candidate(out, r.index, r.in_flight());
      least.offer(r.in_flight(), r.index, rng);
      total += r.in_flight();
      ++routable;
    }
    if (routable == 0) {
      out.reason = "no routable replica";
      return;
    }
    if (!request.session_hash) {
      out.replica = least.index();
      out.reason = "session: no key, least-request";
      return;
    }
    rebuild_if_needed(view);
    const double bound = std::ceil(load_factor_ * (total + 1) / routable);
    const uint64_t key = mix(*request.session_hash);
    auto it = std::lower_bound(ring_.begin(), ring_.end(), Point{key, 0},
                               [](const Point& a, const Point& b) { return a.hash < b.hash; });
    const ReplicaView* home = nullptr;
    for (size_t k = 0; k < ring_.size(); ++k, ++it) {
      if (it == ring_.end()) it = ring_.begin();
      const ReplicaView& r = view.replicas[it->position];
      if (!r.routable) continue;
      if (!home) home = &r;
      if (r.in_flight() < bound) {
        out.replica = r.index;
        out.reason = &r == home ? "session: home"
                                : "session: home " + std::string(home->name) + " over bound";
        return;
      }
    }
    out.replica = least.index();  // unreachable: someone is always below the bound
    out.reason = "session: all over bound, least-request";
  }

 private:
  struct Point {
    uint64_t hash;
    uint32_t position;  // in view.replicas
  };

  void rebuild_if_needed(const ClusterView& view) {
    uint64_t fp = mix(view.topology_version ^ (view.replicas.size() << 32));
    if (view.topology_version == 0) {
      // The owner does not version its topology: fingerprint it cheaply (index, name length,
      // first and last 8 bytes of the name), not by hashing every name on every pick.
      for (const ReplicaView& r : view.replicas) {
        uint64_t head = 0, tail = 0;
        const size_t n = std::min<size_t>(8, r.name.size());
        if (n > 0) {
          std::memcpy(&head, r.name.data(), n);
          std::memcpy(&tail, r.name.data() + r.name.size() - n, n);
        }
        fp = mix(fp ^ head ^ (tail * 31) ^ (r.name.size() << 40) ^ static_cast<uint64_t>(r.index));
      }
    }
    if (fp == fingerprint_ && !ring_.empty()) return;
    fingerprint_ = fp;
    ring_.clear();
    for (size_t i = 0; i < view.replicas.size(); ++i) {
      const ReplicaView& r = view.replicas[i];
      const int nodes =
          r.weight > 0 ? std::max(1, static_cast<int>(std::lround(virtual_nodes_ * r.weight))) : 0;
      const uint64_t base = fnv1a(r.name);
      for (int v = 0; v < nodes; ++v)
        ring_.push_back(
            Point{mix(base ^ mix(static_cast<uint64_t>(v) + 1)), static_cast<uint32_t>(i)});
    }
    std::sort(ring_.begin(), ring_.end(), [](const Point& a, const Point& b) {
      return a.hash != b.hash ? a.hash < b.hash : a.position < b.position;
    });
  }

  int virtual_nodes_;
  double load_factor_;
  uint64_t fingerprint_ = 0;
  std::vector<Point> ring_;
};

}  // namespace

std::unique_ptr<Policy> make_session(ParamReader& p) {
  const int vnodes = p.integer("virtual_nodes", 100, 1, 10000);
  const double load_factor = p.number("load_factor", 1.25, 1.0, 100.0);
  return std::make_unique<Session>(vnodes, load_factor);
}

}  // namespace eta::policy
