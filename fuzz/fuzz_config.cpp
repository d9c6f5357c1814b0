// libFuzzer harness: the `eta route` configuration loader (router::parse_config_yaml, then
// validate_config). Properties: never crashes or throws (yaml-cpp's exceptions included); a
// rejected configuration has a one-line error naming the source.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "router/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  eta::router::RouterConfig config;
  std::string error;
  if (!eta::router::parse_config_yaml(text, "fuzz.yaml", config, error)) {
    if (error.rfind("fuzz.yaml", 0) != 0 || error.find('\n') != std::string::npos) std::abort();
    return 0;
  }
  if (!error.empty()) std::abort();
  if (!eta::router::validate_config(config, error) &&
      (error.empty() || error.find('\n') != std::string::npos)) {
    std::abort();
  }
  return 0;
}
