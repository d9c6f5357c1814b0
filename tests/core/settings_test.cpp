// The settings table (router/core/settings.hpp): the YAML reader, the flags, the reload diff and
// docs/settings.md all come from it.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <variant>

#include "router/core/config.hpp"
#include "router/core/settings.hpp"

namespace eta::router {
namespace {

bool is_scalar(const Setting& s) {
  return !std::holds_alternative<std::monostate>(s.field);
}

// A valid value of a scalar setting that differs from its default.
std::string other_value(const Setting& s) {
  const std::string def = setting_value(s, RouterConfig{});
  switch (s.type) {
    case SettingType::kString:
      return "x-" + std::string(setting_key(s));
    case SettingType::kBool:
      return def == "true" ? "false" : "true";
    default: {
      const double v = def == std::to_string(static_cast<int64_t>(s.max)) ? s.min : s.max;
      std::ostringstream out;
      out.precision(17);
      out << v;
      return out.str();
    }
  }
}

// A kv_events section needs an endpoint (the pattern's PUB socket).
constexpr std::string_view kKvEndpoint = "tcp://{host}:5557";

// YAML text setting one path: "scrape.interval_s" -> "scrape: {interval_s: 'V'}".
std::string yaml_for(const Setting& s, const std::string& value) {
  const std::string quoted = "'" + value + "'";
  if (setting_section(s).empty()) return std::string(s.path) + ": " + quoted + "\n";
  std::string extra;
  if (setting_section(s) == "kv_events" && setting_key(s) != "endpoint") {
    extra = ", endpoint: '" + std::string(kKvEndpoint) + "'";
  }
  return std::string(setting_section(s)) + ": {" + std::string(setting_key(s)) + ": " + quoted +
         extra + "}\n";
}

TEST(SettingsReference, DocsMatchTheTable) {
  const std::string path = std::string(ETA_SOURCE_DIR) + "/docs/settings.md";
  std::ifstream in(path);
  ASSERT_TRUE(in) << "cannot read " << path;
  std::stringstream text;
  text << in.rdbuf();
  const std::string want = settings_reference_markdown();
  std::istringstream have_lines(text.str());
  std::istringstream want_lines(want);
  std::string have_line;
  std::string want_line;
  int n = 0;
  while (true) {
    ++n;
    const bool more_have = static_cast<bool>(std::getline(have_lines, have_line));
    const bool more_want = static_cast<bool>(std::getline(want_lines, want_line));
    if (!more_have && !more_want) break;
    ASSERT_EQ(have_line, want_line)
        << "docs/settings.md:" << n << " differs from the settings table; run\n"
        << "  build/eta route --print-settings-reference > docs/settings.md";
  }
  EXPECT_EQ(text.str(), want);  // line endings too
}

TEST(Settings, TableIsConsistent) {
  std::set<std::string_view> paths;
  std::set<std::string_view> flags;
  const RouterConfig defaults;
  for (const Setting& s : settings()) {
    EXPECT_TRUE(paths.insert(s.path).second) << "duplicate path " << s.path;
    EXPECT_FALSE(s.help.empty()) << s.path;
    EXPECT_EQ(find_setting(s.path), &s);
    if (!s.flag.empty()) {
      EXPECT_EQ(setting_flag(s).substr(0, 2), "--") << s.path;
      EXPECT_TRUE(flags.insert(setting_flag(s)).second) << "duplicate flag " << s.flag;
    }
    const bool compound = s.type == SettingType::kList || s.type == SettingType::kMap;
    EXPECT_EQ(is_scalar(s), !compound) << s.path;
    if (compound && s.reload == Reload::kRestart) {
      EXPECT_TRUE(s.same != nullptr && s.copy != nullptr) << s.path << " cannot be kept";
    }
    if (s.type == SettingType::kInt || s.type == SettingType::kNumber) {
      EXPECT_LE(s.min, s.max) << s.path;
      std::string e;
      EXPECT_TRUE(setting_in_range(s, defaults, e)) << e;  // every default is in range
    }
  }
  EXPECT_EQ(find_setting("nope"), nullptr);
}

// Every scalar row reads its own YAML path into its own field: setting one changes no other.
TEST(Settings, EveryScalarRowReadsItsPathIntoItsOwnField) {
  const RouterConfig defaults;
  for (const Setting& s : settings()) {
    if (!is_scalar(s)) continue;
    const std::string value = other_value(s);
    RouterConfig c;
    std::string e;
    ASSERT_TRUE(parse_config_yaml(yaml_for(s, value), "eta.yaml", c, e)) << s.path << ": " << e;
    EXPECT_NE(setting_value(s, c), setting_value(s, defaults)) << s.path;
    for (const Setting& other : settings()) {
      if (&other == &s || !is_scalar(other)) continue;
      if (other.path == "kv_events.endpoint" && setting_section(s) == "kv_events") continue;
      EXPECT_EQ(setting_value(other, c), setting_value(other, defaults))
          << "setting " << s.path << " also changed " << other.path;
    }
  }
}

// The file and the flags share each setting's type and range; messages name the path or flag.
TEST(Settings, FlagsAndFileShareTheRanges) {
  int checked = 0;
  for (const Setting& s : settings()) {
    if (s.type != SettingType::kInt && s.type != SettingType::kNumber) continue;
    const std::string over = std::to_string(s.max * 2 + 1);
    RouterConfig c;
    std::string e;
    EXPECT_FALSE(parse_config_yaml(yaml_for(s, over), "eta.yaml", c, e)) << s.path;
    EXPECT_NE(e.find(std::string(s.path) + " must be in " + setting_range(s)), std::string::npos)
        << e;
    if (s.flag.empty()) continue;
    RouteFlags f;
    f.values[std::string(s.path)] = over;
    EXPECT_FALSE(apply_flags(f, c, e)) << s.path;
    EXPECT_EQ(e,
              std::string(setting_flag(s)) + " must be in " + setting_range(s) + ", got " + over);
    f.values[std::string(s.path)] = "soon";
    EXPECT_FALSE(apply_flags(f, c, e));
    EXPECT_EQ(e, std::string(setting_flag(s)) + " must be a number, got 'soon'");
    ++checked;
  }
  EXPECT_EQ(checked, 16);  // the flags with numbers
  RouterConfig c;
  std::string e;
  RouteFlags f;
  f.values["admission.max_in_flight"] = "2.5";
  EXPECT_FALSE(apply_flags(f, c, e));
  EXPECT_EQ(e, "--max-in-flight must be an integer");
  f.values = {{"scrape.timeout_s", "1"}};  // a setting without a flag
  EXPECT_FALSE(apply_flags(f, c, e));
  EXPECT_NE(e.find("no flag sets 'scrape.timeout_s'"), std::string::npos) << e;
  f.values = {{"shutdown_grace_s", "2.5"}, {"listen.port", "0"}, {"log_level", "debug"}};
  ASSERT_TRUE(apply_flags(f, c, e)) << e;
  EXPECT_DOUBLE_EQ(c.shutdown_grace_s, 2.5);
  EXPECT_EQ(c.listen.port, 0);
  EXPECT_EQ(c.log_level, "debug");
}

TEST(Settings, ValidateChecksTheTableRanges) {
  RouterConfig c;
  c.scrape.interval_s = 0;  // set in code, not read: validate_config still checks the range
  std::string e;
  EXPECT_FALSE(validate_config(c, e, {}));
  EXPECT_EQ(e, "scrape.interval_s must be in [0.001, 3600], got 0");
  c = RouterConfig{};
  c.admin.port = -2;
  EXPECT_FALSE(validate_config(c, e, {}));
  EXPECT_EQ(e, "admin.port must be in [-1, 65535], got -2");
}

TEST(Settings, LateBindingRuleIsOneOfTheRules) {
  RouterConfig c;
  std::string e;
  c.late_binding.rule = "wait";
  EXPECT_TRUE(validate_config(c, e, {})) << e;
  c.late_binding.rule = "soon";
  EXPECT_FALSE(validate_config(c, e, {}));
  EXPECT_EQ(e, "late_binding.rule must be busy or wait; got 'soon'");
}

TEST(Settings, KeepRestartOnlyPutsBackWhatNeedsARestart) {
  const RouterConfig running;
  RouterConfig next;
  next.listen.port = 9000;          // restart
  next.retries = 5;                 // live
  next.log_format = "json";         // restart
  next.replica_dns.emplace_back();  // restart, a list
  next.replica_dns.back().name = "v.svc";
  next.admin.token = "t";  // live
  const std::vector<std::string> kept = keep_restart_only(running, next);
  EXPECT_EQ(kept, (std::vector<std::string>{"listen.port", "log_format", "replica_dns"}));
  EXPECT_EQ(next.listen.port, running.listen.port);
  EXPECT_EQ(next.log_format, "text");
  EXPECT_TRUE(next.replica_dns.empty());
  EXPECT_EQ(next.retries, 5);
  EXPECT_EQ(next.admin.token, "t");
  EXPECT_TRUE(keep_restart_only(running, next).empty());  // nothing left to keep
}

// Each restart-only scalar is kept alone, and no live one is.
TEST(Settings, EveryRestartOnlyScalarIsKeptAndNoLiveOne) {
  const RouterConfig running;
  for (const Setting& s : settings()) {
    if (!is_scalar(s)) continue;
    RouterConfig next;
    std::string e;
    ASSERT_TRUE(set_setting(s, other_value(s), s.path, next, e)) << e;
    const std::vector<std::string> kept = keep_restart_only(running, next);
    if (s.reload == Reload::kRestart) {
      EXPECT_EQ(kept, std::vector<std::string>{std::string(s.path)});
      EXPECT_EQ(setting_value(s, next), setting_value(s, running)) << s.path;
    } else {
      EXPECT_TRUE(kept.empty()) << s.path;
      EXPECT_NE(setting_value(s, next), setting_value(s, running)) << s.path;  // applied
    }
  }
}

// What the running router cannot change (opened or sized at start); Router::Impl::reload kept
// exactly these before the table existed.
TEST(Settings, RestartOnlyAreTheSettingsFixedAtStart) {
  std::vector<std::string_view> restart;
  for (const Setting& s : settings())
    if (s.reload == Reload::kRestart) restart.push_back(s.path);
  const std::vector<std::string_view> expected = {
      "listen.host",
      "listen.port",
      "admin.host",
      "admin.port",
      "scrape.stale_after_s",
      "health.failure_threshold",
      "health.success_threshold",
      "threads",
      "decision_log_size",
      "log_format",
      "access_log",
      "max_body_bytes",
      "client.max_header_bytes",
      "client.request_timeout_s",
      "client.idle_timeout_s",
      "client.write_timeout_s",
      "client.max_buffered_bytes",
      "tls.cert_file",
      "tls.key_file",
      "peer_sync.url",
      "peer_sync.cluster",
      "peer_sync.heartbeat_s",
      "peer_sync.peer_timeout_s",
      "peer_sync.entry_ttl_s",
      "replica_dns",
      "dns_server",
  };
  EXPECT_EQ(restart, expected);
}

TEST(Settings, SetSettingTypes) {
  RouterConfig c;
  std::string e;
  EXPECT_TRUE(set_setting(*find_setting("stream_usage"), "off", "stream_usage", c, e));
  EXPECT_FALSE(c.stream_usage);
  EXPECT_FALSE(set_setting(*find_setting("stream_usage"), "maybe", "stream_usage", c, e));
  EXPECT_EQ(e, "stream_usage must be true or false");
  EXPECT_TRUE(set_setting(*find_setting("policy.seed"), "+12", "policy.seed", c, e)) << e;
  EXPECT_EQ(c.policy.seed, 12u);
  EXPECT_FALSE(set_setting(*find_setting("policy.params"), "a=1", "policy.params", c, e));
  EXPECT_EQ(setting_value(*find_setting("scrape.interval_s"), RouterConfig{}), "0.05");
  EXPECT_EQ(setting_range(*find_setting("listen.port")), "[0, 65535]");
  EXPECT_EQ(setting_range(*find_setting("listen.host")), "");
}

}  // namespace
}  // namespace eta::router
