// `eta route` configuration (config.hpp): command-line flags over the file, and validation.
#include "router/core/config.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <set>

#include "engine/engine.hpp"
#include "engine/profile.hpp"
#include "router/core/late_binding.hpp"
#include "router/core/settings.hpp"

namespace eta::router {

namespace detail {

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

}  // namespace detail

namespace {

bool parse_number(std::string_view text, double& v) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  return ec == std::errc() && ptr == text.data() + text.size() && std::isfinite(v);
}

}  // namespace

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
  for (const auto& [path, text] : f.values) {
    const Setting* s = find_setting(path);
    if (s == nullptr || s->flag.empty()) {
      error = "no flag sets '" + path + "'";
      return false;
    }
  }
  for (const Setting& s : settings()) {  // table order: policy.name before policy.params
    if (s.path == "replicas" && !f.replicas.empty()) {
      c.replicas.clear();
      for (const std::string& spec : f.replicas) {
        ReplicaConfig rc;
        if (!parse_replica_spec(spec, rc, error)) return false;
        c.replicas.push_back(std::move(rc));
      }
    }
    if (s.path == "api_keys" && !f.api_keys.empty()) c.api_keys = f.api_keys;
    const auto it = f.values.find(s.path);
    if (it == f.values.end()) continue;
    const std::string& text = it->second;
    if (s.path == "policy.name") {
      if (text != c.policy.name) c.policy.params.clear();  // the file's belong to another policy
      c.policy.name = text;
    } else if (s.path == "policy.params") {
      c.policy.params.clear();
      if (!policy::parse_policy_params(text, c.policy.params, error)) return false;
    } else if (!set_setting(s, text, setting_flag(s), c, error)) {
      return false;
    }
  }
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

bool is_ipv4_literal(std::string_view s) {
  int parts = 0;
  size_t i = 0;
  while (parts < 4) {
    size_t j = i;
    while (j < s.size() && j - i < 4 && s[j] >= '0' && s[j] <= '9') ++j;
    const size_t n = j - i;
    if (n == 0 || n > 3 || (n > 1 && s[i] == '0')) return false;
    int value = 0;
    for (size_t k = i; k < j; ++k) value = value * 10 + (s[k] - '0');
    if (value > 255) return false;
    ++parts;
    if (parts == 4) return j == s.size();
    if (j >= s.size() || s[j] != '.') return false;
    i = j + 1;
  }
  return false;
}

bool is_ipv6_literal(std::string_view s) {
  auto hex = [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  };
  if (s.size() < 2 || s.size() > 45) return false;
  int groups = 0;
  bool compressed = false;
  size_t i = 0;
  if (s.substr(0, 2) == "::") {
    compressed = true;
    i = 2;
  } else if (s[0] == ':') {
    return false;
  }
  while (i < s.size()) {
    size_t j = i;
    while (j < s.size() && hex(s[j])) ++j;
    if (j < s.size() && s[j] == '.') {  // a dotted IPv4 tail: the last 32 bits
      if (!is_ipv4_literal(s.substr(i))) return false;
      groups += 2;
      break;
    }
    if (j == i || j - i > 4) return false;
    ++groups;
    i = j;
    if (i == s.size()) break;
    if (s[i] != ':' || i + 1 == s.size()) return false;  // a group ends with ':' (not the last)
    ++i;
    if (s[i] == ':') {
      if (compressed) return false;
      compressed = true;
      ++i;
    }
  }
  return compressed ? groups < 8 : groups == 8;  // "::" stands for at least one group
}

bool parse_dns_server(std::string_view text, DnsServerAddress& out, std::string& error) {
  auto fail = [&](const std::string& why) {
    error =
        "dns_server must be an IP address with an optional port (127.0.0.1, "
        "127.0.0.1:5353, ::1, [::1]:5353); got '" +
        std::string(text) + "': " + why;
    return false;
  };
  std::string_view address = text;
  std::string_view port;
  bool has_port = false;
  bool bracketed = false;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return fail("no ']' after the IPv6 address");
    address = text.substr(1, close - 1);
    bracketed = true;
    const std::string_view tail = text.substr(close + 1);
    if (!tail.empty()) {
      if (tail.front() != ':') return fail("expected ':PORT' after ']'");
      port = tail.substr(1);
      has_port = true;
    }
  } else if (std::count(text.begin(), text.end(), ':') == 1) {  // IPv4:PORT
    const size_t colon = text.find(':');
    address = text.substr(0, colon);
    port = text.substr(colon + 1);
    has_port = true;
  }
  out = DnsServerAddress{};
  if (address.find('%') != std::string_view::npos)
    return fail("IPv6 zone ids (%...) are not supported");
  if (!bracketed && is_ipv4_literal(address)) {
    out.v6 = false;
  } else if ((bracketed || !has_port) && is_ipv6_literal(address)) {
    out.v6 = true;
  } else if (bracketed) {
    return fail("not an IPv6 address in the brackets");
  } else {
    return fail("not an IP address (a host name cannot name the DNS server)");
  }
  out.address = std::string(address);
  if (has_port) {
    int value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || value < 1 ||
        value > 65535)
      return fail("the port must be 1-65535");
    out.port = value;
  }
  return true;
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

static bool validate_config_impl(RouterConfig& c, std::string& error,
                                 const TlsFilesCheck& tls_check);

bool validate_config(RouterConfig& c, std::string& error, const TlsFilesCheck& tls_check) {
  if (validate_config_impl(c, error, tls_check)) return true;
  error = detail::one_line(error);
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

// replica_dns, dns_server and peer_sync (issue 13): `check(ok, message)` records the first failure.
template <typename Check>
static void check_dns_and_peers(const RouterConfig& c, Check& check) {
  for (const ReplicaDnsConfig& d : c.replica_dns) {  // replicas from DNS (issue 13)
    ReplicaConfig probe;
    probe.url = "http://127.0.0.1:" + std::to_string(d.port);
    probe.gpu = d.gpu;
    probe.arch = d.arch;
    std::string e;
    check(validate_replica(probe, e), "replica_dns " + d.name + ": " + e);
  }
  if (!c.dns_server.empty()) {
    DnsServerAddress server;
    std::string e;
    check(parse_dns_server(c.dns_server, server, e), e);
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
}

static bool validate_config_impl(RouterConfig& c, std::string& error,
                                 const TlsFilesCheck& tls_check) {
  if (!c.api_keys_file.empty() && !read_api_keys_file(c, error)) return false;
  if (!c.upstream_api_key_file.empty() && !read_upstream_key_file(c, error)) return false;
  c.upstream_api_key_file.clear();  // read once, like api_keys_file
  c.api_keys_file.clear();          // read once (validate may run again on the same config)
  if (c.tls.cert_file.empty() != c.tls.key_file.empty()) {
    error = "tls needs both cert_file and key_file";
    return false;
  }
  for (const std::string* f : {&c.tls.cert_file, &c.tls.key_file}) {
    if (!f->empty() && !std::ifstream(*f)) {
      error = "cannot read TLS file " + *f;
      return false;
    }
  }
  if (c.admin.port >= 0 && !is_loopback_host(c.admin.host) && c.admin.token.empty()) {
    error = "the admin listener on " + c.admin.host +
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
    if (tls_check && r.url.rfind("https://", 0) == 0) {
      std::string tls_error;
      if (!tls_check(tls_options_for(c, r), tls_error)) {
        error = "replica " + r.url + ": " + tls_error;
        return false;
      }
    }
  }
  if (!validate_aliases(c.models.aliases, error)) return false;
  std::string policy_error;
  if (!policy::make_policy(c.policy.name, c.policy.params, policy_error)) {
    error = policy_error;
    return false;
  }
  auto check = [&](bool ok, const std::string& message) {
    if (!ok && error.empty()) error = message;
    return ok;
  };
  error.clear();
  // Ranges of the table (the file and the flags were checked as they were read; this catches
  // configurations built in code).
  for (const Setting& s : settings()) {
    if (s.type != SettingType::kInt && s.type != SettingType::kNumber) continue;
    std::string e;
    check(setting_in_range(s, c, e), e);
  }
  check(!c.listen.host.empty(), "listen.host must not be empty");
  check(late_binding_rule_known(c.late_binding.rule),
        "late_binding.rule must be busy or wait; got '" + c.late_binding.rule + "'");
  static const std::set<std::string> kLevels = {"trace", "debug",    "info", "warn",
                                                "error", "critical", "off"};
  check(kLevels.count(c.log_level) > 0,
        "log level must be one of trace, debug, info, warn, error, critical, off; got '" +
            c.log_level + "'");
  check(c.log_format == "text" || c.log_format == "json",
        "log format must be text or json; got '" + c.log_format + "'");
  check(!c.access_log.empty(), "access log must be a file path, '-' (stdout) or 'off'");
  check_dns_and_peers(c, check);
  return error.empty();
}

}  // namespace eta::router
