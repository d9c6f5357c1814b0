// Output-length rules (output_length.hpp).
#include "engine/output_length.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <numbers>

#include "engine/hash.hpp"

namespace eta::engine {

namespace {
constexpr double kNaturalMedian = 180.0;
constexpr double kNaturalSigma = 0.9;
}  // namespace

int natural_output_length(uint64_t prompt_hash, uint64_t seed) {
  // Two uniforms from the (prompt, seed) pair, then Box-Muller for a standard normal.
  const uint64_t key = mix64(prompt_hash ^ mix64(seed + 0x632be59bd9b4e019ull));
  const double u1 = unit_open(mix64(key + 1));
  const double u2 = unit_open(mix64(key + 2));
  const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  const double n = std::round(kNaturalMedian * std::exp(kNaturalSigma * z));
  return std::max(1, static_cast<int>(std::min(n, 1e9)));
}

OutputLength decide_output_length(const OutputLengthInput& in) {
  // What the context leaves (at least 1: the caller rejects prompts that fill the context).
  const int context_left =
      in.max_model_len > 0 ? std::max(1, in.max_model_len - in.prompt_tokens) : INT_MAX;
  const int max_tokens = in.max_tokens ? std::max(1, *in.max_tokens) : INT_MAX;

  OutputLength out;
  if (in.ignore_eos) {
    out.tokens = std::min(max_tokens, context_left);
    out.reason = FinishReason::kLength;
    return out;
  }
  const int natural = in.hidden_length ? std::max(1, *in.hidden_length)
                                       : natural_output_length(in.prompt_hash, in.seed);
  out.tokens = natural;
  out.reason = FinishReason::kStop;
  if (max_tokens < out.tokens) {
    out.tokens = max_tokens;
    out.reason = FinishReason::kLength;
  }
  if (context_left < out.tokens) {
    out.tokens = context_left;
    out.reason = FinishReason::kLength;
  }
  return out;
}

}  // namespace eta::engine
