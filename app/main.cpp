// eta: one binary, several subcommands (see README.md and docs/architecture.md).
#include <cstdio>
#include <string>

#include "commands.hpp"

int main(int argc, char** argv) {
  CLI::App root{"eta: a load balancer for vLLM that routes each request where it finishes soonest"};
  root.require_subcommand(1);
  eta::app::Action action;
  eta::app::add_version_command(root, action);
  eta::app::add_vllm_sim_command(root, action);
  eta::app::add_cluster_sim_command(root, action);
  eta::app::add_bench_command(root, action);
  eta::app::add_route_command(root, action);
  try {
    root.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return root.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return root.exit(e);
  } catch (const CLI::ParseError& e) {
    // One clear line, exit code 2, for every bad flag or configuration.
    std::string what = e.what();
    if (what.empty()) what = "invalid command line";
    std::fprintf(stderr, "eta: %s (see eta --help)\n", what.c_str());
    return 2;
  }
  return action ? action() : 2;
}
