// `eta route`: the load balancer (src/router/). Flags override the YAML file given with --config;
// every configuration error stops the program with one line and exit code 2.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "router/config.hpp"
#include "router/router.hpp"
#include "validators.hpp"

namespace eta::app {

namespace {

struct RouteOptions {
  std::string config_file;
  std::string host;
  int port = 0;
  std::string admin_host;
  int admin_port = 0;
  std::vector<std::string> replicas;
  std::string policy;
  std::string policy_params;
  uint64_t seed = 0;
  double scrape_interval_s = 0;
  double stale_after_s = 0;
  double health_interval_s = 0;
  int retries = 0;
  int max_in_flight = 0;
  int max_in_flight_per_replica = 0;
  double ttft_slo_s = 0;
  int queue_size = 0;
  double queue_timeout_s = 0;
  std::vector<std::string> api_keys;
  std::string log_level;
  std::string log_format;
  std::string access_log;
  double shutdown_grace_s = 0;
  std::string upstream_api_key_file;  // dropin
  // Peer sync and --check-config (issue 13)
  std::string peer_sync_url;
  std::string check_config;
};

int fail(const std::string& message) {
  std::fprintf(stderr, "eta route: %s\n", message.c_str());
  return 2;
}

int run_route(const RouteOptions& o, const CLI::App& cmd) {
  router::RouterConfig config;
  std::string error;
  const std::string& file = o.check_config.empty() ? o.config_file : o.check_config;
  if (!file.empty() && !router::load_config_file(file, config, error)) {
    return fail(error);
  }
  auto given = [&](const char* name) { return cmd.count(name) > 0; };
  router::RouteFlags f;
  if (given("--host")) f.host = o.host;
  if (given("--port")) f.port = o.port;
  if (given("--admin-host")) f.admin_host = o.admin_host;
  if (given("--admin-port")) f.admin_port = o.admin_port;
  f.replicas = o.replicas;
  if (given("--policy")) f.policy = o.policy;
  if (given("--policy-params")) f.policy_params = o.policy_params;
  if (given("--seed")) f.seed = o.seed;
  if (given("--scrape-interval-s")) f.scrape_interval_s = o.scrape_interval_s;
  if (given("--stale-after-s")) f.stale_after_s = o.stale_after_s;
  if (given("--health-interval-s")) f.health_interval_s = o.health_interval_s;
  if (given("--retries")) f.retries = o.retries;
  if (given("--max-in-flight")) f.max_in_flight = o.max_in_flight;
  if (given("--max-in-flight-per-replica"))
    f.max_in_flight_per_replica = o.max_in_flight_per_replica;
  if (given("--ttft-slo-s")) f.ttft_slo_s = o.ttft_slo_s;
  if (given("--queue-size")) f.queue_size = o.queue_size;
  if (given("--queue-timeout-s")) f.queue_timeout_s = o.queue_timeout_s;
  f.api_keys = o.api_keys;
  if (given("--log-level")) f.log_level = o.log_level;
  if (given("--log-format")) f.log_format = o.log_format;
  if (given("--access-log")) f.access_log = o.access_log;
  if (given("--shutdown-grace-s")) f.shutdown_grace_s = o.shutdown_grace_s;
  if (given("--upstream-api-key-file")) f.upstream_api_key_file = o.upstream_api_key_file;
  if (given("--peer-sync")) f.peer_sync_url = o.peer_sync_url;
  if (!router::apply_flags(f, config, error)) return fail(error);
  if (!router::validate_config(config, error)) return fail(error);
  if (!o.check_config.empty()) {  // --check-config: validated, nothing started
    std::printf("%s: configuration ok (%zu replicas, %zu DNS names, policy %s%s)\n",
                o.check_config.c_str(), config.replicas.size(), config.replica_dns.size(),
                config.policy.c_str(), config.peer_sync.enabled() ? ", peer sync" : "");
    return 0;
  }
  // SIGHUP: the file again, with the same flags over it; the running router keeps its
  // configuration if this fails.
  router::ConfigLoader reload;
  if (!o.config_file.empty()) {
    reload = [file = o.config_file, f](router::RouterConfig& out, std::string& err) {
      out = router::RouterConfig{};
      return router::load_config_file(file, out, err) && router::apply_flags(f, out, err) &&
             router::validate_config(out, err);
    };
  }
  return router::run_until_signal(config, reload);
}

}  // namespace

void add_route_command(CLI::App& root, Action& action) {
  auto opts = std::make_shared<RouteOptions>();
  auto* cmd = root.add_subcommand(
      "route",
      "the load balancer: an OpenAI API reverse proxy that sends each request to the replica "
      "where it is predicted to finish soonest");
  cmd->add_option("--config", opts->config_file,
                  "YAML configuration (every flag's setting and more); flags override it");
  cmd->add_option("--host", opts->host, "address to listen on (default 127.0.0.1)");
  cmd->add_option("--port", opts->port, "port to listen on (0: any free port; default 8000)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--admin-host", opts->admin_host,
                  "address of the admin API listener (default 127.0.0.1)");
  cmd->add_option("--admin-port", opts->admin_port,
                  "port of the admin API (0: any free port, the default; -1: no admin API)")
      ->check(CLI::Range(-1, 65535));
  cmd->add_option(
      "--replica", opts->replicas,
      "a replica: URL[,weight=W][,gpu=G][,arch=A][,kv_events=tcp://H:P][,kv_replay=tcp://H:P] "
      "(repeat; replaces the file's)");
  cmd->add_option("--policy", opts->policy,
                  "routing policy: round-robin, random, least-request, power-of-two, session, "
                  "llm-d, cache-aware, eta (default eta)");
  cmd->add_option("--policy-params", opts->policy_params,
                  "policy parameters k=v,k2=v2 (docs/policies.md)");
  cmd->add_option("--seed", opts->seed, "seed of the policy's random choices");
  cmd->add_option("--scrape-interval-s", opts->scrape_interval_s,
                  "seconds between /metrics scrapes of each replica (default 0.05)")
      ->check(positive_number());
  cmd->add_option("--stale-after-s", opts->stale_after_s,
                  "scrapes older than this are ignored by policies (default 2)")
      ->check(positive_number());
  cmd->add_option("--health-interval-s", opts->health_interval_s,
                  "seconds between /health checks of each replica (default 1)")
      ->check(positive_number());
  cmd->add_option("--retries", opts->retries,
                  "extra attempts on other replicas when one fails before any byte is relayed "
                  "(default 2)")
      ->check(CLI::Range(0, 100));
  cmd->add_option("--max-in-flight", opts->max_in_flight,
                  "requests in flight through the router before it sheds (0: no bound)")
      ->check(CLI::Range(0, 1000000000));
  cmd->add_option("--max-in-flight-per-replica", opts->max_in_flight_per_replica,
                  "requests in flight per replica before it counts as full (0: no bound)")
      ->check(CLI::Range(0, 1000000000));
  cmd->add_option("--ttft-slo-s", opts->ttft_slo_s,
                  "shed (429) when every replica's predicted TTFT exceeds this (0: off)")
      ->check(CLI::Range(0.0, 1e9));
  cmd->add_option("--queue-size", opts->queue_size,
                  "hold up to this many requests while at capacity instead of 429 (0: no queue)")
      ->check(CLI::Range(0, 1000000000));
  cmd->add_option("--queue-timeout-s", opts->queue_timeout_s,
                  "a held request gets 429 after this long (default 5)")
      ->check(positive_number());
  cmd->add_option("--api-key", opts->api_keys,
                  "require 'Authorization: Bearer KEY' on /v1/* (repeat for several keys)");
  cmd->add_option("--log-level", opts->log_level,
                  "trace, debug, info, warn, error, critical, off (default info)");
  cmd->add_option("--log-format", opts->log_format,
                  "format of the router's log lines on stderr: text or json (default text)");
  cmd->add_option("--access-log", opts->access_log,
                  "one JSON line per request to this file ('-': stdout; default off)");
  cmd->add_option("--shutdown-grace-s,--shutdown-grace", opts->shutdown_grace_s,
                  "on SIGTERM, seconds in-flight requests may take to finish before they are "
                  "ended (default 30)")
      ->check(CLI::Range(0.0, 1e9));
  // Upstream auth (dropin).
  cmd->add_option("--upstream-api-key-file", opts->upstream_api_key_file,
                  "file holding the key sent to the replicas (vLLM --api-key) as 'Authorization: "
                  "Bearer' on forwarded requests and /v1/models polls; first non-comment line");
  // Peer sync and --check-config (issue 13)
  cmd->add_option("--peer-sync", opts->peer_sync_url,
                  "share this router's work with the other routers of its cluster over NATS "
                  "(nats://HOST:PORT; peer_sync in the file sets the cluster and timeouts)");
  cmd->add_option("--check-config", opts->check_config,
                  "validate this configuration file (with the other flags over it) and exit: 0, "
                  "or 2 with the one-line error");
  cmd->callback([opts, cmd, &action] { action = [opts, cmd] { return run_route(*opts, *cmd); }; });
}

}  // namespace eta::app
