#include "router/core/settings.hpp"

#include <charconv>
#include <cmath>
#include <sstream>

#include "router/core/config.hpp"

namespace eta::router {

namespace {

constexpr double kMaxSeconds = 86400.0 * 365;
constexpr Reload kLive = Reload::kLive;
constexpr Reload kRestart = Reload::kRestart;

// A reference to one field of RouterConfig, as a plain function pointer.
#define ETA_FIELD(member) \
  SettingField(+[](RouterConfig& c) -> decltype(auto) { return (c.member); })

SettingType type_of(const SettingField& field) {
  switch (field.index()) {
    case 1:
      return SettingType::kString;
    case 2:
      return SettingType::kBool;
    case 3:
    case 4:
      return SettingType::kInt;
    default:
      return SettingType::kNumber;
  }
}

// A string or bool row.
Setting plain(std::string_view path, std::string_view flag, Reload reload, std::string_view help,
              SettingField field) {
  Setting s;
  s.path = path;
  s.flag = flag;
  s.type = type_of(field);
  s.reload = reload;
  s.help = help;
  s.field = field;
  return s;
}

// A number or integer row with its inclusive range.
Setting ranged(std::string_view path, std::string_view flag, double min, double max, Reload reload,
               std::string_view help, SettingField field) {
  Setting s = plain(path, flag, reload, help, field);
  s.min = min;
  s.max = max;
  return s;
}

// A list or map read by hand in config.cpp.
Setting compound(std::string_view path, std::string_view flag, SettingType type, Reload reload,
                 std::string_view help) {
  Setting s;
  s.path = path;
  s.flag = flag;
  s.type = type;
  s.reload = reload;
  s.help = help;
  return s;
}

// clang-format off
// Listeners, policy, polling, timeouts, admission and late binding.
std::vector<Setting> routing_rows() {
  return {
    plain("listen.host", "--host", kRestart, "address the client listener binds", ETA_FIELD(listen.host)),
    ranged("listen.port", "--port", 0, 65535, kRestart, "port of the client listener (0: any free port)", ETA_FIELD(listen.port)),
    plain("admin.host", "--admin-host", kRestart, "address of the admin API listener (off loopback it needs admin.token)", ETA_FIELD(admin.host)),
    ranged("admin.port", "--admin-port", -1, 65535, kRestart, "port of the admin API (0: any free port; -1: no admin API)", ETA_FIELD(admin.port)),
    plain("admin.token", "", kLive, "bearer token the admin API requires (empty: none); required when admin.host is not a loopback address", ETA_FIELD(admin.token)),
    compound("replicas", "--replica", SettingType::kList, kLive, "the replicas: each a URL or {url, weight, gpu, arch, kv_events, api_key, tls}; the flag takes URL[,weight=W][,gpu=G][,arch=A][,kv_events=tcp://H:P][,kv_replay=tcp://H:P], repeated, and replaces the file's. A reload adds, removes and revives replicas; a change of weight, gpu, arch or tls needs a remove and add"),
    plain("policy.name", "--policy", kLive, "routing policy: round-robin, random, least-request, power-of-two, session, llm-d, cache-aware, eta (`policy: NAME` is short for this); another name drops the file's params. A reload rebuilds the policy when its name, params or seed change", ETA_FIELD(policy.name)),
    compound("policy.params", "--policy-params", SettingType::kMap, kLive, "the policy's parameters (docs/policies.md); the flag takes k=v,k2=v2 and replaces the file's"),
    ranged("policy.seed", "--seed", 0, 9.0e15, kLive, "seed of the policy's random choices", ETA_FIELD(policy.seed)),
    ranged("scrape.interval_s", "--scrape-interval-s", 0.001, 3600, kLive, "seconds between /metrics scrapes of each replica", ETA_FIELD(scrape.interval_s)),
    ranged("scrape.timeout_s", "", 0.001, 3600, kLive, "timeout of one /metrics scrape", ETA_FIELD(scrape.timeout_s)),
    ranged("scrape.max_body_bytes", "", 1024, 1e9, kLive, "largest /metrics body read", ETA_FIELD(scrape.max_body_bytes)),
    ranged("scrape.stale_after_s", "--stale-after-s", 0.001, kMaxSeconds, kRestart, "scrapes older than this are ignored by policies", ETA_FIELD(scrape.stale_after_s)),
    ranged("health.interval_s", "--health-interval-s", 0.001, 3600, kLive, "seconds between /health checks of each replica", ETA_FIELD(health.interval_s)),
    ranged("health.timeout_s", "", 0.001, 3600, kLive, "timeout of one /health check", ETA_FIELD(health.timeout_s)),
    ranged("health.failure_threshold", "", 1, 1000, kRestart, "consecutive failed checks that make a replica unroutable", ETA_FIELD(health.failure_threshold)),
    ranged("health.success_threshold", "", 1, 1000, kRestart, "consecutive good checks that make it routable again", ETA_FIELD(health.success_threshold)),
    ranged("models.refresh_interval_s", "", 0.01, kMaxSeconds, kLive, "seconds between /v1/models polls of each replica", ETA_FIELD(models.refresh_interval_s)),
    compound("models.aliases", "", SettingType::kList, kLive, "model aliases: [{name, served_names: [...]}], a public name served by replicas under other names (`models: [...]` is short for this)"),
    ranged("timeouts.connect_s", "", 0.001, 3600, kLive, "connecting to a replica", ETA_FIELD(timeouts.connect_s)),
    ranged("timeouts.first_byte_s", "", 0, kMaxSeconds, kLive, "request sent to response head (0: none)", ETA_FIELD(timeouts.first_byte_s)),
    ranged("timeouts.idle_s", "", 0, kMaxSeconds, kLive, "longest gap between bytes received from a replica (0: none)", ETA_FIELD(timeouts.idle_s)),
    ranged("retries", "--retries", 0, 100, kLive, "extra attempts on other replicas when one fails before any byte is relayed", ETA_FIELD(retries)),
    ranged("admission.max_in_flight", "--max-in-flight", 0, 1e9, kLive, "requests in flight through the router before it sheds (0: no bound)", ETA_FIELD(admission.max_in_flight)),
    ranged("admission.max_in_flight_per_replica", "--max-in-flight-per-replica", 0, 1e9, kLive, "requests in flight per replica before it counts as full (0: no bound)", ETA_FIELD(admission.max_in_flight_per_replica)),
    ranged("admission.ttft_slo_s", "--ttft-slo-s", 0, kMaxSeconds, kLive, "shed (429) when every replica's predicted TTFT exceeds this (0: off)", ETA_FIELD(admission.ttft_slo_s)),
    ranged("admission.queue_size", "--queue-size", 0, 1e9, kLive, "hold up to this many requests while at capacity instead of 429 (0: no queue)", ETA_FIELD(admission.queue_size)),
    ranged("admission.queue_timeout_s", "--queue-timeout-s", 0.001, kMaxSeconds, kLive, "a held request gets 429 after this long", ETA_FIELD(admission.queue_timeout_s)),
    ranged("admission.retry_after_s", "", 0, 86400, kLive, "Retry-After of a 429", ETA_FIELD(admission.retry_after_s)),
    plain("late_binding.enabled", "--late-binding", kLive, "hold a request at the router while every replica would only queue it (late_binding.rule) and send it to the first replica that frees", ETA_FIELD(late_binding.enabled)),
    ranged("late_binding.max_hold_s", "", 0, 60, kLive, "the longest a request is held by late binding; then it goes to the policy's pick", ETA_FIELD(late_binding.max_hold_s)),
    plain("late_binding.rule", "", kLive, "late binding's hold rule: busy (every replica busy: a waiting queue, full slots, more pending prefill than one step takes, or over late_binding.ttft_threshold_s) or wait (the pooled queue: every replica would make the request wait longer than late_binding.wait_margin_s; a held request then goes to the replica that starts it first)", ETA_FIELD(late_binding.rule)),
    ranged("late_binding.ttft_threshold_s", "", 0, kMaxSeconds, kLive, "late binding, rule busy: a replica predicted over this TTFT counts as busy too (0: only a waiting queue makes it busy)", ETA_FIELD(late_binding.ttft_threshold_s)),
    ranged("late_binding.wait_margin_s", "", 0, 60, kLive, "late binding, rule wait: a replica predicted to make the request wait no longer than this can take it now", ETA_FIELD(late_binding.wait_margin_s)),
    ranged("late_binding.wait_fraction", "", 0, 1000, kLive, "late binding, rule wait: ... or no longer than this fraction of the rest of its predicted TTFT there (0: the margin alone)", ETA_FIELD(late_binding.wait_fraction)),
    ranged("late_binding.max_held", "", 0, 1e9, kLive, "late binding: requests held at once (more are sent at arrival)", ETA_FIELD(late_binding.max_held)),
  };
}

// Keys and limits, logs, client limits, TLS, KV events, peer sync, DNS, upstream auth, estimates.
std::vector<Setting> service_rows() {
  return {
    compound("api_keys", "--api-key", SettingType::kList, kLive, "require 'Authorization: Bearer KEY' on /v1/*: each a key or {key, requests_per_minute, tokens_per_minute}; the flag is repeated and replaces the file's"),
    plain("api_keys_file", "", kLive, "more keys, one a line ('#' comments)", ETA_FIELD(api_keys_file)),
    ranged("rate_limit.requests_per_minute", "", 0, 1e9, kLive, "every key's request rate unless its api_keys entry sets one (0: none)", ETA_FIELD(rate_limit.requests_per_minute)),
    ranged("rate_limit.tokens_per_minute", "", 0, 1e12, kLive, "every key's token rate unless its api_keys entry sets one (0: none)", ETA_FIELD(rate_limit.tokens_per_minute)),
    ranged("threads", "--threads", 0, RouterConfig::kMaxThreads, kRestart, "worker threads of the client side, each with its own listener on the port (SO_REUSEPORT), event loop and upstream pools; the routing core is shared under one lock (0: the machine's cores, at most 16)", ETA_FIELD(threads)),
    ranged("decision_log_size", "", 0, 1e7, kRestart, "routing decisions kept for GET /admin/decisions", ETA_FIELD(decision_log_size)),
    plain("log_level", "--log-level", kLive, "trace, debug, info, warn, error, critical, off", ETA_FIELD(log_level)),
    plain("log_format", "--log-format", kRestart, "format of the router's log lines on stderr: text or json", ETA_FIELD(log_format)),
    plain("access_log", "--access-log", kRestart, "one JSON line per request to this file ('-': stdout; off: none)", ETA_FIELD(access_log)),
    ranged("max_body_bytes", "", 1024, 1e10, kRestart, "largest request body accepted (413 above)", ETA_FIELD(max_body_bytes)),
    ranged("shutdown_grace_s", "--shutdown-grace-s,--shutdown-grace", 0, kMaxSeconds, kLive, "on SIGTERM, seconds in-flight requests may take to finish before they are ended", ETA_FIELD(shutdown_grace_s)),
    ranged("client.max_header_bytes", "", 1024, 1e7, kRestart, "a client's request line and headers (431 above)", ETA_FIELD(client.max_header_bytes)),
    ranged("client.request_timeout_s", "", 0.01, 3600, kRestart, "a request's head and body must arrive within this (408 after)", ETA_FIELD(client.request_timeout_s)),
    ranged("client.idle_timeout_s", "", 0.01, 3600, kRestart, "a keep-alive client connection with no request is closed after this", ETA_FIELD(client.idle_timeout_s)),
    ranged("client.write_timeout_s", "", 0.01, 3600, kRestart, "a write to a client with no progress this long closes it", ETA_FIELD(client.write_timeout_s)),
    ranged("client.max_buffered_bytes", "", 4096, 1e10, kRestart, "unsent response bytes before the client is dropped", ETA_FIELD(client.max_buffered_bytes)),
    plain("tls.cert_file", "", kRestart, "TLS for clients: PEM certificate chain (with tls.key_file)", ETA_FIELD(tls.cert_file)),
    plain("tls.key_file", "", kRestart, "TLS for clients: PEM private key (with tls.cert_file)", ETA_FIELD(tls.key_file)),
    plain("upstream_tls.ca_file", "", kLive, "https:// replicas without their own tls: PEM CA file (empty: the system's store)", ETA_FIELD(upstream_tls.ca_file)),
    plain("upstream_tls.cert_file", "", kLive, "https:// replicas: client certificate (with key_file)", ETA_FIELD(upstream_tls.cert_file)),
    plain("upstream_tls.key_file", "", kLive, "https:// replicas: client key (with cert_file)", ETA_FIELD(upstream_tls.key_file)),
    plain("upstream_tls.verify", "", kLive, "verify the replicas' certificates and host names", ETA_FIELD(upstream_tls.verify)),
    plain("kv_events.endpoint", "", kLive, "KV-cache events of replicas without their own: PUB socket pattern, {host} is the replica's host (e.g. tcp://{host}:5557)", ETA_FIELD(kv_events.endpoint)),
    plain("kv_events.replay", "", kLive, "their replay ROUTER socket pattern (empty: none)", ETA_FIELD(kv_events.replay)),
    plain("kv_events.topic", "", kLive, "subscription prefix (empty: every topic)", ETA_FIELD(kv_events.topic)),
    ranged("kv_events_tokenize.min_prompt_tokens", "--tokenize-min-prompt-tokens", 0, 1e9, kLive, "while a replica serving the model has live KV events, prompts of at least this many (estimated) tokens are tokenized by a replica's POST /tokenize to match the events exactly (0: never; token-id prompts are exact already)", ETA_FIELD(kv_events_tokenize.min_prompt_tokens)),
    ranged("kv_events_tokenize.timeout_s", "--tokenize-timeout-s", 0.0001, 60, kLive, "the most a request waits for /tokenize before it is routed on the estimate", ETA_FIELD(kv_events_tokenize.timeout_s)),
    ranged("kv_events_tokenize.cache_tokens", "", 0, 1e10, kLive, "recent prompts' tokens kept so that a repeated prompt is not tokenized again, in tokens (0: no cache)", ETA_FIELD(kv_events_tokenize.cache_tokens)),
    plain("peer_sync.url", "--peer-sync", kRestart, "share this router's work with the other routers of its cluster over NATS: nats://HOST:PORT (empty: off)", ETA_FIELD(peer_sync.url)),
    plain("peer_sync.cluster", "", kRestart, "routers of the same cluster share subject eta.peer.CLUSTER", ETA_FIELD(peer_sync.cluster)),
    ranged("peer_sync.heartbeat_s", "", 0.01, 60, kRestart, "a heartbeat at least this often", ETA_FIELD(peer_sync.heartbeat_s)),
    ranged("peer_sync.peer_timeout_s", "", 0.05, 3600, kRestart, "a peer silent this long: its requests leave the ledger (longer than heartbeat_s)", ETA_FIELD(peer_sync.peer_timeout_s)),
    ranged("peer_sync.entry_ttl_s", "", 0.1, kMaxSeconds, kRestart, "a peer's request without its finish this long is dropped", ETA_FIELD(peer_sync.entry_ttl_s)),
    compound("replica_dns", "", SettingType::kList, kRestart, "replicas from DNS: [{name, port, interval_s, gpu, arch}], every A/AAAA record of name"),
    plain("dns_server", "", kRestart, "the DNS server for replica_dns: IPv4[:PORT], IPv6 or [IPv6]:PORT (port 53 if none; quote brackets in YAML); empty: resolv.conf", ETA_FIELD(dns_server)),
    plain("upstream_api_key", "", kLive, "key sent to replicas without their own api_key as 'Authorization: Bearer' (vLLM --api-key)", ETA_FIELD(upstream_api_key)),
    plain("upstream_api_key_file", "--upstream-api-key-file", kLive, "file holding upstream_api_key, the key sent to the replicas: its first non-comment line", ETA_FIELD(upstream_api_key_file)),
    ranged("request_estimates.image_tokens", "", 0, 1e7, kLive, "prompt tokens counted for one image part", ETA_FIELD(request_estimates.image_tokens)),
    ranged("request_estimates.audio_tokens", "", 0, 1e7, kLive, "prompt tokens counted for one audio part", ETA_FIELD(request_estimates.audio_tokens)),
    ranged("request_estimates.video_tokens", "", 0, 1e7, kLive, "prompt tokens counted for one video part", ETA_FIELD(request_estimates.video_tokens)),
    ranged("request_estimates.file_tokens", "", 0, 1e7, kLive, "prompt tokens counted for one file part", ETA_FIELD(request_estimates.file_tokens)),
    plain("stream_usage", "", kLive, "count streams exactly by asking replicas for continuous usage stats (the client still sees the stream it asked for)", ETA_FIELD(stream_usage)),
  };
}

std::vector<Setting> make_table() {
  std::vector<Setting> t = routing_rows();
  for (Setting& s : service_rows()) t.push_back(std::move(s));
  for (Setting& s : t) {
    if (s.path == "replica_dns") {
      s.same = [](const RouterConfig& a, const RouterConfig& b) { return a.replica_dns == b.replica_dns; };
      s.copy = [](const RouterConfig& from, RouterConfig& to) { to.replica_dns = from.replica_dns; };
    }
  }
  return t;
}
// clang-format on

#undef ETA_FIELD

std::string format_number(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
  std::ostringstream s;
  s << v;
  return s.str();
}

bool parse_number(std::string_view text, double& v) {
  if (text.empty()) return false;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  if (*begin == '+') ++begin;
  auto [ptr, ec] = std::from_chars(begin, end, v);
  return ec == std::errc() && ptr == end && std::isfinite(v);
}

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

}  // namespace

std::span<const Setting> settings() {
  static const std::vector<Setting> table = make_table();
  return table;
}

const Setting* find_setting(std::string_view path) {
  for (const Setting& s : settings())
    if (s.path == path) return &s;
  return nullptr;
}

std::string_view setting_section(const Setting& s) {
  const size_t dot = s.path.find('.');
  return dot == std::string_view::npos ? std::string_view{} : s.path.substr(0, dot);
}

std::string_view setting_key(const Setting& s) {
  const size_t dot = s.path.find('.');
  return dot == std::string_view::npos ? s.path : s.path.substr(dot + 1);
}

std::string_view setting_flag(const Setting& s) {
  return s.flag.substr(0, s.flag.find(','));
}

std::string_view setting_type_name(SettingType type) {
  switch (type) {
    case SettingType::kString:
      return "string";
    case SettingType::kBool:
      return "bool";
    case SettingType::kInt:
      return "integer";
    case SettingType::kNumber:
      return "number";
    case SettingType::kList:
      return "list";
    case SettingType::kMap:
      return "map";
  }
  return "";
}

std::string setting_range(const Setting& s) {
  if (s.type != SettingType::kInt && s.type != SettingType::kNumber) return "";
  return "[" + format_number(s.min) + ", " + format_number(s.max) + "]";
}

bool check_number(const Setting& s, std::string_view text, std::string_view name, double& v,
                  std::string& error) {
  if (!parse_number(text, v)) {
    error = std::string(name) + " must be a number, got '" + std::string(text) + "'";
    return false;
  }
  if (!(v >= s.min && v <= s.max)) {
    error = std::string(name) + " must be in " + setting_range(s) + ", got " + std::string(text);
    return false;
  }
  if (s.type == SettingType::kInt && v != std::floor(v)) {
    error = std::string(name) + " must be an integer";
    return false;
  }
  return true;
}

bool set_setting(const Setting& s, std::string_view text, std::string_view name,
                 RouterConfig& config, std::string& error) {
  const std::string who(name);
  return std::visit(Overloaded{
                        [&](std::monostate) {
                          error = who + " is a " + std::string(setting_type_name(s.type)) +
                                  ", not a value";
                          return false;
                        },
                        [&](std::string& (*f)(RouterConfig&)) {
                          f(config) = std::string(text);
                          return true;
                        },
                        [&](bool& (*f)(RouterConfig&)) {
                          if (text == "true" || text == "yes" || text == "on") {
                            f(config) = true;
                          } else if (text == "false" || text == "no" || text == "off") {
                            f(config) = false;
                          } else {
                            error = who + " must be true or false";
                            return false;
                          }
                          return true;
                        },
                        [&](auto f) {  // int, uint64_t, double
                          double v = 0;
                          if (!check_number(s, text, name, v, error)) return false;
                          using T = std::remove_reference_t<decltype(f(config))>;
                          f(config) = static_cast<T>(v);
                          return true;
                        },
                    },
                    s.field);
}

std::string setting_value(const Setting& s, const RouterConfig& config) {
  // The accessors take a non-const RouterConfig; they only return a reference, read here.
  RouterConfig& c = const_cast<RouterConfig&>(config);
  return std::visit(
      Overloaded{
          [](std::monostate) { return std::string(); },
          [&](std::string& (*f)(RouterConfig&)) { return f(c); },
          [&](bool& (*f)(RouterConfig&)) { return std::string(f(c) ? "true" : "false"); },
          [&](auto f) { return format_number(static_cast<double>(f(c))); },
      },
      s.field);
}

bool setting_in_range(const Setting& s, const RouterConfig& config, std::string& error) {
  RouterConfig& c = const_cast<RouterConfig&>(config);  // read only (see setting_value)
  const double v = std::visit(Overloaded{
                                  [](std::monostate) { return 0.0; },
                                  [](std::string& (*)(RouterConfig&)) { return 0.0; },
                                  [](bool& (*)(RouterConfig&)) { return 0.0; },
                                  [&](auto f) { return static_cast<double>(f(c)); },
                              },
                              s.field);
  if (s.type != SettingType::kInt && s.type != SettingType::kNumber) return true;
  if (v >= s.min && v <= s.max) return true;
  error = std::string(s.path) + " must be in " + setting_range(s) + ", got " + setting_value(s, c);
  return false;
}

std::vector<std::string> keep_restart_only(const RouterConfig& running, RouterConfig& next) {
  RouterConfig& from = const_cast<RouterConfig&>(running);  // read only (see setting_value)
  std::vector<std::string> kept;
  for (const Setting& s : settings()) {
    if (s.reload != Reload::kRestart) continue;
    const bool changed = std::visit(Overloaded{
                                        [&](std::monostate) {
                                          if (s.same(running, next)) return false;
                                          s.copy(running, next);
                                          return true;
                                        },
                                        [&](auto f) {
                                          if (f(from) == f(next)) return false;
                                          f(next) = f(from);
                                          return true;
                                        },
                                    },
                                    s.field);
    if (changed) kept.emplace_back(s.path);
  }
  return kept;
}

std::string settings_reference_markdown() {
  std::string out =
      "# `eta route` settings\n\n"
      "<!-- Generated from the settings table (src/router/core/settings.cpp) by\n"
      "     `eta route --print-settings-reference > docs/settings.md`; the unit test\n"
      "     SettingsReference.DocsMatchTheTable fails when this file and the table differ. -->\n\n"
      "Every setting is a path in the YAML file given with `--config`: `scrape.interval_s` is\n"
      "`scrape: {interval_s: 0.1}`. A setting with a flag can also be set on the command line;\n"
      "the flag overrides the file, with the same type and range. Values out of range, unknown\n"
      "keys and values of the wrong type stop `eta route` with one line naming the setting\n"
      "(exit code 2).\n\n"
      "Reload (SIGHUP reads the file again, with the same flags over it): `live` settings take\n"
      "effect; `restart` ones keep their running value until the router restarts, with one\n"
      "warning per setting (`reload: a change of PATH needs a restart; not applied`).\n\n"
      "| Setting | Flag | Type | Range | Default | Reload | Description |\n"
      "|---|---|---|---|---|---|---|\n";
  const RouterConfig defaults;
  for (const Setting& s : settings()) {
    std::string flags;
    std::string_view rest = s.flag;
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      flags += (flags.empty() ? "`" : ", `") + std::string(rest.substr(0, comma)) + "`";
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
    std::string def;
    if (!std::holds_alternative<std::monostate>(s.field))
      def = "`" + setting_value(s, defaults) + "`";
    if (def == "``") def = "\"\"";
    out += "| `" + std::string(s.path) + "` | " + flags + " | " +
           std::string(setting_type_name(s.type)) + " | " + setting_range(s) + " | " + def + " | " +
           (s.reload == Reload::kLive ? "live" : "restart") + " | " + std::string(s.help) + " |\n";
  }
  return out;
}

}  // namespace eta::router
