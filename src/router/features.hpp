// What the router derives from a client's request to route it: the model, the prompt's token
// estimate and block hashes (toy tokenizer, predict::estimate_prompt, or the model's own token
// ids when the replica's /tokenize gave them), max_tokens, ignore_eos,
// how many sequences it generates, whether it decodes at all, and the session key. Pure. It
// reads what openai::extract_request read (lenient, never refusing), and never the simulator's
// `eta_sim` vendor field, so output lengths are predicted, not told (tested in
// router_features_test.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/state.hpp"
#include "openai/extract.hpp"

namespace eta::router {

inline constexpr std::string_view kSessionHeader = "x-session-id";
// Tokens per prefix-index block (ClusterStateOptions::hash_block_size of the router's state).
inline constexpr int kHashBlockSize = 16;

struct RequestInfo {
  std::string model;
  bool stream = false;
  int prompt_tokens = 0;               // every prompt of a batch, multimodal estimates included
  std::vector<uint64_t> block_hashes;  // of the first prompt
  std::optional<int> max_tokens;       // per sequence
  bool ignore_eos = false;
  bool decode = true;  // false: prefill only (pooling, render, ...): one "output" token
  int sequences = 1;   // n (or best_of) x prompts: each generates its own output
  std::optional<uint64_t> session_hash;
  // The output predictor's shape context: a hash of the endpoint and the stop settings.
  uint64_t output_shape = 0;
};

// `session_header` is the value of the request's x-session-id header (empty if none); the body's
// `session_id`, then `user`, are the fallback session keys. `model` is the request's, or the
// router's default when it sent none. `exact_tokens`: the first prompt's token ids as the model
// tokenizes it (the replica's /tokenize, core/tokenize.hpp), used instead of the toy
// tokenizer's estimate for its count and block hashes; null: the estimate.
void extract_request_info(const openai::ExtractedRequest& request, std::string_view model,
                          std::string_view session_header, int block_size, RequestInfo& out,
                          const std::vector<uint32_t>* exact_tokens = nullptr);

// extract_request_info + ClusterState::prepare. A request that does not decode is prepared as
// exactly one output token (the prefill's result: no decode step); n sequences or a batch of
// prompts predict (and may generate) that many times one sequence's output.
void prepare_request(const cluster::ClusterState& state, const openai::ExtractedRequest& request,
                     std::string_view model, std::string_view session_header, RequestInfo& info,
                     cluster::PreparedRequest& out,
                     const std::vector<uint32_t>* exact_tokens = nullptr);

}  // namespace eta::router
