#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <string>

#include "router/config.hpp"
#include "router/kv_events.hpp"

namespace eta::router {
namespace {

// Parses and validates; returns the error ("" when fine).
std::string load(const std::string& yaml, RouterConfig* out = nullptr) {
  RouterConfig c;
  std::string error;
  if (!parse_config_yaml(yaml, "eta.yaml", c, error)) return error;
  if (!validate_config(c, error)) return error;
  if (out) *out = c;
  return "";
}

void expect_one_line(const std::string& error) {
  EXPECT_FALSE(error.empty());
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
}

TEST(RouterConfig, FullExample) {
  const std::string yaml = R"(
listen: {host: 0.0.0.0, port: 8080}
admin: {host: 127.0.0.1, port: 9090}
replicas:
  - url: http://127.0.0.1:8001/
    weight: 2
    gpu: a100
  - http://127.0.0.1:8002
policy:
  name: eta
  params: {objective: ttft, use_scrape: false}
  seed: 7
scrape: {interval_s: 0.1, timeout_s: 0.5, max_body_bytes: 1048576, stale_after_s: 3}
health: {interval_s: 2, timeout_s: 0.5, failure_threshold: 3, success_threshold: 2}
models: {refresh_interval_s: 10}
timeouts: {connect_s: 1, first_byte_s: 60, idle_s: 30}
retries: 1
admission:
  max_in_flight: 100
  max_in_flight_per_replica: 40
  ttft_slo_s: 2.5
  queue_size: 50
  queue_timeout_s: 3
  retry_after_s: 2
api_keys: [sk-a, sk-b]
decision_log_size: 10
log_level: warn
log_format: json
access_log: /var/log/eta/access.log
)";
  RouterConfig c;
  ASSERT_EQ(load(yaml, &c), "");
  EXPECT_EQ(c.listen.host, "0.0.0.0");
  EXPECT_EQ(c.listen.port, 8080);
  EXPECT_EQ(c.admin.port, 9090);
  ASSERT_EQ(c.replicas.size(), 2u);
  EXPECT_EQ(c.replicas[0].url, "http://127.0.0.1:8001");  // canonical: no trailing '/'
  EXPECT_EQ(c.replicas[0].weight, 2);
  EXPECT_EQ(c.replicas[0].gpu, "a100");
  EXPECT_EQ(c.replicas[1].url, "http://127.0.0.1:8002");
  EXPECT_EQ(c.policy.name, "eta");
  EXPECT_EQ(c.policy.params.at("objective"), "ttft");
  EXPECT_EQ(c.policy.params.at("use_scrape"), "false");
  EXPECT_EQ(c.policy.seed, 7u);
  EXPECT_DOUBLE_EQ(c.scrape.interval_s, 0.1);
  EXPECT_DOUBLE_EQ(c.scrape.stale_after_s, 3);
  EXPECT_EQ(c.scrape.max_body_bytes, 1048576u);
  EXPECT_EQ(c.health.failure_threshold, 3);
  EXPECT_EQ(c.health.success_threshold, 2);
  EXPECT_DOUBLE_EQ(c.models.refresh_interval_s, 10);
  EXPECT_DOUBLE_EQ(c.timeouts.connect_s, 1);
  EXPECT_DOUBLE_EQ(c.timeouts.first_byte_s, 60);
  EXPECT_DOUBLE_EQ(c.timeouts.idle_s, 30);
  EXPECT_EQ(c.retries, 1);
  EXPECT_EQ(c.admission.max_in_flight, 100);
  EXPECT_EQ(c.admission.max_in_flight_per_replica, 40);
  EXPECT_DOUBLE_EQ(c.admission.ttft_slo_s, 2.5);
  EXPECT_EQ(c.admission.queue_size, 50);
  EXPECT_DOUBLE_EQ(c.admission.queue_timeout_s, 3);
  EXPECT_EQ(c.admission.retry_after_s, 2);
  ASSERT_EQ(c.api_keys.size(), 2u);
  EXPECT_EQ(c.api_keys[1], "sk-b");
  EXPECT_EQ(c.decision_log_size, 10u);
  EXPECT_EQ(c.log_level, "warn");
  EXPECT_EQ(c.log_format, "json");
  EXPECT_EQ(c.access_log, "/var/log/eta/access.log");
}

TEST(RouterConfig, EmptyFileKeepsDefaults) {
  RouterConfig c;
  ASSERT_EQ(load("", &c), "");
  EXPECT_EQ(c.policy.name, "eta");
  EXPECT_DOUBLE_EQ(c.scrape.interval_s, 0.05);
  EXPECT_DOUBLE_EQ(c.health.interval_s, 1.0);
  EXPECT_EQ(c.health.failure_threshold, 2);
  EXPECT_EQ(c.retries, 2);
  EXPECT_DOUBLE_EQ(c.scrape.stale_after_s, 2.0);
}

TEST(RouterConfig, PolicyAsString) {
  RouterConfig c;
  ASSERT_EQ(load("policy: least-request\n", &c), "");
  EXPECT_EQ(c.policy.name, "least-request");
}

TEST(RouterConfig, UnknownKeyNamesItAndTheLine) {
  const std::string e = load("replicas: [http://127.0.0.1:8001]\npolcy: eta\n");
  expect_one_line(e);
  EXPECT_EQ(e.rfind("eta.yaml:2: unknown key 'polcy'", 0), 0u) << e;
}

TEST(RouterConfig, ClientLimits) {
  RouterConfig c;
  ASSERT_EQ(load("client: {max_header_bytes: 8192, request_timeout_s: 2.5, idle_timeout_s: 1,\n"
                 "         write_timeout_s: 3, max_buffered_bytes: 65536}\n",
                 &c),
            "");
  EXPECT_EQ(c.client.max_header_bytes, 8192u);
  EXPECT_DOUBLE_EQ(c.client.request_timeout_s, 2.5);
  EXPECT_DOUBLE_EQ(c.client.idle_timeout_s, 1);
  EXPECT_DOUBLE_EQ(c.client.write_timeout_s, 3);
  EXPECT_EQ(c.client.max_buffered_bytes, 65536u);
  const RouterConfig d;
  EXPECT_EQ(d.client.max_header_bytes, 16384u);
  EXPECT_DOUBLE_EQ(d.client.request_timeout_s, 30);
  std::string e = load("client: {request_timeout_s: 0}\n");
  expect_one_line(e);
  EXPECT_NE(e.find("client.request_timeout_s must be in"), std::string::npos) << e;
  e = load("client: {header_timeout_s: 1}\n");
  EXPECT_NE(e.find("unknown key 'header_timeout_s' in client"), std::string::npos) << e;
}

TEST(RouterConfig, ControlBytesInTheFileStayOnOneLine) {
  // Found by fuzz/fuzz_config: a key with a NUL or newline in it, and yaml-cpp's message for a
  // bad escape (which ends in the raw character), used to break the one-line error.
  using namespace std::string_literals;
  std::string e = load("listen: {host: x}\n\"\\\x01\": 1\n"s);
  expect_one_line(e);
  e = load("adt\0n: {host: 1}\n"s);
  expect_one_line(e);
  EXPECT_NE(e.find("unknown key 'adt\\x"), std::string::npos) << e;
}

TEST(RouterConfig, UnknownNestedKey) {
  const std::string e = load("scrape:\n  interval_ms: 50\n");
  expect_one_line(e);
  EXPECT_NE(e.find("unknown key 'interval_ms' in scrape"), std::string::npos) << e;
  EXPECT_NE(e.find("eta.yaml:2"), std::string::npos) << e;
}

TEST(RouterConfig, UnknownReplicaKey) {
  const std::string e = load("replicas:\n  - url: http://a:1\n    wieght: 2\n");
  expect_one_line(e);
  EXPECT_NE(e.find("unknown key 'wieght' in replicas[0]"), std::string::npos) << e;
}

TEST(RouterConfig, BadUrl) {
  const std::string e = load("replicas: ['ftp://127.0.0.1:8001']\n");
  expect_one_line(e);
  EXPECT_NE(e.find("bad URL 'ftp://127.0.0.1:8001'"), std::string::npos) << e;
}

TEST(RouterConfig, DuplicateReplicaAfterCanonicalisation) {
  const std::string e = load("replicas: ['http://127.0.0.1:8001', 'http://127.0.0.1:8001/']\n");
  expect_one_line(e);
  EXPECT_EQ(e, "duplicate replica http://127.0.0.1:8001");
}

TEST(RouterConfig, UnknownPolicy) {
  const std::string e = load("policy: fastest\n");
  expect_one_line(e);
  EXPECT_NE(e.find("unknown policy 'fastest'"), std::string::npos) << e;
}

TEST(RouterConfig, BadPolicyParameter) {
  std::string e = load("policy: {name: eta, params: {objective: fastest}}\n");
  expect_one_line(e);
  EXPECT_NE(e.find("objective must be one of"), std::string::npos) << e;
  e = load("policy: {name: round-robin, params: {x: 1}}\n");
  expect_one_line(e);
  EXPECT_NE(e.find("unknown parameter 'x'"), std::string::npos) << e;
}

TEST(RouterConfig, UnknownGpu) {
  const std::string e = load("replicas: [{url: 'http://a:1', gpu: tpu9}]\n");
  expect_one_line(e);
  EXPECT_NE(e.find("tpu9"), std::string::npos) << e;
}

TEST(RouterConfig, WrongTypesAndRanges) {
  std::string e = load("retries: many\n");
  expect_one_line(e);
  EXPECT_NE(e.find("retries must be a number, got 'many'"), std::string::npos) << e;
  e = load("scrape: {interval_s: 0}\n");
  expect_one_line(e);
  EXPECT_NE(e.find("scrape.interval_s must be in"), std::string::npos) << e;
  e = load("listen: {port: 70000}\n");
  EXPECT_NE(e.find("listen.port must be in [0, 65535]"), std::string::npos) << e;
  e = load("health: {failure_threshold: 1.5}\n");
  EXPECT_NE(e.find("health.failure_threshold must be an integer"), std::string::npos) << e;
  e = load("replicas: {a: 1}\n");
  EXPECT_NE(e.find("replicas must be a list"), std::string::npos) << e;
  e = load("log_level: loud\n");
  EXPECT_NE(e.find("log level must be one of"), std::string::npos) << e;
  e = load("log_format: xml\n");
  expect_one_line(e);
  EXPECT_NE(e.find("log format must be text or json; got 'xml'"), std::string::npos) << e;
  e = load("access_log: ''\n");
  expect_one_line(e);
  EXPECT_NE(e.find("access log must be a file path"), std::string::npos) << e;
  e = load("access_log: [a]\n");
  EXPECT_NE(e.find("access_log must be a string"), std::string::npos) << e;
}

TEST(RouterConfig, ShutdownGrace) {
  RouterConfig c;
  ASSERT_EQ(load("", &c), "");
  EXPECT_DOUBLE_EQ(c.shutdown_grace_s, 30.0);
  ASSERT_EQ(load("shutdown_grace_s: 2.5\n", &c), "");
  EXPECT_DOUBLE_EQ(c.shutdown_grace_s, 2.5);
  const std::string e = load("shutdown_grace_s: -1\n");
  expect_one_line(e);
  EXPECT_NE(e.find("shutdown_grace_s must be in"), std::string::npos) << e;
  RouteFlags f;
  f.values["shutdown_grace_s"] = "0";
  std::string error;
  ASSERT_TRUE(apply_flags(f, c, error)) << error;
  EXPECT_DOUBLE_EQ(c.shutdown_grace_s, 0.0);
}

TEST(RouterConfig, YamlSyntaxError) {
  const std::string e = load("replicas: [http://a:1\n");
  expect_one_line(e);
  EXPECT_EQ(e.rfind("eta.yaml:", 0), 0u) << e;
}

TEST(RouterConfig, MissingFile) {
  RouterConfig c;
  std::string e;
  EXPECT_FALSE(load_config_file("/nonexistent/eta.yaml", c, e));
  EXPECT_EQ(e, "cannot read config file /nonexistent/eta.yaml");
}

TEST(RouterConfig, FlagsOverrideTheFile) {
  RouterConfig c;
  std::string e;
  ASSERT_TRUE(parse_config_yaml(
      "replicas: ['http://a:1']\npolicy: {name: eta, params: {objective: ttft}}\nretries: 1\n",
      "eta.yaml", c, e))
      << e;
  RouteFlags f;
  f.values["listen.port"] = "0";
  f.replicas = {"http://b:2,weight=3,gpu=a100", "http://c:3"};
  f.values["retries"] = "4";
  f.values["admission.max_in_flight_per_replica"] = "8";
  ASSERT_TRUE(apply_flags(f, c, e)) << e;
  ASSERT_TRUE(validate_config(c, e)) << e;
  EXPECT_EQ(c.listen.port, 0);
  ASSERT_EQ(c.replicas.size(), 2u);
  EXPECT_EQ(c.replicas[0].url, "http://b:2");
  EXPECT_EQ(c.replicas[0].weight, 3);
  EXPECT_EQ(c.replicas[0].gpu, "a100");
  EXPECT_EQ(c.retries, 4);
  EXPECT_EQ(c.admission.max_in_flight_per_replica, 8);
  EXPECT_EQ(c.policy.params.at("objective"), "ttft");  // same policy: the file's params stay

  RouteFlags other;
  other.values["policy.name"] =
      "least-request";  // another policy: the file's eta params do not apply
  ASSERT_TRUE(apply_flags(other, c, e)) << e;
  EXPECT_TRUE(c.policy.params.empty());
  EXPECT_TRUE(validate_config(c, e)) << e;

  RouteFlags params;
  params.values["policy.name"] = "eta";
  params.values["policy.params"] = "objective=e2e,kv_pressure=false";
  ASSERT_TRUE(apply_flags(params, c, e)) << e;
  EXPECT_EQ(c.policy.params.at("kv_pressure"), "false");
  EXPECT_TRUE(validate_config(c, e)) << e;
}

TEST(RouterConfig, ReplicaSpecErrors) {
  ReplicaConfig r;
  std::string e;
  EXPECT_FALSE(parse_replica_spec("http://a:1,speed=2", r, e));
  EXPECT_NE(e.find("unknown key 'speed'"), std::string::npos) << e;
  EXPECT_FALSE(parse_replica_spec("http://a:1,weight", r, e));
  EXPECT_NE(e.find("not key=value"), std::string::npos) << e;
  EXPECT_FALSE(parse_replica_spec("http://a:1,weight=-1", r, e));
  EXPECT_TRUE(parse_replica_spec("http://a:1,arch=llama-3.1-8b", r, e)) << e;
  EXPECT_EQ(r.arch, "llama-3.1-8b");
}

}  // namespace
}  // namespace eta::router

// KV-cache events (issue 15).
namespace eta::router {
namespace {

TEST(RouterConfigKvEvents, PerReplicaPatternAndFlags) {
  RouterConfig c;
  ASSERT_EQ(load(R"(
replicas:
  - url: http://10.0.0.1:8000
    kv_events: {endpoint: "tcp://10.0.0.1:5557", replay: "tcp://10.0.0.1:5558", topic: kv}
  - http://10.0.0.2:8000
kv_events: {endpoint: "tcp://{host}:6557"}
)",
                 &c),
            "");
  EXPECT_EQ(c.replicas[0].kv_events.endpoint, "tcp://10.0.0.1:5557");
  EXPECT_EQ(c.replicas[0].kv_events.replay, "tcp://10.0.0.1:5558");
  EXPECT_EQ(c.replicas[0].kv_events.topic, "kv");
  EXPECT_TRUE(c.replicas[1].kv_events.endpoint.empty());
  EXPECT_EQ(resolve_kv_events(c.replicas[1], c.kv_events).endpoint, "tcp://10.0.0.2:6557");
  EXPECT_EQ(resolve_kv_events(c.replicas[0], c.kv_events).endpoint,
            "tcp://10.0.0.1:5557");  // its own wins
  ReplicaConfig r;
  std::string error;
  ASSERT_TRUE(parse_replica_spec(
      "http://h:1,kv_events=tcp://h:5557,kv_replay=tcp://h:5558,weight=2", r, error))
      << error;
  EXPECT_EQ(r.kv_events.endpoint, "tcp://h:5557");
  EXPECT_EQ(r.kv_events.replay, "tcp://h:5558");
  EXPECT_EQ(r.weight, 2);
}

TEST(RouterConfigKvEvents, BadAddressesAreOneLine) {
  for (const char* yaml : {
           "replicas: [{url: 'http://h:1', kv_events: {endpoint: 'h:5557'}}]",
           "replicas: [{url: 'http://h:1', kv_events: {replay: 'tcp://h:5558'}}]",
           "replicas: [{url: 'http://h:1', kv_events: 'tcp://h:5557'}]",
           "replicas: [{url: 'http://h:1', kv_events: {endpoint: 'tcp://h:1', port: 2}}]",
       }) {
    const std::string error = load(yaml);
    expect_one_line(error);
    EXPECT_NE(error.find("kv_events"), std::string::npos) << error;
  }
}

}  // namespace
}  // namespace eta::router

namespace eta::router {
namespace {

// Peer sync and replicas from DNS (issue 13).
TEST(RouterConfig, PeerSyncAndReplicaDns) {
  RouterConfig c;
  std::string e;
  ASSERT_TRUE(parse_config_yaml(
      "peer_sync: {url: 'nats://n:4222', cluster: c-1, heartbeat_s: 0.25, peer_timeout_s: 1}\n"
      "replica_dns: [{name: v.svc, port: 9000, interval_s: 2, gpu: a100}]\n"
      "dns_server: 127.0.0.1:5353\n",
      "eta.yaml", c, e))
      << e;
  EXPECT_EQ(c.peer_sync.url, "nats://n:4222");
  EXPECT_EQ(c.peer_sync.cluster, "c-1");
  EXPECT_EQ(c.peer_sync.heartbeat_s, 0.25);
  EXPECT_EQ(c.peer_sync.peer_timeout_s, 1);
  ASSERT_EQ(c.replica_dns.size(), 1u);
  EXPECT_EQ(c.replica_dns[0].name, "v.svc");
  EXPECT_EQ(c.replica_dns[0].port, 9000);
  EXPECT_EQ(c.replica_dns[0].interval_s, 2);
  EXPECT_EQ(c.replica_dns[0].gpu, "a100");
  EXPECT_TRUE(validate_config(c, e)) << e;
  RouteFlags f;
  f.values["peer_sync.url"] = "nats://other:4222";
  ASSERT_TRUE(apply_flags(f, c, e));
  EXPECT_EQ(c.peer_sync.url, "nats://other:4222");

  const std::pair<const char*, const char*> bad[] = {
      {"peer_sync: {url: 'tcp://n:1'}\n", "peer_sync.url must be nats://HOST:PORT"},
      {"peer_sync: {url: 'nats://n:1', cluster: 'a b'}\n", "peer_sync.cluster must be"},
      {"peer_sync: {url: 'nats://n:1', heartbeat_s: 3}\n", "peer_timeout_s must be longer"},
      {"peer_sync: {url: 'nats://n:1', colour: red}\n", "unknown key 'colour'"},
      {"replica_dns: [{name: x, port: 0}]\n", "replica_dns[0].port"},
      {"replica_dns: [{name: x, arch: nope}]\n", "replica_dns x:"},
      {"replica_dns: x\n", "replica_dns must be a list"},
      {"dns_server: 'localhost:53'\n", "dns_server must be an IP address"},
      {"dns_server: '127.0.0.1:99999'\n", "the port must be 1-65535"},
      {"dns_server: '::1:5353x'\n", "not an IP address"},
      {"dns_server: '[::1]5353'\n", "expected ':PORT' after ']'"},
      {"dns_server: [::1]\n", "dns_server must be a string (unquoted [...] is a YAML list"},
      {"dns_server: [::1]:5353\n", "a value beginning with '[' must be quoted"},
  };
  for (const auto& [text, message] : bad) {
    RouterConfig b;
    std::string err;
    const bool ok = parse_config_yaml(text, "eta.yaml", b, err) && validate_config(b, err);
    EXPECT_FALSE(ok) << text;
    EXPECT_NE(err.find(message), std::string::npos) << text << " -> " << err;
    EXPECT_EQ(err.find('\n'), std::string::npos) << err;
  }
}

// dns_server's forms (issue 13): IPv4 or IPv6, with or without a port (53 by default).
TEST(RouterConfig, DnsServerAddresses) {
  struct Case {
    const char* text;
    const char* address;
    bool v6;
    int port;
  };
  const Case good[] = {
      {"127.0.0.1:5353", "127.0.0.1", false, 5353},
      {"10.0.0.53", "10.0.0.53", false, 53},
      {"[::1]:5353", "::1", true, 5353},
      {"[::1]", "::1", true, 53},
      {"::1", "::1", true, 53},
      {"fd00:10:96::a", "fd00:10:96::a", true, 53},
      {"[2001:db8:0:0:0:0:0:1]:65535", "2001:db8:0:0:0:0:0:1", true, 65535},
      {"[::ffff:10.0.0.1]:53", "::ffff:10.0.0.1", true, 53},
      {"::", "::", true, 53},
  };
  for (const Case& g : good) {
    DnsServerAddress a;
    std::string e;
    ASSERT_TRUE(parse_dns_server(g.text, a, e)) << g.text << ": " << e;
    EXPECT_EQ(a.address, g.address) << g.text;
    EXPECT_EQ(a.v6, g.v6) << g.text;
    EXPECT_EQ(a.port, g.port) << g.text;
  }
  const std::pair<const char*, const char*> bad[] = {
      {"", "not an IP address"},
      {"localhost", "not an IP address"},
      {"dns.example:53", "not an IP address"},
      {"127.0.0.1:0", "the port must be 1-65535"},
      {"127.0.0.1:", "the port must be 1-65535"},
      {"127.0.0.1:53x", "the port must be 1-65535"},
      {"[::1]:70000", "the port must be 1-65535"},
      {"256.0.0.1:53", "not an IP address"},
      {"127.0.0.01", "not an IP address"},
      {"127.0.0", "not an IP address"},
      {"[127.0.0.1]:53", "not an IPv6 address in the brackets"},
      {"[::1", "no ']'"},
      {"[::1]x", "expected ':PORT' after ']'"},
      {"[fe80::1%eth0]:53", "zone ids"},
      {"1:2:3:4:5:6:7:8:9", "not an IP address"},
      {"1::2::3", "not an IP address"},
      {":::1", "not an IP address"},
      {"1:2:3:4:5:6:7::8", "not an IP address"},  // "::" must stand for a group
      {"12345::1", "not an IP address"},
      {"::1:", "not an IP address"},
      {"[]:53", "not an IPv6 address in the brackets"},
  };
  for (const auto& [text, message] : bad) {
    DnsServerAddress a;
    std::string e;
    EXPECT_FALSE(parse_dns_server(text, a, e)) << text;
    EXPECT_NE(e.find(message), std::string::npos) << text << " -> " << e;
    EXPECT_NE(e.find("[::1]:5353"), std::string::npos) << e;  // names the accepted forms
  }
  // The text checks agree with inet_pton's forms on the cases above and a few more.
  EXPECT_TRUE(is_ipv4_literal("0.0.0.0"));
  EXPECT_TRUE(is_ipv4_literal("255.255.255.255"));
  EXPECT_FALSE(is_ipv4_literal("1.2.3.4.5"));
  EXPECT_FALSE(is_ipv4_literal("1.2.3."));
  EXPECT_FALSE(is_ipv4_literal("1..3.4"));
  EXPECT_TRUE(is_ipv6_literal("1:2:3:4:5:6:7:8"));
  EXPECT_TRUE(is_ipv6_literal("1:2:3:4:5:6:1.2.3.4"));
  EXPECT_TRUE(is_ipv6_literal("1::"));
  EXPECT_TRUE(is_ipv6_literal("FFFF::abcd"));
  EXPECT_FALSE(is_ipv6_literal("1:2:3:4:5:6:7"));
  EXPECT_FALSE(is_ipv6_literal("1:2:3:4:5:6:7:1.2.3.4"));
  EXPECT_FALSE(is_ipv6_literal("::1.2.3"));
  EXPECT_FALSE(is_ipv6_literal(":1::"));
  EXPECT_FALSE(is_ipv6_literal("g::1"));
  // ... and with inet_pton itself (this test may use networking headers; the core may not).
  const char* forms[] = {"::",
                         "::1",
                         "1::",
                         "1::2",
                         "::ffff:1.2.3.4",
                         "1:2:3:4:5:6:7:8",
                         "1:2:3:4:5:6:7::",
                         "::2:3:4:5:6:7:8",
                         "1:2:3:4:5:6:7:8:9",
                         ":::",
                         "1:::2",
                         ":1::",
                         "1::2::3",
                         "12345::",
                         "::1.2.3",
                         "::1.2.3.04",
                         "1.2.3.4",
                         "::g",
                         "fe80::1%1",
                         "0:0:0:0:0:0:0:0",
                         "1:2:3:4:5:6:1.2.3.4",
                         "1:2:3:4:5::1.2.3.4",
                         "1:2:3:4:5:6:7:1.2.3.4",
                         "::1:2:3:4:5:6:7"};
  for (const char* f : forms) {
    unsigned char buf6[16];
    unsigned char buf4[4];
    EXPECT_EQ(is_ipv6_literal(f), inet_pton(AF_INET6, f, buf6) == 1) << f;
    EXPECT_EQ(is_ipv4_literal(f), inet_pton(AF_INET, f, buf4) == 1) << f;
  }
  for (const char* f : {"1.2.3.4", "01.2.3.4", "1.2.3.256", "1.2.3", "0.0.0.0", "1.2.3.4 "}) {
    unsigned char buf4[4];
    EXPECT_EQ(is_ipv4_literal(f), inet_pton(AF_INET, f, buf4) == 1) << f;
  }
}

}  // namespace
}  // namespace eta::router
