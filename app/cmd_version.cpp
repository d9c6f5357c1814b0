#include <cstdio>

#include "commands.hpp"

namespace eta::app {

void add_version_command(CLI::App& root, Action& action) {
  auto* cmd = root.add_subcommand("version", "print eta's version");
  cmd->callback([&action] {
    action = [] {
      std::printf("eta %s\n", ETA_VERSION);
      return 0;
    };
  });
}

}  // namespace eta::app
