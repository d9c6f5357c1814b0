#include "router/dashboard.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

#include <boost/json.hpp>

namespace eta::router {

// web/dashboard/*, embedded by cmake/embed.cmake.
extern const char* const kDashboardHtml;
extern const char* const kDashboardJs;
extern const char* const kDashboardCss;

namespace json = boost::json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

json::value num(double v) {
  if (!std::isfinite(v)) return nullptr;
  return v;
}

// The q-quantile (nearest rank) of v, reordering it; NaN if empty.
double quantile(std::vector<double>& v, double q) {
  if (v.empty()) return kNaN;
  size_t k = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  k = std::clamp<size_t>(k, 1, v.size()) - 1;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

json::object summary_object(const AccuracySummary& s) {
  return json::object{
      {"ttft", json::object{{"n", s.ttft_n},
                            {"predicted_median_s", num(s.ttft_predicted_median_s)},
                            {"actual_median_s", num(s.ttft_actual_median_s)},
                            {"abs_rel_error_median", num(s.ttft_abs_rel_error_median)},
                            {"abs_rel_error_p90", num(s.ttft_abs_rel_error_p90)}}},
      {"e2e", json::object{{"n", s.e2e_n},
                           {"predicted_median_s", num(s.e2e_predicted_median_s)},
                           {"actual_median_s", num(s.e2e_actual_median_s)},
                           {"abs_rel_error_median", num(s.e2e_abs_rel_error_median)},
                           {"abs_rel_error_p90", num(s.e2e_abs_rel_error_p90)}}},
  };
}

}  // namespace

// ---------------------------------------------------------------------------------------------

void CompletionLog::add(const CompletionRecord& r) {
  if (ring_.empty()) return;
  ring_[static_cast<size_t>(total_ % ring_.size())] = r;
  ++total_;
}

const CompletionRecord& CompletionLog::recent(size_t i) const {
  return ring_[static_cast<size_t>((total_ - 1 - i) % ring_.size())];
}

AccuracySummary summarize(const CompletionLog& log, size_t n) {
  n = std::min(n, log.size());
  std::vector<double> pt, at, et, pe, ae, ee;
  pt.reserve(n);
  at.reserve(n);
  et.reserve(n);
  pe.reserve(n);
  ae.reserve(n);
  ee.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const CompletionRecord& r = log.recent(i);
    if (std::isfinite(r.predicted_ttft_s) && std::isfinite(r.actual_ttft_s) &&
        r.actual_ttft_s > 0) {
      pt.push_back(r.predicted_ttft_s);
      at.push_back(r.actual_ttft_s);
      et.push_back(std::abs(r.predicted_ttft_s - r.actual_ttft_s) / r.actual_ttft_s);
    }
    if (std::isfinite(r.predicted_e2e_s) && std::isfinite(r.actual_e2e_s) && r.actual_e2e_s > 0) {
      pe.push_back(r.predicted_e2e_s);
      ae.push_back(r.actual_e2e_s);
      ee.push_back(std::abs(r.predicted_e2e_s - r.actual_e2e_s) / r.actual_e2e_s);
    }
  }
  AccuracySummary s;
  s.ttft_n = pt.size();
  s.ttft_predicted_median_s = quantile(pt, 0.5);
  s.ttft_actual_median_s = quantile(at, 0.5);
  s.ttft_abs_rel_error_median = quantile(et, 0.5);
  s.ttft_abs_rel_error_p90 = quantile(et, 0.9);
  s.e2e_n = pe.size();
  s.e2e_predicted_median_s = quantile(pe, 0.5);
  s.e2e_actual_median_s = quantile(ae, 0.5);
  s.e2e_abs_rel_error_median = quantile(ee, 0.5);
  s.e2e_abs_rel_error_p90 = quantile(ee, 0.9);
  return s;
}

// ---------------------------------------------------------------------------------------------

std::string snapshot_json(std::span<const ReplicaReport> replicas, const DecisionLog& decisions,
                          const CompletionLog& completions, const SnapshotMeta& meta,
                          StreamCursor& cursor) {
  const uint64_t new_decisions =
      decisions.total() >= cursor.decisions ? decisions.total() - cursor.decisions : 0;
  const size_t n_decisions =
      static_cast<size_t>(std::min<uint64_t>(new_decisions, meta.max_decisions));
  const uint64_t new_completions =
      completions.total() >= cursor.completions ? completions.total() - cursor.completions : 0;
  const size_t n_completions =
      static_cast<size_t>(std::min<uint64_t>(new_completions, completions.size()));
  cursor.decisions = decisions.total();
  cursor.completions = completions.total();

  json::object head{
      {"time", meta.unix_time_s},
      {"uptime_s", meta.uptime_s},
      {"interval_s", meta.interval_s},
      {"policy", meta.policy},
      {"in_flight", meta.in_flight},
      {"queued", meta.queued},
      {"decisions_total", decisions.total()},
      {"completions_total", completions.total()},
      {"completions_new", new_completions},
      {"accuracy",
       json::object{{"tick", summary_object(summarize(completions, n_completions))},
                    {"recent", summary_object(summarize(completions, completions.size()))}}},
  };
  // {head..., "replicas": [...], "decisions": [...]}: the two arrays are serialized by their own
  // modules (admin.cpp, decision_log.cpp) and spliced in.
  std::string out = json::serialize(head);
  out.pop_back();  // '}'
  out += ",\"replicas\":";
  out += replicas_array_json(replicas);
  out += ",\"decisions\":";
  out += decisions.array_json(n_decisions);
  out += '}';
  return out;
}

// ---------------------------------------------------------------------------------------------

bool parse_stream_query(std::string_view query, StreamParams& out, std::string& error) {
  out = StreamParams{};
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view kv = query.substr(0, amp);
    query = amp == std::string_view::npos ? "" : query.substr(amp + 1);
    if (kv.empty()) continue;
    const size_t eq = kv.find('=');
    const std::string_view key = kv.substr(0, eq);
    const std::string value(eq == std::string_view::npos ? "" : kv.substr(eq + 1));
    char* end = nullptr;
    const long long n = value.empty() ? -1 : std::strtoll(value.c_str(), &end, 10);
    const bool is_number = !value.empty() && *end == '\0';
    if (key == "interval_ms") {
      if (!is_number || n < 100 || n > 10000) {
        error = "interval_ms must be a whole number from 100 to 10000";
        return false;
      }
      out.interval_s = static_cast<double>(n) / 1000.0;
    } else if (key == "decisions") {
      if (!is_number || n < 0 || n > 100) {
        error = "decisions must be a whole number from 0 to 100";
        return false;
      }
      out.max_decisions = static_cast<size_t>(n);
    } else {
      error = "unknown parameter '" + std::string(key) + "' (known: interval_ms, decisions)";
      return false;
    }
  }
  return true;
}

bool DashboardStream::add(const http::ExchangePtr& e, const StreamParams& params, double now,
                          StreamCursor start) {
  if (clients() >= max_clients_) return false;
  for (Group& g : groups_) {
    if (g.params == params) {
      g.clients.push_back(e);
      return true;
    }
  }
  Group g;
  g.params = params;
  g.due = now;  // the first event goes out at once
  g.cursor = start;
  g.clients.push_back(e);
  groups_.push_back(std::move(g));
  return true;
}

size_t DashboardStream::clients() const {
  size_t n = 0;
  for (const Group& g : groups_) n += g.clients.size();
  return n;
}

double DashboardStream::next_due() const {
  double due = std::numeric_limits<double>::infinity();
  for (const Group& g : groups_) due = std::min(due, g.due);
  return due;
}

int DashboardStream::tick(double now, const Build& build) {
  int built = 0;
  for (Group& g : groups_) {
    std::erase_if(g.clients, [](const http::ExchangePtr& e) { return e->disconnected(); });
    if (g.clients.empty() || g.due > now) continue;
    // Keep the cadence; after a stall, start again from now rather than catching up.
    const double interval = g.params.interval_s;
    g.due = g.due + interval > now ? g.due + interval : now + interval;
    std::string event = "data: ";
    event += build(g.cursor, g.params);
    event += "\n\n";
    ++built;
    for (const http::ExchangePtr& e : g.clients) {
      if (e->buffered_bytes() > kMaxBufferedBytes) continue;  // a slow reader misses this one
      e->write(event);
    }
  }
  std::erase_if(groups_, [](const Group& g) { return g.clients.empty(); });
  return built;
}

void DashboardStream::close_all() {
  for (Group& g : groups_)
    for (const http::ExchangePtr& e : g.clients) e->end_stream();
  groups_.clear();
}

// ---------------------------------------------------------------------------------------------

Asset dashboard_asset(std::string_view path) {
  if (path == "/dashboard" || path == "/dashboard/") {
    return {"text/html; charset=utf-8", kDashboardHtml};
  }
  if (path == "/dashboard/dashboard.js") {
    return {"text/javascript; charset=utf-8", kDashboardJs};
  }
  if (path == "/dashboard/dashboard.css") return {"text/css; charset=utf-8", kDashboardCss};
  return {};
}

}  // namespace eta::router
