// Reading `eta route`'s YAML file (config.hpp): the sections and scalars come from the settings
// table (settings.hpp); lists and maps with a schema of their own are read by hand below.
#include <algorithm>
#include <fstream>
#include <sstream>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "router/core/config.hpp"
#include "router/core/settings.hpp"

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
            const std::vector<std::string_view>& known) {
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

  // A scalar setting of the table: its type and range from the row, messages naming its path.
  void setting(const YAML::Node& node, const Setting& s, RouterConfig& out) {
    if (!node) return;
    const std::string name(s.path);
    if (!node.IsScalar()) {
      if (s.type == SettingType::kString)
        return fail(node, name + " must be a string" +
                              (node.IsSequence() ? " (unquoted [...] is a YAML list: quote it, "
                                                   "e.g. '[::1]:5353')"
                                                 : ""));
      if (s.type == SettingType::kBool) return fail(node, name + " must be true or false");
      return fail(node, name + " must be a number, got '" + describe(node) + "'");
    }
    std::string error;
    if (!set_setting(s, node.Scalar(), name, out, error)) fail(node, error);
  }
  void setting(const YAML::Node& node, std::string_view path, RouterConfig& out) {
    setting(node, *find_setting(path), out);
  }

  // Values of the hand-read lists (replicas, api_keys entries, replica_dns).
  void text(const YAML::Node& node, std::string_view name, std::string& out) {
    if (!node) return;
    if (!node.IsScalar()) return fail(node, std::string(name) + " must be a string");
    out = node.Scalar();
  }

  void number(const YAML::Node& node, std::string_view name, double& out, double min, double max) {
    if (!node) return;
    const Setting range = ranged(name, SettingType::kNumber, min, max);
    if (!node.IsScalar()) {
      return fail(node, std::string(name) + " must be a number, got '" + describe(node) + "'");
    }
    std::string error;
    if (!check_number(range, node.Scalar(), name, out, error)) fail(node, error);
  }

  template <typename Int>
  void integer(const YAML::Node& node, std::string_view name, Int& out, double min, double max) {
    if (!node) return;
    double v = 0;
    const Setting range = ranged(name, SettingType::kInt, min, max);
    if (!node.IsScalar()) {
      return fail(node, std::string(name) + " must be a number, got '" + describe(node) + "'");
    }
    std::string error;
    if (!check_number(range, node.Scalar(), name, v, error)) return fail(node, error);
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

  // A row for a number of a hand-read list: its type and range.
  static Setting ranged(std::string_view name, SettingType type, double min, double max) {
    Setting s;
    s.path = name;
    s.type = type;
    s.min = min;
    s.max = max;
    return s;
  }

  static std::string describe(const YAML::Node& node) {
    if (node.IsScalar()) return node.Scalar();
    if (node.IsSequence()) return "a list";
    if (node.IsMap()) return "a map";
    return "null";
  }

 private:
  std::string_view source_;
  std::string error_;
};

// The keys of a section of the table ("interval_s", ... for "scrape"), in table order.
std::vector<std::string_view> section_keys(std::string_view section) {
  std::vector<std::string_view> keys;
  for (const Setting& s : settings())
    if (setting_section(s) == section) keys.push_back(setting_key(s));
  return keys;
}

// The file's top-level keys: the table's sections and top-level settings, in table order.
std::vector<std::string_view> top_level_keys() {
  std::vector<std::string_view> keys;
  for (const Setting& s : settings()) {
    const std::string_view section = setting_section(s);
    const std::string_view key = section.empty() ? s.path : section;
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
  }
  return keys;
}

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
  out.models.aliases.clear();
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
    out.models.aliases.push_back(std::move(a));
  }
}

void read_policy(Reader& r, const YAML::Node& node, RouterConfig& out) {
  if (node.IsScalar()) {  // policy: NAME
    out.policy.name = node.Scalar();
    out.policy.params.clear();
    return;
  }
  if (!r.keys(node, "policy", section_keys("policy"))) return;
  if (node["name"]) {
    r.setting(node["name"], "policy.name", out);
    out.policy.params.clear();
  }
  if (const YAML::Node params = node["params"]; params && !params.IsNull()) {
    if (!params.IsMap()) return r.fail(params, "policy.params must be a map");
    for (const auto& kv : params) {
      if (!kv.second.IsScalar()) {
        return r.fail(kv.second, "policy.params." + kv.first.Scalar() + " must be a scalar");
      }
      out.policy.params[kv.first.Scalar()] = kv.second.Scalar();
    }
  }
  r.setting(node["seed"], "policy.seed", out);
}

void read_replicas(Reader& r, const YAML::Node& n, RouterConfig& out) {
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

// Model aliases (a list), or a map with the refresh interval and the aliases.
void read_models(Reader& r, const YAML::Node& n, RouterConfig& out) {
  if (n.IsSequence() || n.IsNull()) return read_aliases(r, n, out);
  if (!n.IsMap()) return r.fail(n, "models must be a list of {name, served_names} or a map");
  if (!r.keys(n, "models", section_keys("models"))) return;
  r.setting(n["refresh_interval_s"], "models.refresh_interval_s", out);
  if (const YAML::Node a = n["aliases"]) read_aliases(r, a, out);
}

void read_api_keys(Reader& r, const YAML::Node& n, RouterConfig& out) {
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
      r.number(k["requests_per_minute"], where + ".requests_per_minute", lim.requests_per_minute, 0,
               1e9);
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

void read_kv_events_pattern(Reader& r, const YAML::Node& n, RouterConfig& out) {
  read_kv_events(r, n, "kv_events", out.kv_events);  // issue 15
}

// Replicas from DNS (issue 13).
void read_replica_dns(Reader& r, const YAML::Node& n, RouterConfig& out) {
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

// Top-level keys read by hand; every other section and scalar is read from the table.
using ReadByHand = void (*)(Reader&, const YAML::Node&, RouterConfig&);
ReadByHand read_by_hand(std::string_view key) {
  static const std::pair<std::string_view, ReadByHand> kReaders[] = {
      {"replicas", read_replicas},
      {"policy", read_policy},
      {"models", read_models},
      {"api_keys", read_api_keys},
      {"kv_events", read_kv_events_pattern},
      {"replica_dns", read_replica_dns},
  };
  for (const auto& [name, read] : kReaders)
    if (name == key) return read;
  return nullptr;
}

void read_root(Reader& r, const YAML::Node& root, RouterConfig& out) {
  const std::vector<std::string_view> top = top_level_keys();
  if (!r.keys(root, "", top)) return;
  for (const std::string_view key : top) {
    const YAML::Node n = root[std::string(key)];
    if (!n) continue;
    if (const ReadByHand read = read_by_hand(key)) {
      read(r, n, out);
    } else if (const Setting* s = find_setting(key)) {
      r.setting(n, *s, out);
    } else {
      if (!r.keys(n, key, section_keys(key))) return;
      for (const Setting& s : settings())
        if (setting_section(s) == key) r.setting(n[std::string(setting_key(s))], s, out);
    }
    if (r.failed()) return;
  }
}

// "key: [::1]:5353" does not parse (a flow list followed by more): say to quote it.
std::string unquoted_brackets_hint(std::string_view text, int line) {
  for (int i = 0; i < line && !text.empty(); ++i) {
    const size_t nl = text.find('\n');
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
  }
  text = text.substr(0, text.find('\n'));
  const size_t colon = text.find(": [");
  if (colon == std::string_view::npos || text.find("]:", colon) == std::string_view::npos)
    return "";
  return " (a value beginning with '[' must be quoted, e.g. dns_server: '[::1]:5353')";
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
    error = detail::one_line(std::string(source) + ":" + std::to_string(e.mark.line + 1) + ": " +
                             e.msg + unquoted_brackets_hint(text, e.mark.line));
    return false;
  }
  if (r.failed()) {
    error = detail::one_line(r.error());
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

}  // namespace eta::router
