// The simulator's output-length rules (issue 1/7):
//   ignore_eos:            max_tokens (finish_reason "length")
//   eta_sim.output_tokens: that natural length (finish "stop"), capped by max_tokens ("length")
//   neither:               a natural length drawn from a seeded distribution keyed by the prompt
//                          (same prompt -> same length), capped by max_tokens.
// Everything is also capped by max_model_len - prompt_tokens ("length").
#pragma once

#include <cstdint>
#include <optional>

#include "engine/engine.hpp"

namespace eta::engine {

struct OutputLengthInput {
  int prompt_tokens = 0;
  uint64_t prompt_hash = 0;       // hash of the prompt text/tokens
  std::optional<int> max_tokens;  // as resolved by the API layer (None: up to the context)
  bool ignore_eos = false;
  std::optional<int> hidden_length;  // eta_sim.output_tokens
  int max_model_len = 0;
  uint64_t seed = 0;  // the server's --seed
};

struct OutputLength {
  int tokens = 1;
  FinishReason reason = FinishReason::kLength;
};

OutputLength decide_output_length(const OutputLengthInput& in);
// The natural length drawn for a prompt with no hint: log-normal, median 180 tokens,
// sigma 0.9, at least 1 (matches the order of the Azure conversation trace's outputs).
int natural_output_length(uint64_t prompt_hash, uint64_t seed);

}  // namespace eta::engine
