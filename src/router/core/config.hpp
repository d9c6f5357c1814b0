// `eta route` configuration: everything the command line says and more, from a YAML file
// (yaml-cpp), with flags overriding the file. Loading and validation are pure (no networking;
// library eta_router_core), so every configuration error is unit-tested: each produces one line
// naming the problem, and the command exits with code 2. Every setting is a row of the table in
// core/settings.hpp, which drives the YAML reader, the flags and the reload diff, and generates
// docs/settings.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/tls_options.hpp"
#include "http/url.hpp"
#include "openai/extract.hpp"
#include "policy/registry.hpp"
#include "router/aliases.hpp"
#include "router/core/admission_config.hpp"
#include "router/rate_limit.hpp"

namespace eta::router {

// Where a replica publishes vLLM's KV-cache events (issue 15; src/router/kv_events.hpp).
struct KvEventsEndpoints {
  std::string endpoint;  // its PUB socket, e.g. tcp://host:5557; empty: no events
  std::string replay;    // its replay ROUTER socket, e.g. tcp://host:5558; empty: none
  std::string topic;     // subscription prefix; empty: every topic
  bool operator==(const KvEventsEndpoints&) const = default;
};

// Exact prompt tokens for matching KV-cache events (issue 15, item 3; core/tokenize.hpp): while
// a replica serving the model has live events, a prompt of at least min_prompt_tokens (the toy
// tokenizer's estimate) is tokenized by that model's replica (POST /tokenize) before it is
// routed; the request waits at most timeout_s for it, then goes on with the estimate.
struct KvTokenizeConfig {
  int min_prompt_tokens = 256;      // 0: never
  double timeout_s = 0.002;         // the most a request waits for the tokens
  uint64_t cache_tokens = 1000000;  // recent prompt -> tokens kept, in tokens (0: no cache)
  bool operator==(const KvTokenizeConfig&) const = default;
};

struct ReplicaConfig {
  std::string url;      // canonical http::Url::str() after validation, e.g. http://127.0.0.1:8001
  double weight = 1.0;  // relative capacity hint (random, session)
  std::string gpu;      // GPU profile seeding the speed model ("" = h100)
  std::string arch;     // model shape for that profile ("" = llama-2-7b)
  KvEventsEndpoints kv_events;  // KV-cache events (issue 15); empty: the router's own index
  // https:// replicas: this replica's TLS settings (unset: RouterConfig::upstream_tls).
  std::optional<http::TlsClientOptions> tls;
  // Upstream auth (dropin): the replica's own key (vLLM --api-key), sent as "Authorization:
  // Bearer"; empty: RouterConfig::upstream_api_key. Never logged or shown.
  std::string api_key;
};

// Limits on client connections (the client listener's http::ServerOptions).
struct ClientLimits {
  uint64_t max_header_bytes = 16 * 1024;    // request line + headers (431 above)
  double request_timeout_s = 30;            // head and body must arrive within this (408 after)
  double idle_timeout_s = 5;                // keep-alive connection with no request: closed
  double write_timeout_s = 60;              // a write with no progress this long closes
  uint64_t max_buffered_bytes = 16u << 20;  // unsent response bytes before the client is dropped
  bool operator==(const ClientLimits&) const = default;
};

// Live peer sync between routers over NATS (issue 13; src/router/peer_link.*). Off without url.
struct PeerSyncConfig {
  std::string url;              // nats://host:port; "" = off
  std::string cluster = "eta";  // routers with the same cluster share subject eta.peer.<cluster>
  double heartbeat_s = 0.5;     // a heartbeat at least this often
  double peer_timeout_s = 2.0;  // a peer silent this long: its requests leave the ledger
  double entry_ttl_s = 900;     // a peer's request without its finish this long: dropped
  bool enabled() const { return !url.empty(); }
  bool operator==(const PeerSyncConfig&) const = default;
};

// Replicas from DNS (issue 13; src/router/discovery.*): every A/AAAA record of `name`.
struct ReplicaDnsConfig {
  std::string name;
  int port = 8000;
  double interval_s = 5;
  std::string gpu;  // as a replica's gpu / arch ("" = defaults)
  std::string arch;
  bool operator==(const ReplicaDnsConfig&) const = default;
};

struct ListenConfig {
  std::string host = "127.0.0.1";
  int port = 8000;  // 0: any free port
};

struct AdminConfig {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: any free port; -1: no admin listener
  // Bearer token the admin listener requires (empty: none). Required when host is not a
  // loopback address.
  std::string token;
};

struct PolicyConfig {
  std::string name = "eta";
  policy::PolicyParams params;
  uint64_t seed = 0;  // the policy's random generator
};

struct ScrapeConfig {
  double interval_s = 0.05;
  double timeout_s = 1.0;
  uint64_t max_body_bytes = 4u << 20;
  double stale_after_s = 2.0;  // scrapes older than this are ignored by policies
};

struct HealthConfig {
  double interval_s = 1.0;
  double timeout_s = 1.0;
  int failure_threshold = 2;  // consecutive failures that make a replica unroutable
  int success_threshold = 1;  // consecutive successes that make it routable again
};

struct ModelsConfig {
  double refresh_interval_s = 5.0;  // /v1/models refresh
  // Model aliases: a public name served by replicas under other names (router/aliases.hpp).
  std::vector<ModelAlias> aliases;
};

struct TimeoutsConfig {
  double connect_s = 2.0;
  double first_byte_s = 300;  // request sent -> response head; 0 = none
  double idle_s = 300;        // longest gap between received bytes; 0 = none
};

// TLS for clients (both or neither): PEM certificate chain and private key.
struct ServerTlsConfig {
  std::string cert_file;
  std::string key_file;
};

// Nested as the YAML file is (docs/settings.md lists every setting; core/settings.hpp is the
// table that reads, overlays, reloads and documents them).
struct RouterConfig {
  ListenConfig listen;
  AdminConfig admin;
  std::vector<ReplicaConfig> replicas;
  PolicyConfig policy;
  ScrapeConfig scrape;
  HealthConfig health;
  ModelsConfig models;
  TimeoutsConfig timeouts;
  int retries = 2;  // extra attempts on other replicas (before any byte relayed)

  AdmissionConfig admission;
  LateBindingConfig late_binding;     // issue 2.4: hold requests while every replica is busy
  std::vector<std::string> api_keys;  // non-empty: /v1/* require "Authorization: Bearer <key>"
  std::string api_keys_file;          // more keys, one per line ('#' comments); read by validate
  RateLimit rate_limit;               // every key's limit unless key_limits names it
  std::map<std::string, RateLimit> key_limits;  // from api_keys entries {key, ..._per_minute}

  // Worker threads, each with its own client listener (SO_REUSEPORT), event loop and upstream
  // pools; one shared core under one lock (router_core.hpp). 0: the machine's cores, at most
  // kMaxThreads.
  int threads = 0;
  static constexpr int kMaxThreads = 16;
  uint64_t decision_log_size = 1000;    // decisions kept for GET /admin/decisions
  std::string log_level = "info";       // trace, debug, info, warn, error, critical, off
  std::string log_format = "text";      // the router's own log lines on stderr: text or json
  std::string access_log = "off";       // one JSON line per request: a file path, "-" or "off"
  uint64_t max_body_bytes = 32u << 20;  // largest request body accepted (413 above)
  // SIGTERM: stop accepting, let in-flight requests finish for up to this long, then end the
  // rest (streams get an error event) and exit 0.
  double shutdown_grace_s = 30;
  ClientLimits client;
  ServerTlsConfig tls;
  // KV-cache events (issue 15): a pattern for replicas without kv_events of their own; "{host}"
  // stands for the replica URL's host (e.g. tcp://{host}:5557). Empty: none.
  KvEventsEndpoints kv_events;
  KvTokenizeConfig kv_events_tokenize;
  // TLS to https:// replicas without their own `tls` (CA file or the system store, optional
  // client certificate, verification on by default).
  http::TlsClientOptions upstream_tls;

  // Upstream auth (dropin): the key sent to every replica without its own api_key (forwarded
  // requests and /v1/models polls). upstream_api_key_file: its first non-comment line, read by
  // validate_config into upstream_api_key.
  std::string upstream_api_key;
  std::string upstream_api_key_file;
  // Request reading (dropin): token estimates of multimodal parts, and whether completions and
  // chat streams are counted exactly by asking replicas for continuous usage stats (the client
  // still sees exactly the stream it asked for).
  openai::ExtractOptions request_estimates;
  bool stream_usage = true;
  PeerSyncConfig peer_sync;                   // peer sync (issue 13)
  std::vector<ReplicaDnsConfig> replica_dns;  // replicas from DNS (issue 13)
  std::string dns_server;                     // IPv4:PORT for replica_dns ("": resolv.conf)
};

// Parses YAML text into `out` (starting from `out`'s values: keys absent from the file keep
// them). `source` names the text in messages ("eta.yaml"). Returns false with one line
// ("eta.yaml:4: unknown key 'polcy' (known: ...)") on a YAML syntax error, an unknown key, a
// value of the wrong type or out of range. URLs, duplicates, policies and GPU names are checked by
// validate_config.
bool parse_config_yaml(std::string_view text, std::string_view source, RouterConfig& out,
                       std::string& error);
// Reads and parses a file (parse_config_yaml with the path as source).
bool load_config_file(const std::string& path, RouterConfig& out, std::string& error);

// What the command line sets (app/cmd_route.cpp makes one option per flag of the settings table,
// core/settings.hpp); settings not named keep the file's (or default) values.
struct RouteFlags {
  // Setting path (e.g. "scrape.interval_s") -> the flag's text, parsed and range-checked by
  // apply_flags like the YAML value. "policy.params" holds "k=v,k2=v2" (replaces the file's).
  std::map<std::string, std::string, std::less<>> values;
  // --replica: each "URL[,weight=W][,gpu=G][,arch=A]"; when any is given they replace the file's.
  std::vector<std::string> replicas;
  std::vector<std::string> api_keys;  // --api-key: when any is given they replace the file's
};

// Applies flags over `config`, in the table's order. Returns false with one line if a value is
// malformed or out of the setting's range ("--port must be in [0, 65535], got 70000").
bool apply_flags(const RouteFlags& flags, RouterConfig& config, std::string& error);

// Parses one "URL[,weight=W][,gpu=G][,arch=A]" replica spec (URL not yet validated).
bool parse_replica_spec(std::string_view text, ReplicaConfig& out, std::string& error);

// Loads the TLS files of an https:// replica (the router's http::make_tls_client_context, which
// lives in the networking library); false with one line in `error`.
using TlsFilesCheck = std::function<bool(const http::TlsClientOptions&, std::string& error)>;

// Checks everything that needs more than the YAML: each replica URL parses (it is replaced by
// its canonical form), no replica appears twice, GPU/arch names are known profiles, https://
// replicas' TLS files load (`tls_check`; empty: not checked), the policy exists and accepts its
// parameters, numbers are in range, an admin listener off loopback has a token; reads
// api_keys_file into api_keys. One line on failure (never quoting a key). router/config.hpp has
// the overload without `tls_check` that the program uses.
bool validate_config(RouterConfig& config, std::string& error, const TlsFilesCheck& tls_check);

// The limit that applies to `key`.
const RateLimit& rate_limit_for(const RouterConfig& config, std::string_view key);
// True for 127.0.0.0/8, ::1 and "localhost".
bool is_loopback_host(std::string_view host);

// IP address literals, checked as text (the core has no networking headers; the forms are
// those inet_pton accepts): dotted-quad IPv4 without leading zeros, and IPv6 with at most one
// "::" and an optional dotted IPv4 tail (no zone id).
bool is_ipv4_literal(std::string_view text);
bool is_ipv6_literal(std::string_view text);

// dns_server (replica_dns' server, issue 13): "ADDRESS" or "ADDRESS:PORT", ADDRESS an IPv4 or an
// IPv6 literal; an IPv6 address takes brackets before a port ("[::1]:5353"); bare "::1" or
// "[::1]" and a bare IPv4 address are port 53. False with one line naming the accepted forms.
struct DnsServerAddress {
  std::string address;  // the literal, without brackets
  bool v6 = false;
  int port = 53;
};
bool parse_dns_server(std::string_view text, DnsServerAddress& out, std::string& error);

// Checks one replica as validate_config does (URL canonicalised, profile names known); used by
// the admin API to add replicas at run time.
bool validate_replica(ReplicaConfig& replica, std::string& error);

// The TLS settings of an https:// replica: its own, else the router's upstream_tls.
const http::TlsClientOptions& tls_options_for(const RouterConfig& config,
                                              const ReplicaConfig& replica);

namespace detail {
// Configuration errors are one line: control bytes are shown as \xNN, trailing blanks dropped.
std::string one_line(const std::string& text);
}  // namespace detail

}  // namespace eta::router
