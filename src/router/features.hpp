// What the router derives from a client's request to route it: the model, the prompt's token
// estimate and block hashes (toy tokenizer, predict::estimate_prompt), max_tokens, ignore_eos and
// the session key. Pure. It reads only fields a real client request carries: never the
// simulator's `eta_sim` vendor field (RequestFields::sim_output_tokens), so output lengths are
// predicted, not told (tested in router_features_test.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/state.hpp"
#include "openai/request.hpp"

namespace eta::router {

inline constexpr std::string_view kSessionHeader = "x-session-id";
// Tokens per prefix-index block (ClusterStateOptions::hash_block_size of the router's state).
inline constexpr int kHashBlockSize = 16;

struct RequestInfo {
  std::string model;
  bool stream = false;
  int prompt_tokens = 0;
  std::vector<uint64_t> block_hashes;
  std::optional<int> max_tokens;
  bool ignore_eos = false;
  std::optional<uint64_t> session_hash;
  // The output predictor's shape context: a hash of the endpoint and the stop settings.
  uint64_t output_shape = 0;
};

// `session_header` is the value of the request's x-session-id header (empty if none); the body's
// `user` is the fallback session key.
void extract_request_info(const openai::RequestFields& fields, std::string_view session_header,
                          int block_size, RequestInfo& out);

// extract_request_info + ClusterState::prepare.
void prepare_request(const cluster::ClusterState& state, const openai::RequestFields& fields,
                     std::string_view session_header, RequestInfo& info,
                     cluster::PreparedRequest& out);

}  // namespace eta::router
