// Each subcommand registers itself on the root CLI11 app and sets `action` to what runs when it
// is the one chosen. Actions return the process exit code.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace eta::app {

using Action = std::function<int()>;

void add_version_command(CLI::App& root, Action& action);
void add_vllm_sim_command(CLI::App& root, Action& action);
void add_cluster_sim_command(CLI::App& root, Action& action);
void add_bench_command(CLI::App& root, Action& action);
void add_route_command(CLI::App& root, Action& action);

}  // namespace eta::app
