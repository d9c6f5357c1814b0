#include "router/config.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "engine/engine.hpp"
#include "engine/profile.hpp"
#include "http/client.hpp"

namespace eta::router {

namespace {

// Reads YAML nodes with one-line errors "SOURCE:LINE: message". Configuration loading happens once
// at start-up, so yaml-cpp's exceptions are caught here and never reach the data path.
class Reader {
 public:
  explicit Reader(std::string_view source) : source_(source) {}

  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }

  void fail(const YAML::Node& node, const std::string& message) {
    if (!error_.empty()) return;
    error_ = std::string(source_);
    if (node.IsDefined() && node.Mark().line >= 0)
      error_ += ":" + std::to_string(node.Mark().line + 1);
    error_ += ": " + message;
  }

  // Checks that `node` is a map whose keys are all in `known`.
  bool keys(const YAML::Node& node, std::string_view where,
            std::initializer_list<std::string_view> known) {
    if (!node.IsMap()) {
      fail(node, std::string(where) + " must be a map");
      return false;
    }
    for (const auto& kv : node) {
      const std::string key = kv.first.Scalar();
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        std::string list;
        for (std::string_view k : known) list += (list.empty() ? "" : ", ") + std::string(k);
        fail(kv.first, "unknown key '" + key + "'" +
                           (where.empty() ? "" : " in " + std::string(where)) + " (known: " + list +
                           ")");
        return false;
      }
    }
    return true;
  }

  void text(const YAML::Node& node, std::string_view name, std::string& out) {
    if (!node) return;
    if (!node.IsScalar()) return fail(node, std::string(name) + " must be a string");
    out = node.Scalar();
  }

  void number(const YAML::Node& node, std::string_view name, double& out, double min, double max) {
    if (!node) return;
    double v = 0;
    if (!node.IsScalar() || !parse_double(node.Scalar(), v)) {
      return fail(node, std::string(name) + " must be a number, got '" + describe(node) + "'");
    }
    if (!(v >= min && v <= max)) {
      return fail(node, std::string(name) + " must be in [" + fmt(min) + ", " + fmt(max) +
                            "], got " + node.Scalar());
    }
    out = v;
  }

  template <typename Int>
  void integer(const YAML::Node& node, std::string_view name, Int& out, double min, double max) {
    if (!node) return;
    double v = 0;
    number(node, name, v, min, max);
    if (failed()) return;
    if (v != std::floor(v)) return fail(node, std::string(name) + " must be an integer");
    out = static_cast<Int>(v);
  }

  void boolean(const YAML::Node& node, std::string_view name, bool& out) {
    if (!node) return;
    const std::string s = node.IsScalar() ? node.Scalar() : "";
    if (s == "true" || s == "yes" || s == "on") {
      out = true;
    } else if (s == "false" || s == "no" || s == "off") {
      out = false;
    } else {
      fail(node, std::string(name) + " must be true or false");
    }
  }

  static bool parse_double(const std::string& s, double& v) {
    if (s.empty()) return false;
    const char* begin = s.data();
    if (*begin == '+') ++begin;
    auto [ptr, ec] = std::from_chars(begin, s.data() + s.size(), v);
    return ec == std::errc() && ptr == s.data() + s.size() && std::isfinite(v);
  }
  static std::string describe(const YAML::Node& node) {
    if (node.IsScalar()) return node.Scalar();
    if (node.IsSequence()) return "a list";
    if (node.IsMap()) return "a map";
    return "null";
  }
  static std::string fmt(double v) {
    if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
    std::ostringstream s;
    s << v;
    return s.str();
  }

 private:
  std::string_view source_;
  std::string error_;
};

constexpr double kMaxSeconds = 86400.0 * 365;

// KV-cache events (issue 15): {endpoint, replay, topic}.
void read_kv_events(Reader& r, const YAML::Node& node, const std::string& where,
                    KvEventsEndpoints& out) {
  if (!node || node.IsNull()) return;
  if (!node.IsMap()) return r.fail(node, where + " must be a map (endpoint, replay, topic)");
  if (!r.keys(node, where, {"endpoint", "replay", "topic"})) return;
  if (!node["endpoint"]) return r.fail(node, where + " needs an endpoint");
  r.text(node["endpoint"], where + ".endpoint", out.endpoint);
  r.text(node["replay"], where + ".replay", out.replay);
  r.text(node["topic"], where + ".topic", out.topic);
}

// tls: {ca_file, cert_file, key_file, verify} of https:// replicas (upstream_tls, replicas[i].tls).
void read_upstream_tls(Reader& r, const YAML::Node& node, const std::string& where,
                       http::TlsClientOptions& out) {
  if (!r.keys(node, where, {"ca_file", "cert_file", "key_file", "verify"})) return;
  r.text(node["ca_file"], where + ".ca_file", out.ca_file);
  r.text(node["cert_file"], where + ".cert_file", out.cert_file);
  r.text(node["key_file"], where + ".key_file", out.key_file);
  r.boolean(node["verify"], where + ".verify", out.verify);
}

void read_replica(Reader& r, const YAML::Node& node, size_t i, ReplicaConfig& out) {
  const std::string where = "replicas[" + std::to_string(i) + "]";
  if (node.IsScalar()) {
    out.url = node.Scalar();
    return;
  }
  if (!r.keys(node, where, {"url", "weight", "gpu", "arch", "kv_events", "api_key", "tls"})) return;
  if (!node["url"]) return r.fail(node, where + " needs a url");
  r.text(node["url"], where + ".url", out.url);
  r.number(node["weight"], where + ".weight", out.weight, 0, 1e6);
  r.text(node["gpu"], where + ".gpu", out.gpu);
  r.text(node["arch"], where + ".arch", out.arch);
  read_kv_events(r, node["kv_events"], where + ".kv_events", out.kv_events);
  r.text(node["api_key"], where + ".api_key", out.api_key);
  if (const YAML::Node t = node["tls"]) {
    out.tls.emplace();
    read_upstream_tls(r, t, where + ".tls", *out.tls);
  }
}

// models: [{name, served_names: [...]}, ...] (aliases.hpp); checked by validate_aliases.
void read_aliases(Reader& r, const YAML::Node& node, RouterConfig& out) {
  if (!node.IsSequence() && !node.IsNull()) {
    return r.fail(node, "models aliases must be a list of {name, served_names}");
  }
  out.model_aliases.clear();
  size_t i = 0;
  for (const auto& item : node) {
    const std::string where = "models[" + std::to_string(i++) + "]";
    if (!r.keys(item, where, {"name", "served_names"})) return;
    ModelAlias a;
    if (!item["name"]) return r.fail(item, where + " needs a name");
    r.text(item["name"], where + ".name", a.name);
    const YAML::Node served = item["served_names"];
    if (!served) return r.fail(item, where + " needs served_names");
    if (!served.IsSequence())
      return r.fail(served, where + ".served_names must be a list of names");
    for (const auto& s : served) {
      if (!s.IsScalar()) return r.fail(s, where + ".served_names must be a list of names");
      a.served_names.push_back(s.Scalar());
    }
    if (r.failed()) return;
    out.model_aliases.push_back(std::move(a));
  }
}

void read_policy(Reader& r, const YAML::Node& node, RouterConfig& out) {
  if (node.IsScalar()) {
    out.policy = node.Scalar();
    out.policy_params.clear();
    return;
  }
  if (!r.keys(node, "policy", {"name", "params", "seed"})) return;
  if (node["name"]) {
    r.text(node["name"], "policy.name", out.policy);
    out.policy_params.clear();
  }
  if (const YAML::Node params = node["params"]; params && !params.IsNull()) {
    if (!params.IsMap()) return r.fail(params, "policy.params must be a map");
    for (const auto& kv : params) {
      if (!kv.second.IsScalar()) {
        return r.fail(kv.second, "policy.params." + kv.first.Scalar() + " must be a scalar");
      }
      out.policy_params[kv.first.Scalar()] = kv.second.Scalar();
    }
  }
  r.integer(node["seed"], "policy.seed", out.seed, 0, 9.0e15);
}

void read_root(Reader& r, const YAML::Node& root, RouterConfig& out) {
  // clang-format off
  if (!r.keys(root, "",
              {"listen", "admin", "replicas", "policy", "scrape", "health", "models", "timeouts",
               "retries", "admission", "api_keys", "api_keys_file", "rate_limit",
               "decision_log_size", "log_level", "log_format", "access_log", "max_body_bytes",
               "shutdown_grace_s", "client", "tls", "upstream_tls", "kv_events",
               "peer_sync", "replica_dns", "dns_server",
               // dropin: upstream auth, request reading
               "upstream_api_key", "upstream_api_key_file", "request_estimates", "stream_usage"})) {
    // clang-format on
    return;
  }
  if (const YAML::Node n = root["listen"]) {
    if (!r.keys(n, "listen", {"host", "port"})) return;
    r.text(n["host"], "listen.host", out.host);
    r.integer(n["port"], "listen.port", out.port, 0, 65535);
  }
  if (const YAML::Node n = root["admin"]) {
    if (!r.keys(n, "admin", {"host", "port", "token"})) return;
    r.text(n["host"], "admin.host", out.admin_host);
    r.text(n["token"], "admin.token", out.admin_token);
    r.integer(n["port"], "admin.port", out.admin_port, -1, 65535);
  }
  if (const YAML::Node n = root["replicas"]) {
    if (!n.IsSequence() && !n.IsNull()) return r.fail(n, "replicas must be a list");
    out.replicas.clear();
    size_t i = 0;
    for (const auto& item : n) {
      ReplicaConfig rc;
      read_replica(r, item, i++, rc);
      if (r.failed()) return;
      out.replicas.push_back(std::move(rc));
    }
  }
  if (const YAML::Node n = root["policy"]) read_policy(r, n, out);
  if (r.failed()) return;
  if (const YAML::Node n = root["scrape"]) {
    if (!r.keys(n, "scrape", {"interval_s", "timeout_s", "max_body_bytes", "stale_after_s"})) {
      return;
    }
    r.number(n["interval_s"], "scrape.interval_s", out.scrape_interval_s, 0.001, 3600);
    r.number(n["timeout_s"], "scrape.timeout_s", out.scrape_timeout_s, 0.001, 3600);
    r.integer(n["max_body_bytes"], "scrape.max_body_bytes", out.scrape_max_bytes, 1024, 1e9);
    r.number(n["stale_after_s"], "scrape.stale_after_s", out.stale_after_s, 0.001, kMaxSeconds);
  }
  if (const YAML::Node n = root["health"]) {
    if (!r.keys(n, "health",
                {"interval_s", "timeout_s", "failure_threshold", "success_threshold"})) {
      return;
    }
    r.number(n["interval_s"], "health.interval_s", out.health_interval_s, 0.001, 3600);
    r.number(n["timeout_s"], "health.timeout_s", out.health_timeout_s, 0.001, 3600);
    r.integer(n["failure_threshold"], "health.failure_threshold", out.health_failure_threshold, 1,
              1000);
    r.integer(n["success_threshold"], "health.success_threshold", out.health_success_threshold, 1,
              1000);
  }
  if (const YAML::Node n = root["models"]) {
    // Model aliases (a list), or a map with the refresh interval and the aliases.
    if (n.IsSequence() || n.IsNull()) {
      read_aliases(r, n, out);
    } else if (n.IsMap()) {
      if (!r.keys(n, "models", {"refresh_interval_s", "aliases"})) return;
      r.number(n["refresh_interval_s"], "models.refresh_interval_s", out.models_interval_s, 0.01,
               kMaxSeconds);
      if (const YAML::Node a = n["aliases"]) read_aliases(r, a, out);
    } else {
      return r.fail(n, "models must be a list of {name, served_names} or a map");
    }
    if (r.failed()) return;
  }
  if (const YAML::Node n = root["timeouts"]) {
    if (!r.keys(n, "timeouts", {"connect_s", "first_byte_s", "idle_s"})) return;
    r.number(n["connect_s"], "timeouts.connect_s", out.connect_timeout_s, 0.001, 3600);
    r.number(n["first_byte_s"], "timeouts.first_byte_s", out.first_byte_timeout_s, 0, kMaxSeconds);
    r.number(n["idle_s"], "timeouts.idle_s", out.idle_timeout_s, 0, kMaxSeconds);
  }
  r.integer(root["retries"], "retries", out.retries, 0, 100);
  if (const YAML::Node n = root["admission"]) {
    if (!r.keys(n, "admission",
                {"max_in_flight", "max_in_flight_per_replica", "ttft_slo_s", "queue_size",
                 "queue_timeout_s", "retry_after_s"})) {
      return;
    }
    AdmissionConfig& a = out.admission;
    r.integer(n["max_in_flight"], "admission.max_in_flight", a.max_in_flight, 0, 1e9);
    r.integer(n["max_in_flight_per_replica"], "admission.max_in_flight_per_replica",
              a.max_in_flight_per_replica, 0, 1e9);
    r.number(n["ttft_slo_s"], "admission.ttft_slo_s", a.ttft_slo_s, 0, kMaxSeconds);
    r.integer(n["queue_size"], "admission.queue_size", a.queue_size, 0, 1e9);
    r.number(n["queue_timeout_s"], "admission.queue_timeout_s", a.queue_timeout_s, 0.001,
             kMaxSeconds);
    r.integer(n["retry_after_s"], "admission.retry_after_s", a.retry_after_s, 0, 86400);
  }
  if (const YAML::Node n = root["api_keys"]) {
    if (!n.IsSequence() && !n.IsNull()) return r.fail(n, "api_keys must be a list of strings");
    out.api_keys.clear();
    out.key_limits.clear();
    size_t i = 0;
    for (const auto& k : n) {
      const std::string where = "api_keys[" + std::to_string(i++) + "]";
      if (k.IsMap()) {
        if (!r.keys(k, where, {"key", "requests_per_minute", "tokens_per_minute"})) return;
        const YAML::Node key = k["key"];
        if (!key || !key.IsScalar() || key.Scalar().empty()) {
          return r.fail(k, where + " needs a non-empty key");
        }
        RateLimit lim;
        r.number(k["requests_per_minute"], where + ".requests_per_minute", lim.requests_per_minute,
                 0, 1e9);
        r.number(k["tokens_per_minute"], where + ".tokens_per_minute", lim.tokens_per_minute, 0,
                 1e12);
        if (r.failed()) return;
        out.api_keys.push_back(key.Scalar());
        out.key_limits[key.Scalar()] = lim;
        continue;
      }
      if (!k.IsScalar() || k.Scalar().empty()) {
        return r.fail(k, "api_keys must be a list of non-empty strings or {key, ...} maps");
      }
      out.api_keys.push_back(k.Scalar());
    }
  }
  r.text(root["api_keys_file"], "api_keys_file", out.api_keys_file);
  if (const YAML::Node n = root["rate_limit"]) {
    if (!r.keys(n, "rate_limit", {"requests_per_minute", "tokens_per_minute"})) return;
    r.number(n["requests_per_minute"], "rate_limit.requests_per_minute",
             out.rate_limit.requests_per_minute, 0, 1e9);
    r.number(n["tokens_per_minute"], "rate_limit.tokens_per_minute",
             out.rate_limit.tokens_per_minute, 0, 1e12);
  }
  r.integer(root["decision_log_size"], "decision_log_size", out.decision_log_size, 0, 1e7);
  r.text(root["log_level"], "log_level", out.log_level);
  r.text(root["log_format"], "log_format", out.log_format);
  r.text(root["access_log"], "access_log", out.access_log);
  r.integer(root["max_body_bytes"], "max_body_bytes", out.max_body_bytes, 1024, 1e10);
  r.number(root["shutdown_grace_s"], "shutdown_grace_s", out.shutdown_grace_s, 0, kMaxSeconds);
  if (const YAML::Node n = root["tls"]) {
    if (!r.keys(n, "tls", {"cert_file", "key_file"})) return;
    r.text(n["cert_file"], "tls.cert_file", out.tls_cert_file);
    r.text(n["key_file"], "tls.key_file", out.tls_key_file);
  }
  read_kv_events(r, root["kv_events"], "kv_events", out.kv_events_pattern);  // issue 15
  if (const YAML::Node n = root["upstream_tls"]) {
    read_upstream_tls(r, n, "upstream_tls", out.upstream_tls);
    if (r.failed()) return;
  }
  // Upstream auth and request reading (dropin).
  r.text(root["upstream_api_key"], "upstream_api_key", out.upstream_api_key);
  r.text(root["upstream_api_key_file"], "upstream_api_key_file", out.upstream_api_key_file);
  r.boolean(root["stream_usage"], "stream_usage", out.stream_usage);
  if (const YAML::Node n = root["request_estimates"]) {
    if (!r.keys(n, "request_estimates",
                {"image_tokens", "audio_tokens", "video_tokens", "file_tokens"})) {
      return;
    }
    openai::ExtractOptions& e = out.request_estimates;
    r.integer(n["image_tokens"], "request_estimates.image_tokens", e.image_tokens, 0, 1e7);
    r.integer(n["audio_tokens"], "request_estimates.audio_tokens", e.audio_tokens, 0, 1e7);
    r.integer(n["video_tokens"], "request_estimates.video_tokens", e.video_tokens, 0, 1e7);
    r.integer(n["file_tokens"], "request_estimates.file_tokens", e.file_tokens, 0, 1e7);
  }
  if (const YAML::Node n = root["peer_sync"]) {  // peer sync (issue 13)
    if (!r.keys(n, "peer_sync", {"url", "cluster", "heartbeat_s", "peer_timeout_s", "entry_ttl_s"}))
      return;
    PeerSyncConfig& p = out.peer_sync;
    r.text(n["url"], "peer_sync.url", p.url);
    r.text(n["cluster"], "peer_sync.cluster", p.cluster);
    r.number(n["heartbeat_s"], "peer_sync.heartbeat_s", p.heartbeat_s, 0.01, 60);
    r.number(n["peer_timeout_s"], "peer_sync.peer_timeout_s", p.peer_timeout_s, 0.05, 3600);
    r.number(n["entry_ttl_s"], "peer_sync.entry_ttl_s", p.entry_ttl_s, 0.1, kMaxSeconds);
  }
  if (const YAML::Node n = root["replica_dns"]) {  // replicas from DNS (issue 13)
    if (!n.IsSequence() && !n.IsNull()) return r.fail(n, "replica_dns must be a list");
    out.replica_dns.clear();
    size_t i = 0;
    for (const auto& item : n) {
      const std::string where = "replica_dns[" + std::to_string(i++) + "]";
      if (!item.IsMap()) return r.fail(item, where + " must be a map {name, port, interval_s}");
      if (!r.keys(item, where, {"name", "port", "interval_s", "gpu", "arch"})) return;
      ReplicaDnsConfig d;
      r.text(item["name"], where + ".name", d.name);
      r.integer(item["port"], where + ".port", d.port, 1, 65535);
      r.number(item["interval_s"], where + ".interval_s", d.interval_s, 0.05, 86400);
      r.text(item["gpu"], where + ".gpu", d.gpu);
      r.text(item["arch"], where + ".arch", d.arch);
      if (r.failed()) return;
      if (d.name.empty()) return r.fail(item, where + " needs a name");
      out.replica_dns.push_back(std::move(d));
    }
  }
  r.text(root["dns_server"], "dns_server", out.dns_server);
  if (const YAML::Node n = root["client"]) {
    if (!r.keys(n, "client",
                {"max_header_bytes", "request_timeout_s", "idle_timeout_s", "write_timeout_s",
                 "max_buffered_bytes"})) {
      return;
    }
    ClientLimits& c = out.client;
    r.integer(n["max_header_bytes"], "client.max_header_bytes", c.max_header_bytes, 1024, 1e7);
    r.number(n["request_timeout_s"], "client.request_timeout_s", c.request_timeout_s, 0.01, 3600);
    r.number(n["idle_timeout_s"], "client.idle_timeout_s", c.idle_timeout_s, 0.01, 3600);
    r.number(n["write_timeout_s"], "client.write_timeout_s", c.write_timeout_s, 0.01, 3600);
    r.integer(n["max_buffered_bytes"], "client.max_buffered_bytes", c.max_buffered_bytes, 4096,
              1e10);
  }
}

// Configuration errors are one line: control bytes quoted from the file (a key with a newline
// or NUL in it, yaml-cpp's messages ending in the bad character) are shown as \xNN.
std::string one_line(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

bool parse_number(std::string_view text, double& v) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  return ec == std::errc() && ptr == text.data() + text.size() && std::isfinite(v);
}

}  // namespace

bool parse_config_yaml(std::string_view text, std::string_view source, RouterConfig& out,
                       std::string& error) {
  Reader r(source);
  try {
    const YAML::Node root = YAML::Load(std::string(text));
    if (root.IsNull() || !root.IsDefined()) return true;  // an empty file changes nothing
    read_root(r, root, out);
  } catch (const YAML::Exception& e) {
    error = one_line(std::string(source) + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
    return false;
  }
  if (r.failed()) {
    error = one_line(r.error());
    return false;
  }
  return true;
}

bool load_config_file(const std::string& path, RouterConfig& out, std::string& error) {
  std::ifstream in(path);
  if (!in) {
    error = "cannot read config file " + path;
    return false;
  }
  std::stringstream text;
  text << in.rdbuf();
  return parse_config_yaml(text.str(), path, out, error);
}

bool parse_replica_spec(std::string_view text, ReplicaConfig& out, std::string& error) {
  out = ReplicaConfig{};
  const size_t comma = text.find(',');
  out.url = std::string(text.substr(0, comma));
  std::string_view rest = comma == std::string_view::npos ? "" : text.substr(comma + 1);
  while (!rest.empty()) {
    const size_t next = rest.find(',');
    const std::string_view item = rest.substr(0, next);
    rest = next == std::string_view::npos ? "" : rest.substr(next + 1);
    const size_t eq = item.find('=');
    const std::string_view key = item.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? "" : item.substr(eq + 1);
    if (eq == std::string_view::npos || value.empty()) {
      error = "replica '" + std::string(text) + "': '" + std::string(item) +
              "' is not key=value (weight, gpu, arch)";
      return false;
    }
    if (key == "weight") {
      double w = 0;
      if (!parse_number(value, w) || w < 0) {
        error = "replica '" + std::string(text) + "': weight must be a number >= 0";
        return false;
      }
      out.weight = w;
    } else if (key == "gpu") {
      out.gpu = std::string(value);
    } else if (key == "arch") {
      out.arch = std::string(value);
    } else if (key == "kv_events") {  // issue 15: KV-cache events
      out.kv_events.endpoint = std::string(value);
    } else if (key == "kv_replay") {
      out.kv_events.replay = std::string(value);
    } else {
      error = "replica '" + std::string(text) + "': unknown key '" + std::string(key) +
              "' (known: weight, gpu, arch, kv_events, kv_replay)";
      return false;
    }
  }
  return true;
}

bool apply_flags(const RouteFlags& f, RouterConfig& c, std::string& error) {
  if (f.host) c.host = *f.host;
  if (f.port) c.port = *f.port;
  if (f.admin_host) c.admin_host = *f.admin_host;
  if (f.admin_port) c.admin_port = *f.admin_port;
  if (!f.replicas.empty()) {
    c.replicas.clear();
    for (const std::string& spec : f.replicas) {
      ReplicaConfig rc;
      if (!parse_replica_spec(spec, rc, error)) return false;
      c.replicas.push_back(std::move(rc));
    }
  }
  if (f.policy && *f.policy != c.policy) {
    c.policy = *f.policy;
    c.policy_params.clear();  // the file's parameters belong to another policy
  }
  if (f.policy_params) {
    c.policy_params.clear();
    if (!policy::parse_policy_params(*f.policy_params, c.policy_params, error)) return false;
  }
  if (f.seed) c.seed = *f.seed;
  if (f.scrape_interval_s) c.scrape_interval_s = *f.scrape_interval_s;
  if (f.stale_after_s) c.stale_after_s = *f.stale_after_s;
  if (f.health_interval_s) c.health_interval_s = *f.health_interval_s;
  if (f.retries) c.retries = *f.retries;
  if (f.max_in_flight) c.admission.max_in_flight = *f.max_in_flight;
  if (f.max_in_flight_per_replica)
    c.admission.max_in_flight_per_replica = *f.max_in_flight_per_replica;
  if (f.ttft_slo_s) c.admission.ttft_slo_s = *f.ttft_slo_s;
  if (f.queue_size) c.admission.queue_size = *f.queue_size;
  if (f.queue_timeout_s) c.admission.queue_timeout_s = *f.queue_timeout_s;
  if (!f.api_keys.empty()) c.api_keys = f.api_keys;
  if (f.log_level) c.log_level = *f.log_level;
  if (f.log_format) c.log_format = *f.log_format;
  if (f.access_log) c.access_log = *f.access_log;
  if (f.peer_sync_url) c.peer_sync.url = *f.peer_sync_url;
  if (f.shutdown_grace_s) c.shutdown_grace_s = *f.shutdown_grace_s;
  if (f.upstream_api_key_file) c.upstream_api_key_file = *f.upstream_api_key_file;
  return true;
}

bool validate_replica(ReplicaConfig& replica, std::string& error) {
  std::string url_error;
  const std::optional<http::Url> url = http::parse_url(replica.url, &url_error);
  if (!url) {
    error = url_error;
    return false;
  }
  replica.url = url->str();
  // KV-cache events (issue 15): ZeroMQ addresses the router connects to.
  for (const std::string* e : {&replica.kv_events.endpoint, &replica.kv_events.replay}) {
    if (e->empty()) continue;
    if (e->rfind("tcp://", 0) != 0 && e->rfind("ipc://", 0) != 0) {
      error = "replica " + replica.url + ": kv_events address '" + *e +
              "' must be tcp://host:port or ipc://path";
      return false;
    }
  }
  if (!replica.kv_events.replay.empty() && replica.kv_events.endpoint.empty()) {
    error = "replica " + replica.url + ": kv_events replay needs an endpoint";
    return false;
  }
  if (replica.tls && !url->tls) {
    error = "replica " + replica.url + ": tls applies to https:// replicas only";
    return false;
  }
  if (!(replica.weight >= 0) || !std::isfinite(replica.weight)) {
    error = "replica " + replica.url + ": weight must be a number >= 0";
    return false;
  }
  if (!replica.gpu.empty() || !replica.arch.empty()) {
    engine::EngineConfig ec;
    std::string e;
    const std::string arch = replica.arch.empty() ? "llama-2-7b" : replica.arch;
    const std::string gpu = replica.gpu.empty() ? "h100" : replica.gpu;
    if (!engine::make_config(engine::ProfileSet::builtin(), arch, gpu, ec, e)) {
      error = "replica " + replica.url + ": " + e;
      return false;
    }
  }
  return true;
}

const http::TlsClientOptions& tls_options_for(const RouterConfig& config,
                                              const ReplicaConfig& replica) {
  return replica.tls ? *replica.tls : config.upstream_tls;
}

const RateLimit& rate_limit_for(const RouterConfig& config, std::string_view key) {
  const auto it = config.key_limits.find(std::string(key));
  return it != config.key_limits.end() ? it->second : config.rate_limit;
}

bool is_loopback_host(std::string_view host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

namespace {

// Appends the keys of an api_keys_file: one per line, blank lines and '#' comments skipped.
bool read_api_keys_file(RouterConfig& c, std::string& error) {
  std::ifstream in(c.api_keys_file);
  if (!in) {
    error = "cannot read api_keys_file " + c.api_keys_file;
    return false;
  }
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    const size_t b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos || line[b] == '#') continue;
    const size_t e = line.find_last_not_of(" \t\r");
    const std::string key = line.substr(b, e - b + 1);
    if (key.find_first_of(" \t") != std::string::npos) {
      error = c.api_keys_file + ":" + std::to_string(n) + ": a key must not contain blanks";
      return false;
    }
    c.api_keys.push_back(key);
  }
  if (c.api_keys.empty()) {
    error = "api_keys_file " + c.api_keys_file + " holds no key";
    return false;
  }
  return true;
}

}  // namespace

static bool validate_config_impl(RouterConfig& c, std::string& error);

bool validate_config(RouterConfig& c, std::string& error) {
  if (validate_config_impl(c, error)) return true;
  error = one_line(error);
  return false;
}

// The upstream key file's first line that is neither blank nor a '#' comment (dropin).
static bool read_upstream_key_file(RouterConfig& c, std::string& error) {
  std::ifstream in(c.upstream_api_key_file);
  if (!in) {
    error = "cannot read upstream_api_key_file " + c.upstream_api_key_file;
    return false;
  }
  std::string line;
  while (std::getline(in, line)) {
    const size_t b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos || line[b] == '#') continue;
    const size_t e = line.find_last_not_of(" \t\r");
    c.upstream_api_key = line.substr(b, e - b + 1);
    if (c.upstream_api_key.find_first_of(" \t") != std::string::npos) {
      error =
          "upstream_api_key_file " + c.upstream_api_key_file + ": the key must not contain blanks";
      return false;
    }
    return true;
  }
  error = "upstream_api_key_file " + c.upstream_api_key_file + " holds no key";
  return false;
}

static bool validate_config_impl(RouterConfig& c, std::string& error) {
  if (!c.api_keys_file.empty() && !read_api_keys_file(c, error)) return false;
  if (!c.upstream_api_key_file.empty() && !read_upstream_key_file(c, error)) return false;
  c.upstream_api_key_file.clear();  // read once, like api_keys_file
  c.api_keys_file.clear();          // read once (validate may run again on the same config)
  if (c.tls_cert_file.empty() != c.tls_key_file.empty()) {
    error = "tls needs both cert_file and key_file";
    return false;
  }
  for (const std::string* f : {&c.tls_cert_file, &c.tls_key_file}) {
    if (!f->empty() && !std::ifstream(*f)) {
      error = "cannot read TLS file " + *f;
      return false;
    }
  }
  if (c.admin_port >= 0 && !is_loopback_host(c.admin_host) && c.admin_token.empty()) {
    error = "the admin listener on " + c.admin_host +
            " needs admin.token (it can add, drain and remove replicas); bind it to 127.0.0.1 "
            "or set a token";
    return false;
  }
  std::set<std::string> seen;
  for (ReplicaConfig& r : c.replicas) {
    if (!validate_replica(r, error)) return false;
    if (!seen.insert(r.url).second) {
      error = "duplicate replica " + r.url;
      return false;
    }
    // https:// replicas: their TLS files load (the same call the router makes).
    if (r.url.rfind("https://", 0) == 0) {
      std::string tls_error;
      if (!http::make_tls_client_context(tls_options_for(c, r), tls_error)) {
        error = "replica " + r.url + ": " + tls_error;
        return false;
      }
    }
  }
  if (!validate_aliases(c.model_aliases, error)) return false;
  std::string policy_error;
  if (!policy::make_policy(c.policy, c.policy_params, policy_error)) {
    error = policy_error;
    return false;
  }
  auto check = [&](bool ok, const std::string& message) {
    if (!ok && error.empty()) error = message;
    return ok;
  };
  error.clear();
  check(c.port >= 0 && c.port <= 65535, "port must be in [0, 65535]");
  check(c.admin_port >= -1 && c.admin_port <= 65535, "admin port must be in [-1, 65535]");
  check(!c.host.empty(), "host must not be empty");
  check(c.scrape_interval_s > 0, "scrape interval must be > 0");
  check(c.stale_after_s > 0, "stale bound must be > 0");
  check(c.health_interval_s > 0, "health interval must be > 0");
  check(c.retries >= 0 && c.retries <= 100, "retries must be in [0, 100]");
  check(c.admission.max_in_flight >= 0, "max in-flight must be >= 0");
  check(c.admission.max_in_flight_per_replica >= 0, "max in-flight per replica must be >= 0");
  check(c.admission.ttft_slo_s >= 0, "TTFT SLO must be >= 0");
  check(c.admission.queue_size >= 0, "queue size must be >= 0");
  check(c.admission.queue_timeout_s > 0, "queue timeout must be > 0");
  check(c.shutdown_grace_s >= 0, "shutdown grace must be >= 0");
  static const std::set<std::string> kLevels = {"trace", "debug",    "info", "warn",
                                                "error", "critical", "off"};
  check(kLevels.count(c.log_level) > 0,
        "log level must be one of trace, debug, info, warn, error, critical, off; got '" +
            c.log_level + "'");
  check(c.log_format == "text" || c.log_format == "json",
        "log format must be text or json; got '" + c.log_format + "'");
  check(!c.access_log.empty(), "access log must be a file path, '-' (stdout) or 'off'");
  for (const ReplicaDnsConfig& d : c.replica_dns) {  // replicas from DNS (issue 13)
    ReplicaConfig probe;
    probe.url = "http://127.0.0.1:" + std::to_string(d.port);
    probe.gpu = d.gpu;
    probe.arch = d.arch;
    std::string e;
    check(validate_replica(probe, e), "replica_dns " + d.name + ": " + e);
  }
  if (!c.dns_server.empty()) {
    const size_t colon = c.dns_server.rfind(':');
    const std::string host = c.dns_server.substr(0, colon == std::string::npos ? 0 : colon);
    const std::string port = colon == std::string::npos ? "" : c.dns_server.substr(colon + 1);
    check(!host.empty() && host.find_first_not_of("0123456789.") == std::string::npos &&
              !port.empty() && port.find_first_not_of("0123456789") == std::string::npos &&
              port.size() <= 5 && std::stoi(port) > 0 && std::stoi(port) <= 65535,
          "dns_server must be IPv4ADDRESS:PORT, e.g. 127.0.0.1:53; got '" + c.dns_server + "'");
  }
  if (c.peer_sync.enabled()) {  // peer sync (issue 13)
    const std::string& u = c.peer_sync.url;
    check(u.rfind("nats://", 0) == 0 && u.size() > 7 && u.find_first_of(" \t") == std::string::npos,
          "peer_sync.url must be nats://HOST:PORT; got '" + u + "'");
    const std::string& cl = c.peer_sync.cluster;
    check(!cl.empty() && cl.size() <= 64 &&
              cl.find_first_not_of(
                  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") ==
                  std::string::npos,
          "peer_sync.cluster must be 1-64 letters, digits, '_' or '-'; got '" + cl + "'");
    check(c.peer_sync.peer_timeout_s > c.peer_sync.heartbeat_s,
          "peer_sync.peer_timeout_s must be longer than peer_sync.heartbeat_s");
  }
  return error.empty();
}

}  // namespace eta::router
