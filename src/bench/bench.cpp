#include "bench/bench.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>

#include "bench/csv.hpp"
#include "bench/target.hpp"
#include "workload/catalog.hpp"

namespace eta::bench {

namespace {

constexpr double kDiscoveryTimeoutS = 10.0;

bool positive_finite(double v) {
  return v > 0 && std::isfinite(v);
}

std::string format_number(double v) {
  if (std::isinf(v)) return "inf";
  return fmt::format("{:g}", v);
}

// Applies --api to the requests that did not choose their own.
void apply_default_api(workload::Workload& w, workload::Api api) {
  for (workload::WorkloadRequest& r : w.requests) {
    if (r.api) continue;
    const bool changed = workload::effective_api(r) != api;
    r.api = api;
    if (changed) workload::finalize_request(r, w.has_block_hashes, w.block_size);
  }
}

}  // namespace

bool prepare_bench(const BenchOptions& o, BenchSetup& s, std::string& error) {
  // Flags first, so a bad flag is reported before a large workload is loaded.
  std::string url_error;
  const std::optional<http::Url> url = http::parse_url(o.target, &url_error);
  if (o.target.empty()) {
    error = "--target is required (e.g. --target http://127.0.0.1:8000)";
    return false;
  }
  if (!url) {
    error = "--target: " + url_error;
    return false;
  }
  s.url = *url;
  s.extra_urls.clear();
  for (const std::string& t : o.extra_targets) {
    const std::optional<http::Url> u = http::parse_url(t, &url_error);
    if (!u) {
      error = "--target " + t + ": " + url_error;
      return false;
    }
    s.extra_urls.push_back(*u);
  }
  if (o.target_choice != "round-robin" && o.target_choice != "random") {
    error = "--target-choice must be round-robin or random, got '" + o.target_choice + "'";
    return false;
  }
  if (o.workload.empty()) {
    error = "--workload is required (a name such as synthetic or azure-conv, or a trace file)";
    return false;
  }
  if (o.rate && o.load) {
    error = "--rate and --load are exclusive";
    return false;
  }
  if (o.rate && !(*o.rate > 0)) {
    error = "--rate must be > 0 requests/s (or inf), got " + format_number(*o.rate);
    return false;
  }
  if (o.load) {
    if (!positive_finite(*o.load)) {
      error = "--load must be a positive fraction of --capacity, got " + format_number(*o.load);
      return false;
    }
    if (!o.capacity) {
      error = "--load needs --capacity RPS (measure it with eta cluster-sim --find-capacity)";
      return false;
    }
  }
  if (o.capacity && !positive_finite(*o.capacity)) {
    error = "--capacity must be > 0 requests/s, got " + format_number(*o.capacity);
    return false;
  }
  if (o.num_requests && *o.num_requests <= 0) {
    error = "--num-requests must be > 0";
    return false;
  }
  if (o.duration_s && !positive_finite(*o.duration_s)) {
    error = "--duration must be > 0 seconds";
    return false;
  }
  if (!workload::parse_lengths_mode(o.lengths, s.lengths)) {
    error = "--lengths must be exact, hidden or hidden-scaled, got '" + o.lengths + "'";
    return false;
  }
  if (!o.api.empty()) {
    workload::Api api;
    if (!workload::parse_api(o.api, api)) {
      error = "--api must be completions or chat, got '" + o.api + "'";
      return false;
    }
    s.api = api;
  }
  if (!o.slo.empty() && o.slo != "none" && !stats::parse_slo(o.slo, s.slo, error)) {
    error = "--slo: " + error;
    return false;
  }
  if (o.time_scale && !positive_finite(*o.time_scale)) {
    error = "--time-scale must be > 0";
    return false;
  }
  if (o.max_concurrency < 0) {
    error = "--max-concurrency must be >= 1 (or 0 for none)";
    return false;
  }
  if (!(o.timeout_s > 0)) {
    error = "--timeout must be > 0 seconds";
    return false;
  }
  if (!parse_progress_mode(o.progress, s.progress)) {
    error = "--progress must be auto, tty, lines or off, got '" + o.progress + "'";
    return false;
  }
  bool auto_arrival = o.arrival == "auto";
  std::string arrival_text = o.arrival;
  if (arrival_text.rfind("gamma:", 0) == 0 && arrival_text.find('=') == std::string::npos) {
    arrival_text = "gamma:cv=" + arrival_text.substr(6);  // "gamma:2" is short for gamma:cv=2
  }
  if (!auto_arrival && !workload::parse_arrival_spec(arrival_text, s.arrival, error)) {
    error = "--arrival: " + error;
    return false;
  }
  // Output files: fail now rather than after the run.
  for (const std::string* path : {&o.json_path, &o.csv_path}) {
    if (path->empty()) continue;
    std::FILE* f = std::fopen(path->c_str(), "a");
    if (!f) {
      error = "cannot write " + *path;
      return false;
    }
    std::fclose(f);
  }

  // The workload.
  workload::WorkloadContext context;
  context.data_dir = workload::resolve_data_dir(o.data_dir);
  context.seed = o.seed;
  context.compute_block_hashes = false;  // bench sends text; the server hashes it
  s.data_dir = context.data_dir;
  workload::Workload& w = s.workload;
  if (!workload::make_workload(o.workload, context, w, error)) return false;
  if (o.num_requests) workload::truncate(w, *o.num_requests, std::nullopt);
  if (w.requests.empty()) {
    error = "the workload has no requests";
    return false;
  }
  if (s.api) apply_default_api(w, *s.api);

  // Arrivals, in simulated seconds.
  std::optional<double> rate = o.rate;
  if (o.load) rate = *o.load * *o.capacity;
  const bool spread = w.duration_s() > 0 && w.requests.size() > 1;
  if (auto_arrival) {
    s.arrival.kind =
        rate && !spread ? workload::ArrivalKind::kPoisson : workload::ArrivalKind::kTrace;
  }
  if (s.arrival.kind != workload::ArrivalKind::kTrace && !rate) {
    if (!spread) {
      error = "--arrival " + o.arrival + " needs --rate or --load (the workload's own rate is " +
              "not defined: every request arrives at t = 0)";
      return false;
    }
    // Re-draw at the workload's own mean rate.
    rate = static_cast<double>(w.requests.size() - 1) / w.duration_s();
  }
  s.arrival.rate = rate.value_or(0.0);
  if (s.arrival.kind == workload::ArrivalKind::kTrace && !spread) s.arrival.rate = 0;
  if (s.arrival.seed == 0) s.arrival.seed = o.seed;
  if (!workload::apply_arrivals(w, s.arrival, error)) {
    error = "--arrival: " + error;
    return false;
  }
  if (o.duration_s) workload::truncate(w, std::nullopt, *o.duration_s);
  if (w.requests.empty()) {
    error = "no request arrives within --duration";
    return false;
  }
  s.rate_rps = rate;
  s.arrival_name = workload::to_string(s.arrival.kind);
  if (s.arrival.kind == workload::ArrivalKind::kGamma) {
    s.arrival_name += ":cv=" + format_number(s.arrival.cv);
  }
  s.label = o.label;
  if (s.label.empty()) {
    s.label = o.workload;
    if (o.load) {
      s.label += " load " + format_number(*o.load);
    } else if (rate) {
      s.label += " @" + format_number(*rate) + " rps";
    }
  }
  return true;
}

bool discover_target(const BenchOptions& o, const BenchSetup& s, TargetInfo& info,
                     std::string& error) {
  std::string body;
  std::string get_error;
  std::vector<ModelCardInfo> cards;
  bool have_cards = http_get(s.url, "/v1/models", kDiscoveryTimeoutS, body, get_error);
  if (have_cards && !parse_models_body(body, cards, get_error)) have_cards = false;
  if (!have_cards) {
    if (o.model.empty()) {
      error = get_error + " (pass --model to skip the model lookup)";
      return false;
    }
    info.warning = get_error + "; going on with --model " + o.model;
  }
  const ModelCardInfo* card = have_cards ? find_model(cards, o.model) : nullptr;
  if (have_cards && !card) {
    info.warning = "the target does not list model '" + o.model + "' in /v1/models";
    card = &cards.front();  // the same server: its time scale and context length still apply
  }
  info.model = o.model.empty() ? card->id : o.model;
  if (card) info.max_model_len = card->max_model_len;
  if (o.time_scale) {
    info.time_scale = *o.time_scale;
    info.time_scale_source = "flag";
  } else if (card && card->time_scale) {
    info.time_scale = *card->time_scale;
    info.time_scale_source = "target";
  } else {
    info.time_scale = 1.0;
    info.time_scale_source = "default";
  }
  return true;
}

void run_bench(const BenchOptions& o, const BenchSetup& s, const TargetInfo& info, BenchRun& run) {
  run.target = info;
  const double scale = info.time_scale;
  const workload::Workload& w = s.workload;

  workload::BodyOptions body;
  body.model = info.model;
  body.default_api = s.api.value_or(workload::Api::kCompletions);
  body.lengths = s.lengths;
  body.max_model_len = static_cast<int>(info.max_model_len);
  body.hidden_max_tokens = workload::workload_max_tokens(w);
  body.send_session_as_user = true;

  LoadgenConfig config;
  config.target = s.url;
  config.extra_targets = s.extra_urls;
  config.random_targets = o.target_choice == "random";
  config.target_seed = o.seed ^ 0x7a26e75ull;
  config.plan.reserve(w.requests.size());
  for (const workload::WorkloadRequest& r : w.requests) {
    PlannedRequest p;
    p.at_s = r.arrival_s / scale;
    p.path = workload::endpoint_path(workload::effective_api(r, body.default_api));
    config.plan.push_back(p);
  }
  config.make_body = [&w, &body](size_t i) {
    return workload::build_request_body(w.requests[i], body);
  };
  config.max_concurrency = o.max_concurrency;
  config.timeout_s = o.timeout_s / scale;
  const ProgressStyle style = progress_style(s.progress, ::isatty(STDERR_FILENO) == 1);
  if (style.enabled) {
    config.progress_interval_s = style.interval_s;
    config.on_progress = [style, scale](const ProgressCounts& c, bool final) {
      const std::string text = progress_output(c, scale, style, final);
      std::fputs(text.c_str(), stderr);
      std::fflush(stderr);
    };
  }

  LoadgenResult result = run_loadgen(config);

  run.planned = static_cast<int64_t>(w.requests.size());
  run.interrupted = result.interrupted;
  run.pool = result.pool;
  run.wall_duration_s = std::max(0.0, result.last_done_s - result.first_send_s);
  std::vector<double> lateness_wall_ms;
  for (size_t i = 0; i < result.requests.size(); ++i) {
    RawResult& raw = result.requests[i];
    if (!raw.sent) continue;
    const workload::WorkloadRequest& wr = w.requests[i];
    stats::RequestRecord rec;
    rec.index = wr.index;
    rec.error_kind = raw.error_kind;
    rec.http_status = raw.http_status;
    rec.start_s = (raw.sent_s - result.first_send_s) * scale;
    rec.ttft_s = raw.first_token ? raw.ttft_s * scale : 0.0;
    rec.e2e_s = raw.e2e_s * scale;
    rec.itls_s = std::move(raw.itls_s);
    for (double& v : rec.itls_s) v *= scale;
    rec.prompt_tokens =
        raw.usage_prompt_tokens >= 0 ? static_cast<int>(raw.usage_prompt_tokens) : wr.prompt_tokens;
    rec.output_tokens = raw.usage_completion_tokens >= 0
                            ? static_cast<int>(raw.usage_completion_tokens)
                            : static_cast<int>(raw.token_events);
    rec.replica = std::move(raw.replica);
    // The router is a wall-clock proxy: its predictions are wall milliseconds (it scales its
    // speed model by the replicas' eta_time_scale), converted like every other time.
    if (raw.predicted_ttft_ms) rec.predicted_ttft_s = *raw.predicted_ttft_ms / 1000.0 * scale;
    if (raw.predicted_e2e_ms) rec.predicted_e2e_s = *raw.predicted_e2e_ms / 1000.0 * scale;
    rec.send_lateness_s = raw.lateness_s * scale;
    // A stream that succeeded without a single token has no TTFT: call it a stream error.
    if (rec.ok() && !raw.first_token) {
      rec.error_kind = "stream";
      raw.error_detail = "the stream carried no token";
    }
    lateness_wall_ms.push_back(raw.lateness_s * 1000.0);
    run.token_events += raw.token_events;
    run.records.push_back(std::move(rec));
    run.details.push_back(RequestDetail{i, std::move(raw.error_detail), raw.token_events});
  }
  run.sent = static_cast<int64_t>(run.records.size());
  run.send_lateness_wall_ms = stats::summarize(lateness_wall_ms);
  const double duration = run.wall_duration_s * scale;
  run.report = stats::build_report(s.label, run.records, duration, s.slo);
  auto& extra = run.report.extra;
  extra["time_scale"] = scale;
  extra["planned_requests"] = static_cast<double>(run.planned);
  extra["sent_requests"] = static_cast<double>(run.sent);
  extra["wall_duration_s"] = run.wall_duration_s;
  extra["send_lateness_wall_ms_p50"] = run.send_lateness_wall_ms.p50;
  extra["send_lateness_wall_ms_p99"] = run.send_lateness_wall_ms.p99;
  extra["send_lateness_wall_ms_max"] = run.send_lateness_wall_ms.max;
  extra["stream_chunks"] = static_cast<double>(run.token_events);
  extra["connections_opened"] = static_cast<double>(run.pool.connections_opened);
  if (s.rate_rps && std::isfinite(*s.rate_rps)) extra["target_rate_rps"] = *s.rate_rps;
}

std::string report_json(const BenchOptions& o, const BenchSetup& s, const BenchRun& run) {
  namespace json = boost::json;
  json::object r;
  r["target"] = s.url.str();
  if (!s.extra_urls.empty()) {  // several routers: every target, and how requests were spread
    json::array targets;
    targets.push_back(json::value(s.url.str()));
    for (const http::Url& u : s.extra_urls) targets.push_back(json::value(u.str()));
    r["targets"] = std::move(targets);
    r["target_choice"] = o.target_choice;
  }
  r["model"] = run.target.model;
  r["workload"] = o.workload;
  r["api"] = workload::to_string(s.api.value_or(workload::Api::kCompletions));
  r["lengths"] = workload::to_string(s.lengths);
  r["arrival"] = s.arrival_name;
  if (!s.rate_rps) {
    r["rate_rps"] = nullptr;
  } else if (std::isinf(*s.rate_rps)) {
    r["rate_rps"] = "inf";
  } else {
    r["rate_rps"] = *s.rate_rps;
  }
  r["load"] = o.load ? json::value(*o.load) : json::value(nullptr);
  r["capacity_rps"] = o.capacity ? json::value(*o.capacity) : json::value(nullptr);
  r["seed"] = o.seed;
  r["time_scale"] = run.target.time_scale;
  r["time_scale_source"] = run.target.time_scale_source;
  r["max_concurrency"] =
      o.max_concurrency > 0 ? json::value(o.max_concurrency) : json::value(nullptr);
  r["timeout_s"] = o.timeout_s;
  r["planned_requests"] = run.planned;
  r["sent_requests"] = run.sent;
  r["interrupted"] = run.interrupted;
  r["wall_duration_s"] = run.wall_duration_s;
  r["send_lateness_wall_ms"] = json::object{{"p50", run.send_lateness_wall_ms.p50},
                                            {"p90", run.send_lateness_wall_ms.p90},
                                            {"p99", run.send_lateness_wall_ms.p99},
                                            {"max", run.send_lateness_wall_ms.max}};
  r["stream_chunks"] = run.token_events;
  r["connections_opened"] = run.pool.connections_opened;
  // The stable report, one top-level key per line, then "run" on its own line.
  std::string text = stats::to_json_string(run.report, true);
  const size_t close = text.rfind('}');
  text.erase(close);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  text += ",\n  \"run\":" + json::serialize(r) + "\n}\n";
  return text;
}

std::string records_csv(const BenchSetup& s, const BenchRun& run) {
  std::string out = csv_header();
  for (size_t k = 0; k < run.records.size(); ++k) {
    const RequestDetail& d = run.details[k];
    const workload::WorkloadRequest& wr = s.workload.requests[d.workload_index];
    CsvRow row;
    row.record = &run.records[k];
    row.scheduled_s = wr.arrival_s;
    row.expected_output_tokens = wr.output_tokens;
    row.tag = wr.tag;
    row.session = wr.session_id;
    row.turn = wr.turn;
    row.error_detail = d.error_detail;
    append_csv_row(out, row);
  }
  return out;
}

std::string summary_text(const BenchSetup& s, const BenchRun& run) {
  const stats::Report& r = run.report;
  std::string out = fmt::format(
      "eta bench: {} -> {} (model {}, time scale {} from {}), {} {} arrivals{}, lengths {}\n",
      s.label, s.url.str(), run.target.model, format_number(run.target.time_scale),
      run.target.time_scale_source, run.planned, s.arrival_name,
      s.rate_rps ? " at " + format_number(*s.rate_rps) + " req/s" : std::string(),
      workload::to_string(s.lengths));
  out += stats::render_comparison({r}, stats::TableFormat::kPlain);
  out += fmt::format("sent {} of {}{}; {} ok, {} errors", run.sent, run.planned,
                     run.interrupted ? " (interrupted)" : "", r.requests, r.errors);
  for (const auto& [kind, n] : r.errors_by_kind) out += fmt::format(" {}={}", kind, n);
  out += fmt::format(
      "\nsend lateness (wall): p50 {:.3f} ms, p99 {:.3f} ms, max {:.3f} ms; {:.2f} s wall, {} "
      "token chunks, {} connections\n",
      run.send_lateness_wall_ms.p50, run.send_lateness_wall_ms.p99, run.send_lateness_wall_ms.max,
      run.wall_duration_s, run.token_events, run.pool.connections_opened);
  // The first error of each kind, so a broken setup explains itself.
  std::map<std::string, std::string> first;
  for (size_t k = 0; k < run.records.size(); ++k) {
    const stats::RequestRecord& rec = run.records[k];
    if (!rec.ok() && !first.count(rec.error_kind)) {
      first[rec.error_kind] = run.details[k].error_detail;
    }
  }
  for (const auto& [kind, detail] : first) {
    out += fmt::format("first {} error: {}\n", kind, detail.empty() ? "-" : detail);
  }
  return out;
}

}  // namespace eta::bench
