#include "router/kv_events.hpp"

#include <spdlog/spdlog.h>
#include <mutex>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "http/client.hpp"
#include "kv_events/subscriber.hpp"

namespace eta::router {

namespace asio = boost::asio;

KvEventsEndpoints resolve_kv_events(const ReplicaConfig& replica,
                                    const KvEventsEndpoints& pattern) {
  if (!replica.kv_events.endpoint.empty() || pattern.endpoint.empty()) return replica.kv_events;
  std::string host;
  if (auto u = http::parse_url(replica.url)) host = u->host;
  auto fill = [&](std::string s) {
    for (size_t at; (at = s.find("{host}")) != std::string::npos;) s.replace(at, 6, host);
    return s;
  };
  KvEventsEndpoints out;
  out.endpoint = fill(pattern.endpoint);
  out.replay = fill(pattern.replay);
  out.topic = pattern.topic;
  return out;
}

// What the subscriber threads' posted handlers reach; reset when the consumer goes, so that a
// handler still queued then does nothing.
struct KvEventsConsumer::Core {
  asio::io_context& io;
  cluster::ClusterState& state;
  std::function<double()> now;
  std::recursive_mutex* mu;  // the router core's (threads > 1), or null
};

struct KvEventsConsumer::Feed {
  KvEventsEndpoints endpoints;
  std::unique_ptr<kv_events::Subscriber> subscriber;
  std::shared_ptr<uint64_t> generation = std::make_shared<uint64_t>(0);
};

KvEventsConsumer::KvEventsConsumer(asio::io_context& io, cluster::ClusterState& state,
                                   std::function<double()> now, std::recursive_mutex* mu)
    : core_(std::make_shared<Core>(Core{io, state, std::move(now), mu})) {}

KvEventsConsumer::~KvEventsConsumer() {
  stop_all();
  core_.reset();
}

bool KvEventsConsumer::attach(int replica, const KvEventsEndpoints& endpoints, std::string& error) {
  if (replica < 0) return false;
  if (static_cast<size_t>(replica) >= feeds_.size())
    feeds_.resize(static_cast<size_t>(replica) + 1);
  detach(replica);
  auto feed = std::make_unique<Feed>();
  feed->endpoints = endpoints;
  kv_events::SubscriberConfig sc;
  sc.endpoint = endpoints.endpoint;
  sc.replay = endpoints.replay;
  sc.topic = endpoints.topic;
  std::weak_ptr<Core> weak = core_;
  const uint64_t gen = *feed->generation;
  std::weak_ptr<uint64_t> generation = feed->generation;
  feed->subscriber = std::make_unique<kv_events::Subscriber>(
      sc, [weak, generation, gen, replica](kv_events::Update&& u) {
        std::shared_ptr<Core> core = weak.lock();
        if (!core) return;
        asio::post(core->io, [weak, generation, gen, replica, u = std::move(u)] {
          std::unique_lock<std::recursive_mutex> lock;
          if (std::shared_ptr<Core> c = weak.lock(); c && c->mu) lock = std::unique_lock(*c->mu);
          std::shared_ptr<Core> core = weak.lock();
          std::shared_ptr<uint64_t> g = generation.lock();
          if (!core || !g || *g != gen) return;  // detached meanwhile
          prefix::KvEventIndex& index = core->state.kv_events();
          if (u.kind == kv_events::Update::Kind::kClear) {
            spdlog::info("replica {}: KV events {}: its cache knowledge is dropped",
                         core->state.replica(replica).name,
                         u.reason == "restart" ? "restarted from sequence 0"
                                               : "lost batches replay could not fill");
            index.clear(replica);
          } else {
            index.apply(replica, u.batch, core->now());
          }
        });
      });
  if (!feed->subscriber->start(error)) return false;
  core_->state.kv_events().set_active(replica, true);
  feeds_[static_cast<size_t>(replica)] = std::move(feed);
  spdlog::info("replica {}: KV events from {}{}", core_->state.replica(replica).name,
               endpoints.endpoint,
               endpoints.replay.empty() ? "" : " (replay " + endpoints.replay + ")");
  return true;
}

void KvEventsConsumer::detach(int replica) {
  if (replica < 0 || static_cast<size_t>(replica) >= feeds_.size()) return;
  std::unique_ptr<Feed>& f = feeds_[static_cast<size_t>(replica)];
  if (!f) return;
  f->subscriber->stop();
  *f->generation += 1;
  f.reset();
  core_->state.kv_events().set_active(replica, false);
  core_->state.kv_events().clear(replica);
}

void KvEventsConsumer::restart(int replica) {
  if (replica < 0 || static_cast<size_t>(replica) >= feeds_.size() ||
      !feeds_[static_cast<size_t>(replica)])
    return;
  const KvEventsEndpoints endpoints = feeds_[static_cast<size_t>(replica)]->endpoints;
  std::string error;
  if (!attach(replica, endpoints, error))
    spdlog::error("replica {}: {}", core_->state.replica(replica).name, error);
}

void KvEventsConsumer::stop_all() {
  for (auto& f : feeds_) {
    if (!f) continue;
    f->subscriber->stop();
    *f->generation += 1;
  }
  feeds_.clear();
}

KvEventsStatus KvEventsConsumer::status(int replica) const {
  KvEventsStatus s;
  if (replica >= 0 && replica < core_->state.kv_events().num_replicas())
    s.index = core_->state.kv_events().stats(replica);
  if (replica < 0 || static_cast<size_t>(replica) >= feeds_.size()) return s;
  const Feed* f = feeds_[static_cast<size_t>(replica)].get();
  if (!f) return s;
  const kv_events::SubscriberStats& st = f->subscriber->stats();
  s.enabled = true;
  s.endpoints = f->endpoints;
  s.batches = s.index.batches;
  s.last_seq = st.last_seq.load();
  s.duplicates = st.duplicates.load();
  s.gaps = st.gaps.load();
  s.gaps_filled = st.gaps_filled.load();
  s.gaps_lost = st.gaps_lost.load();
  s.restarts = st.restarts.load();
  s.decode_errors = st.decode_errors.load();
  return s;
}

}  // namespace eta::router
