// The admin listener (router_impl.hpp): its token, the replica reports and their changes (add,
// drain, remove), the decision log, peers, and the dashboard with its stream. What a change does
// is the core's (RouterCore::drain / remove, ReplicaSet's lifecycle); this file reads requests
// and writes answers.
#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "predict/completion_model.hpp"
#include "router/headers.hpp"
#include "router/router_impl.hpp"

namespace eta::router {

namespace {

constexpr std::string_view kAdminCookie = "eta_admin_token";

http::Response json_response(int status, std::string body) {
  http::Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

http::Response bad(std::string message) {
  return http::error_response(400, "BadRequestError", std::move(message));
}

}  // namespace

AdminApi::AdminApi(Router::Impl& m) : m_(m), dashboard_timer_(m.env.make_timer()) {}

// The admin token comes as "Authorization: Bearer" (API clients) or, for a browser, which cannot
// send that header with a page load or an EventSource, as the HttpOnly cookie that
// `GET /dashboard?token=...` sets (then redirecting to /dashboard, so the token leaves the URL).
bool AdminApi::authorized(const http::ExchangePtr& e) {
  const std::string& token = m_.config().admin.token;
  if (token.empty()) return true;
  const http::Request& req = e->request();
  if (same_secret(bearer_token(req.header("authorization")), token) ||
      same_secret(cookie_value(req.header("cookie"), kAdminCookie), token)) {
    return true;
  }
  if (req.method == "GET" && req.path() == "/dashboard" &&
      same_secret(query_value(req.query(), "token"), token)) {
    http::Response r;
    r.status = 303;
    r.content_type = "text/plain";
    r.headers.emplace_back("Location", "/dashboard");
    r.headers.emplace_back("Set-Cookie", std::string(kAdminCookie) + "=" + token +
                                             "; Path=/; HttpOnly; SameSite=Strict");
    e->respond(std::move(r));
    return false;
  }
  http::Response r =
      http::error_response(401, "UnauthorizedError", "Missing or invalid admin token.");
  r.headers.emplace_back("WWW-Authenticate", "Bearer");
  e->respond(std::move(r));
  return false;
}

ReplicaReport AdminApi::report(const ReplicaRecord& r) {
  const double t = m_.env.now();
  return report(r, m_.core->state().view(t), t);
}

ReplicaReport AdminApi::report(const ReplicaRecord& r, const cluster::ClusterView& view, double t) {
  cluster::ClusterState& state = m_.core->state();
  ReplicaReport out;
  const cluster::ReplicaView& v = state.replica(r.index);
  out.url = r.url();
  out.weight = r.config.weight;
  out.gpu = r.config.gpu;
  out.arch = r.config.arch;
  out.healthy = r.health.healthy();
  out.health_known = r.health.known();
  out.routable = r.routable();
  out.draining = r.lifecycle == Lifecycle::kDraining;
  out.removing = r.gone();
  out.consecutive_failures = r.health.consecutive_failures();
  out.last_error = r.last_error;
  out.unroutable_reason = m_.core->replicas().unroutable_reason(r);
  out.models_known = r.models_known;
  out.models = r.models.ids;
  out.time_scale = r.models.time_scale;
  out.scrape = v.scrape;
  out.scrape_age_s = r.last_scrape_ok >= 0 ? t - r.last_scrape_ok : -1;
  out.scrape_fresh = v.scrape.fresh(t, m_.config().scrape.stale_after_s);
  out.scrapes = r.scrapes;
  out.scrape_failures = r.scrape_failures;
  out.ledger = v.ledger_or_empty();
  out.limits = v.limits;
  const predict::SpeedModel& speed = state.speed(r.index);
  out.prefill_factor = speed.prefill_factor();
  out.decode_factor = speed.decode_factor();
  out.prefill_observations = speed.prefill_observations();
  out.decode_observations = speed.decode_observations();
  predict::CompletionQuery q;
  q.prompt_tokens = std::max(1, static_cast<int>(std::lround(view.averages.prompt_tokens)));
  q.output_tokens = std::max(1, static_cast<int>(std::lround(view.averages.output_tokens)));
  q.cached_tokens = 0;
  const predict::CompletionEstimate e = predict::estimate_completion(v, q, view, speed);
  out.typical_prompt_tokens = q.prompt_tokens;
  out.typical_output_tokens = q.output_tokens;
  out.predicted_ttft_s = e.ttft_s;
  out.predicted_e2e_s = e.e2e_s;
  out.requests = r.requests;
  out.failures = r.failures;
  // The window is moved to now (mutable: reading a report only drops what aged out).
  ReplicaWindow& w = r.window;
  w.advance(t);
  out.ttft_p50_s = w.ttft_quantile(0.5);
  out.ttft_p99_s = w.ttft_quantile(0.99);
  out.ttft_samples = w.ttft_samples();
  out.requests_per_s = w.requests_per_s(t);
  out.tokens_per_s = w.tokens_per_s(t);
  out.kv_events = m_.kv_events->status(r.index);
  return out;
}

void AdminApi::add_routes(http::Routes& routes) {
  routes.add("GET", "/admin/peers", [this](http::ExchangePtr e) {
    if (!m_.peer) return e->respond(json_response(404, R"({"error":"peer sync is off"})"));
    e->respond(json_response(200, m_.peer->admin_json()));
  });
  routes.add("GET", "/admin/decisions", [this](http::ExchangePtr e) {
    size_t last = 100;
    std::string_view q = e->request().query();
    while (!q.empty()) {
      const size_t amp = q.find('&');
      const std::string_view kv = q.substr(0, amp);
      q = amp == std::string_view::npos ? "" : q.substr(amp + 1);
      if (kv.substr(0, 5) == "last=") {
        const std::string v(kv.substr(5));
        char* end = nullptr;
        const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
        if (v.empty() || *end != '\0') return e->respond(bad("last must be a number"));
        last = static_cast<size_t>(n);
      }
    }
    e->respond(json_response(200, m_.decisions.to_json(last)));
  });
  add_replica_routes(routes);
  add_dashboard_routes(routes);
}

void AdminApi::add_replica_routes(http::Routes& routes) {
  routes.add("GET", "/admin/replicas", [this](http::ExchangePtr e) {
    const double t = m_.env.now();
    const cluster::ClusterView& view = m_.core->state().view(t);
    std::vector<ReplicaReport> reports;
    m_.core->replicas().for_each_live(
        [&](const ReplicaRecord& r) { reports.push_back(report(r, view, t)); });
    e->respond(json_response(200, replicas_json(reports)));
  });
  routes.add("POST", "/admin/replicas", [this](http::ExchangePtr e) {
    AdminReplicaBody body;
    std::string error;
    if (!parse_admin_body(e->request().body, true, body, error)) return e->respond(bad(error));
    ReplicaConfig rc;
    rc.url = body.url;
    rc.weight = body.weight.value_or(1.0);
    rc.gpu = body.gpu;
    rc.arch = body.arch;
    if (!validate_replica(rc, error)) return e->respond(bad(error));
    if (m_.find_replica(rc.url)) {
      return e->respond(
          http::error_response(409, "ConflictError", "replica " + rc.url + " already exists"));
    }
    if (!m_.add_replica(rc, error)) return e->respond(bad(error));
    const ReplicaSet& set = m_.core->replicas();
    e->respond(json_response(201, replica_json(report(set.at(static_cast<int>(set.size()) - 1)))));
  });
  auto lookup = [this](const http::ExchangePtr& e, AdminReplicaBody& body) -> ReplicaRecord* {
    std::string error;
    if (!parse_admin_body(e->request().body, false, body, error)) {
      e->respond(bad(error));
      return nullptr;
    }
    ReplicaRecord* r = m_.find_replica(body.url);
    if (!r) e->respond(http::error_response(404, "NotFoundError", "no replica " + body.url));
    return r;
  };
  auto drain = [this, lookup](http::ExchangePtr e, bool on) {
    AdminReplicaBody body;
    ReplicaRecord* r = lookup(e, body);
    if (!r) return;
    m_.core->drain(r->index, on);
    e->respond(json_response(200, replica_json(report(*r))));
  };
  routes.add("POST", "/admin/replicas/drain", [drain](http::ExchangePtr e) { drain(e, true); });
  routes.add("POST", "/admin/replicas/undrain", [drain](http::ExchangePtr e) { drain(e, false); });
  auto remove = [this, lookup](http::ExchangePtr e) {
    AdminReplicaBody body;
    ReplicaRecord* r = lookup(e, body);
    if (!r) return;
    const bool now_removed = m_.core->remove(r->index, body.force);
    const std::string json = replica_json(report(*r));
    e->respond(json_response(now_removed ? 200 : 202,
                             "{\"removed\":" + std::string(now_removed ? "true" : "false") +
                                 ",\"replica\":" + json + "}"));
  };
  routes.add("DELETE", "/admin/replicas", remove);
  routes.add("POST", "/admin/replicas/remove", remove);
}

// The dashboard: its page and files, and the stream it reads (docs/architecture.md).
void AdminApi::add_dashboard_routes(http::Routes& routes) {
  auto asset = [](http::ExchangePtr e) {
    const Asset a = dashboard_asset(e->request().path());
    http::Response r;
    r.content_type = std::string(a.content_type);
    r.body = std::string(a.body);
    r.headers.emplace_back("Cache-Control", "no-cache");
    e->respond(std::move(r));
  };
  for (const char* path :
       {"/dashboard", "/dashboard/", "/dashboard/dashboard.js", "/dashboard/dashboard.css"}) {
    routes.add("GET", path, asset);
  }
  routes.add("GET", "/admin/stream", [this](http::ExchangePtr e) {
    StreamParams params;
    std::string error;
    if (!parse_stream_query(e->request().query(), params, error)) return e->respond(bad(error));
    if (m_.stopped)
      return e->respond(http::error_response(503, "ServiceUnavailableError", "stopping"));
    DashboardStream& d = m_.dashboards;
    if (d.clients() >= d.max_clients()) {
      return e->respond(http::error_response(
          503, "ServiceUnavailableError",
          fmt::format("{} dashboard streams are open already", d.max_clients())));
    }
    e->start_stream(200, "text/event-stream", {{"Cache-Control", "no-cache"}});
    e->write("retry: 1000\n\n");
    // The first event carries the newest decisions already made.
    StreamCursor start;
    start.decisions =
        m_.decisions.total() - std::min<uint64_t>(m_.decisions.total(), params.max_decisions);
    start.completions = m_.completions.total();
    d.add(e, params, m_.env.now(), start);
    arm_dashboard();
  });
}

void AdminApi::record_completion(const Call& c, double t, int output_tokens) {
  ReplicaRecord& r = m_.core->replicas().at(c.replica);
  r.window.record(t, c.ttft_s, output_tokens);
  CompletionRecord rec;
  rec.unix_time_s = m_.env.unix_now();
  rec.request_id = c.id;
  rec.replica = c.replica;
  // Predictions are made at dispatch and count from there (as the prediction-error histograms
  // do); the replica's window keeps the TTFT the client felt, from arrival.
  const double dispatched_s = c.dispatch - c.arrival;
  rec.predicted_ttft_s = c.predicted_ttft_s;
  rec.actual_ttft_s =
      c.ttft_s >= 0 ? c.ttft_s - dispatched_s : std::numeric_limits<double>::quiet_NaN();
  rec.predicted_e2e_s = c.predicted_e2e_s;
  rec.actual_e2e_s = t - c.dispatch;
  rec.output_tokens = output_tokens;
  m_.completions.add(rec);
}

// One timer serves every open dashboard: it fires when the earliest group is due.
void AdminApi::arm_dashboard() {
  dashboard_timer_->cancel();
  if (m_.stopped || m_.dashboards.clients() == 0) return;
  dashboard_timer_->arm(m_.dashboards.next_due(), [this] {
    if (m_.stopped) return;
    m_.dashboards.tick(m_.env.now(), [this](StreamCursor& cursor, const StreamParams& params) {
      return dashboard_snapshot(cursor, params);
    });
    arm_dashboard();
  });
}

std::string AdminApi::dashboard_snapshot(StreamCursor& cursor, const StreamParams& params) {
  const double t = m_.env.now();
  const cluster::ClusterView& view = m_.core->state().view(t);
  std::vector<ReplicaReport> reports;
  m_.core->replicas().for_each_live(
      [&](const ReplicaRecord& r) { reports.push_back(report(r, view, t)); });
  SnapshotMeta meta;
  meta.unix_time_s = m_.env.unix_now();
  meta.uptime_s = t;
  meta.interval_s = params.interval_s;
  meta.policy = m_.config().policy.name;
  meta.in_flight = m_.core->total_in_flight();
  meta.queued = m_.core->queue_length();
  meta.max_decisions = params.max_decisions;
  return snapshot_json(reports, m_.decisions, m_.completions, meta, cursor);
}

void AdminApi::stop() {
  dashboard_timer_->cancel();
  m_.dashboards.close_all();
}

}  // namespace eta::router
