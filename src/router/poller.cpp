// The poller: what the router learns from its replicas by asking them, fed to the core's replica
// set (router_impl.hpp). Timers come from the core's Env (no Asio here).
#include <algorithm>
#include <cmath>

#include <spdlog/spdlog.h>

#include "router/headers.hpp"
#include "router/router_impl.hpp"
#include "util/duration.hpp"

namespace eta::router {

namespace {

constexpr uint64_t kMaxModelsBody = 4ull << 20;

}  // namespace

Poller::Poller(Router::Impl& m)
    : m_(m),
      scrape_timer_(m.env.make_timer()),
      health_timer_(m.env.make_timer()),
      models_timer_(m.env.make_timer()),
      peer_timer_(m.env.make_timer()) {}

void Poller::start() {
  for (size_t i = 0; i < m_.endpoints.size(); ++i) {
    const int index = static_cast<int>(i);
    if (m_.core->replicas().at(index).removed()) continue;
    check_health(index);
    fetch_models(index);
    scrape(index);
  }
  arm_scrape();
  arm_health();
  arm_models();
  if (m_.peer) arm_peer();
}

void Poller::stop() {
  scrape_timer_->cancel();
  health_timer_->cancel();
  models_timer_->cancel();
  peer_timer_->cancel();
  dns_alive_.reset();
  discovery_.reset();  // joins its thread
}

void Poller::probe(int replica) {
  check_health(replica);
  fetch_models(replica);
}

void Poller::arm_scrape() {
  scrape_timer_->arm(m_.env.now() + m_.config().scrape.interval_s, [this] {
    if (m_.stopped) return;
    m_.core->replicas().for_each_live([this](const ReplicaRecord& r) { scrape(r.index); });
    arm_scrape();
  });
}

void Poller::arm_health() {
  health_timer_->arm(m_.env.now() + m_.config().health.interval_s, [this] {
    if (m_.stopped) return;
    m_.core->replicas().for_each_live([this](const ReplicaRecord& r) { check_health(r.index); });
    arm_health();
  });
}

void Poller::arm_models() {
  models_timer_->arm(m_.env.now() + m_.config().models.refresh_interval_s, [this] {
    if (m_.stopped) return;
    m_.core->replicas().for_each_live([this](const ReplicaRecord& r) {
      if (r.health.healthy()) fetch_models(r.index);
    });
    arm_models();
  });
}

// Peer sync (issue 13): PeerLink does the work; the poller ticks it.
void Poller::arm_peer() {
  peer_timer_->arm(m_.env.now() + 0.25, [this] {
    if (m_.stopped || !m_.peer) return;
    m_.peer->tick();
    arm_peer();
  });
}

void Poller::poll_get(int replica, std::string target, size_t max_bytes, double timeout_s,
                      http::UpstreamPool::GetCallback cb) {
  http::ClientRequest req;
  req.method = "GET";
  req.target = std::move(target);
  req.total_timeout = ms(timeout_s);
  req.max_body_bytes = max_bytes;
  set_upstream_authorization(req.headers, false,
                             m_.core->upstream_key(m_.core->replicas().at(replica)));
  m_.env.get(replica, std::move(req), std::move(cb));
}

void Poller::scrape(int index) {
  Endpoint& ep = m_.endpoints[static_cast<size_t>(index)];
  if (ep.scrape_busy || !ep.pool) return;
  ep.scrape_busy = true;
  poll_get(index, "/metrics", m_.config().scrape.max_body_bytes, m_.config().scrape.timeout_s,
           [this, index](int status, std::string body, const http::ClientResult& result) {
             m_.endpoints[static_cast<size_t>(index)].scrape_busy = false;
             if (!m_.core->replicas().at(index).removed()) on_scrape(index, status, body, result);
           });
}

void Poller::on_scrape(int index, int status, const std::string& body,
                       const http::ClientResult& result) {
  ReplicaRecord& r = m_.core->replicas().at(index);
  Endpoint& ep = m_.endpoints[static_cast<size_t>(index)];
  const double t = m_.env.now();
  std::string error;
  cluster::ScrapeSnapshot snap;
  bool ok = result.ok() && status == 200;
  std::string_view reason = "status";
  if (!ok) {
    error = result.ok() ? "status " + std::to_string(status) : result.detail;
    if (result.ok() && (status == 401 || status == 403)) {
      reason = "unauthorized";
      m_.core->unauthorized(index, "/metrics", status);
    } else if (!result.ok()) {
      reason = result.error == http::ClientError::kTimeout ? "timeout" : "connect";
    }
  } else if (!metrics::parse_text(body, ep.parsed, error)) {
    ok = false;
    reason = "parse";
  } else if (!snapshot_from_metrics(ep.parsed, t, ep.counters, snap, error)) {
    // No vllm: series: a replica run with --disable-log-stats. It is routed on the ledger
    // alone (an invalid snapshot, as policies expect of a failed one).
    ok = false;
    reason = "no_vllm_metrics";
  }
  if (ok) {
    ++r.scrapes;
    r.last_scrape_ok = t;
    m_.metrics.scrapes.with({r.url()}).inc();
    m_.core->state().update_scrape(index, snap);
    return;
  }
  ++r.scrape_failures;
  m_.metrics.scrape_failures.with({r.url(), std::string(reason)}).inc();
  m_.core->state().update_scrape(index, cluster::ScrapeSnapshot{});
  // Nothing listens there any more: that is a failed health check too.
  if (result.error == http::ClientError::kConnectRefused ||
      result.error == http::ClientError::kConnectFailed) {
    m_.core->health_result(index, false, "scrape: " + error);
  }
  spdlog::debug("scrape {} failed: {}", r.url(), error);
}

void Poller::check_health(int index) {
  Endpoint& ep = m_.endpoints[static_cast<size_t>(index)];
  if (ep.health_busy || !ep.pool) return;
  ep.health_busy = true;
  poll_get(index, "/health", 64 * 1024, m_.config().health.timeout_s,
           [this, index](int status, std::string, const http::ClientResult& result) {
             m_.endpoints[static_cast<size_t>(index)].health_busy = false;
             if (m_.core->replicas().at(index).removed()) return;
             const bool ok = result.ok() && status == 200;
             m_.core->health_result(index, ok,
                                    ok            ? ""
                                    : result.ok() ? "health: status " + std::to_string(status)
                                                  : "health: " + result.detail);
             check_ready();
           });
}

void Poller::fetch_models(int index) {
  Endpoint& ep = m_.endpoints[static_cast<size_t>(index)];
  if (ep.models_busy || !ep.pool) return;
  ep.models_busy = true;
  poll_get(index, "/v1/models", kMaxModelsBody, std::max(m_.config().health.timeout_s, 1.0),
           [this, index](int status, std::string body, const http::ClientResult& result) {
             m_.endpoints[static_cast<size_t>(index)].models_busy = false;
             if (m_.core->replicas().at(index).removed()) return;
             on_models(index, status, body, result);
             check_ready();
           });
}

void Poller::on_models(int index, int status, const std::string& body,
                       const http::ClientResult& result) {
  ReplicaRecord& r = m_.core->replicas().at(index);
  ModelList list;
  std::string error;
  if (result.ok() && (status == 401 || status == 403)) {
    m_.metrics.scrape_failures.with({r.url(), "unauthorized"}).inc();
    ++r.scrape_failures;
    m_.core->unauthorized(index, "/v1/models", status);
  } else if (result.ok() && status == 200 && parse_models_body(body, list, error)) {
    m_.core->models_result(index, std::move(list));
  } else {
    spdlog::debug("models {} failed: {}", r.url(),
                  !error.empty() ? error
                  : result.ok()  ? "status " + std::to_string(status)
                                 : result.detail);
  }
}

void Poller::check_ready() {
  if (m_.ready) return;
  bool probed = true;
  m_.core->replicas().for_each_live([&](const ReplicaRecord& r) {
    // Probed: its health is known and, if healthy, its models too.
    if (!r.health.known() || (r.health.healthy() && !r.models_known && !r.unauthorized))
      probed = false;
  });
  if (!probed) return;
  m_.ready = true;
  m_.ready_timer->cancel();
  if (m_.on_ready) {
    auto f = std::move(m_.on_ready);
    m_.on_ready = nullptr;
    f();
  }
}

// ---------------------------------------------------------------------------------------------
// Replicas from DNS (issue 13): every A/AAAA record of a replica_dns name.

void Poller::start_discovery() {
  const RouterConfig& config = m_.config();
  if (config.replica_dns.empty()) return;
  dns_owned_.assign(config.replica_dns.size(), {});
  dns_failing_.assign(config.replica_dns.size(), false);
  std::weak_ptr<int> token = dns_alive_;
  discovery_ = std::make_unique<DnsDiscovery>(
      config.replica_dns, config.dns_server,
      [this, token](size_t i, std::vector<std::string> urls, std::string error) {
        m_.env.post([this, token, i, urls = std::move(urls), error = std::move(error)] {
          if (!token.expired() && !m_.stopped) apply_dns(i, urls, error);
        });
      });
  discovery_->start();
}

bool Poller::from_dns(const std::string& url) const {
  return std::any_of(dns_owned_.begin(), dns_owned_.end(),
                     [&](const std::set<std::string>& o) { return o.count(url) > 0; });
}

// New records become replicas (probed at once); vanished ones are drained then removed, as
// POST /admin/replicas/remove does. A failed lookup changes nothing.
void Poller::apply_dns(size_t i, const std::vector<std::string>& urls, const std::string& error) {
  const ReplicaDnsConfig& d = m_.config().replica_dns[i];
  if (!error.empty()) {
    if (!dns_failing_[i]) spdlog::warn("replica_dns {}: {}; keeping its replicas", d.name, error);
    dns_failing_[i] = true;
    return;
  }
  dns_failing_[i] = false;
  std::set<std::string>& owned = dns_owned_[i];
  const std::set<std::string> wanted(urls.begin(), urls.end());
  for (const std::string& url : wanted) {
    if (owned.count(url) || m_.find_replica(url)) continue;
    ReplicaConfig rc;
    rc.url = url;
    rc.gpu = d.gpu;
    rc.arch = d.arch;
    std::string e;
    if (!m_.add_replica(rc, e)) {
      spdlog::error("replica_dns {}: {}: {}", d.name, url, e);
      continue;
    }
    spdlog::info("replica_dns {}: record {} appeared", d.name, url);
    owned.insert(url);
  }
  for (auto it = owned.begin(); it != owned.end();) {
    if (wanted.count(*it)) {
      ++it;
      continue;
    }
    if (ReplicaRecord* r = m_.find_replica(*it)) {
      spdlog::info("replica_dns {}: record {} vanished: draining", d.name, *it);
      m_.core->remove(r->index, false);
    }
    it = owned.erase(it);
  }
}

}  // namespace eta::router
