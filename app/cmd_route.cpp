// `eta route`: the load balancer (src/router/). Flags override the YAML file given with --config;
// every configuration error stops the program with one line and exit code 2.
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "router/config.hpp"
#include "router/router.hpp"

namespace eta::app {

namespace {

struct RouteOptions {
  std::string config_file;
  // One option per flag of the settings table (router/core/settings.hpp): path -> text, checked
  // by apply_flags with the setting's type and range.
  std::map<std::string, std::string, std::less<>> values;
  std::vector<std::string> replicas;
  std::vector<std::string> api_keys;
  std::string check_config;  // --check-config (issue 13)
  bool print_settings_reference = false;
};

int fail(const std::string& message) {
  std::fprintf(stderr, "eta route: %s\n", message.c_str());
  return 2;
}

int run_route(const RouteOptions& o, const CLI::App& cmd) {
  if (o.print_settings_reference) {  // docs/settings.md
    std::fputs(router::settings_reference_markdown().c_str(), stdout);
    return 0;
  }
  router::RouterConfig config;
  std::string error;
  const std::string& file = o.check_config.empty() ? o.config_file : o.check_config;
  if (!file.empty() && !router::load_config_file(file, config, error)) {
    return fail(error);
  }
  router::RouteFlags f;
  for (const router::Setting& s : router::settings()) {
    const std::string flag(router::setting_flag(s));
    if (flag.empty() || cmd.count(flag) == 0) continue;
    if (s.path == "replicas") {
      f.replicas = o.replicas;
    } else if (s.path == "api_keys") {
      f.api_keys = o.api_keys;
    } else {
      f.values[std::string(s.path)] = o.values.find(s.path)->second;
    }
  }
  if (!router::apply_flags(f, config, error)) return fail(error);
  if (!router::validate_config(config, error)) return fail(error);
  if (!o.check_config.empty()) {  // --check-config: validated, nothing started
    std::printf("%s: configuration ok (%zu replicas, %zu DNS names, policy %s%s)\n",
                o.check_config.c_str(), config.replicas.size(), config.replica_dns.size(),
                config.policy.name.c_str(), config.peer_sync.enabled() ? ", peer sync" : "");
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

// The help of a setting's flag: the table's text and the default.
std::string flag_help(const router::Setting& s) {
  std::string help(s.help);
  const std::string value = router::setting_value(s, router::RouterConfig{});
  if (!value.empty()) help += " (default " + value + ")";
  if (s.reload == router::Reload::kRestart) help += "; a reload keeps the running value";
  return help;
}

// One option per flag of the settings table; values are checked by apply_flags.
void add_setting_options(CLI::App& cmd, RouteOptions& opts) {
  for (const router::Setting& s : router::settings()) {
    if (s.flag.empty()) continue;
    const std::string names(s.flag);
    if (s.path == "replicas") {
      cmd.add_option(names, opts.replicas, flag_help(s))->type_name("URL[,k=v...]");
    } else if (s.path == "api_keys") {
      cmd.add_option(names, opts.api_keys, flag_help(s))->type_name("KEY");
    } else {
      static constexpr const char* kTypeNames[] = {"TEXT",  "BOOL", "INT",
                                                   "FLOAT", "LIST", "K=V,..."};
      cmd.add_option(names, opts.values[std::string(s.path)], flag_help(s))
          ->type_name(kTypeNames[static_cast<int>(s.type)]);
    }
  }
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
  add_setting_options(*cmd, *opts);
  cmd->add_option("--check-config", opts->check_config,
                  "validate this configuration file (with the other flags over it) and exit: 0, "
                  "or 2 with the one-line error");
  cmd->add_flag("--print-settings-reference", opts->print_settings_reference,
                "print the reference of every setting (docs/settings.md, Markdown) and exit");
  cmd->callback([opts, cmd, &action] { action = [opts, cmd] { return run_route(*opts, *cmd); }; });
}

}  // namespace eta::app
