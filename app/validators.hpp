// CLI11 validators with short, clear messages (CLI11 2.1's PositiveNumber prints the whole
// double range). Shared by every subcommand.
#pragma once

#include <cstdlib>
#include <string>

#include <CLI/CLI.hpp>

namespace eta::app {

// A number strictly greater than zero.
inline CLI::Validator positive_number() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(value.c_str(), &end);
        if (end == value.c_str() || *end != '\0') return "'" + value + "' is not a number";
        if (!(v > 0)) return "must be greater than 0, got " + value;
        return {};
      },
      "POSITIVE", "positive_number");
}

}  // namespace eta::app
