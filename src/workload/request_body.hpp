// The JSON body `eta bench` sends for a WorkloadRequest (Boost.JSON), documented in
// docs/workloads.md "What bench sends".
#pragma once

#include <boost/json/object.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "workload/workload.hpp"

namespace eta::workload {

enum class LengthsMode {
  // max_tokens = the true output length and ignore_eos = true: every server (vLLM or the
  // simulator) produces exactly that many tokens, and the router may read max_tokens.
  kExact,
  // The true length travels only in the simulator's vendor field eta_sim.output_tokens: the
  // router has to predict output lengths as it would for real traffic. max_tokens is one value
  // for the whole workload, as one application sends (BodyOptions::hidden_max_tokens: the
  // workload's longest answer rounded up to a power of two, at least 256), capped by the
  // context: it says nothing about this request's length.
  kHidden,
  // As kHidden, but max_tokens = max(factor * output, min), capped by the context: the rule of
  // the figures before 2026-12-02. It tells a router that reads max_tokens the true length
  // within a factor of two (for answers over min / factor), so it flatters any length predictor.
  kHiddenScaled,
};
const char* to_string(LengthsMode mode);
// "exact" | "hidden" | "hidden-scaled"
bool parse_lengths_mode(std::string_view text, LengthsMode& out);
bool is_hidden(LengthsMode mode);

struct BodyOptions {
  std::string model;
  Api default_api = Api::kCompletions;  // for requests whose `api` is unset
  LengthsMode lengths = LengthsMode::kExact;
  int max_model_len = 0;       // > 0: caps the hidden max_tokens at max_model_len - prompt
  int hidden_max_tokens = 0;   // kHidden's max_tokens (workload_max_tokens); 0: 256
  double hidden_factor = 2.0;  // kHiddenScaled: max(factor * output, hidden_min_tokens)
  int hidden_min_tokens = 256;
  std::optional<double> temperature = 0.0;  // unset: not sent
  bool send_output_seed = false;            // adds eta_sim.output_seed = request.output_seed
  bool send_session_as_user = false;        // adds "user": session_id for requests with a session
};

// "/v1/completions" or "/v1/chat/completions".
std::string_view endpoint_path(Api api);
// kHidden's one max_tokens for `w`: its longest answer rounded up to a power of two, >= 256.
int workload_max_tokens(const Workload& w);
// The max_tokens (chat: max_completion_tokens) value sent for `r`.
int max_tokens_for(const WorkloadRequest& r, const BodyOptions& options);

// Completions: {"model","prompt","max_tokens","stream":true,
//               "stream_options":{"include_usage":true},"temperature"?,
//               exact: "ignore_eos":true | hidden: "eta_sim":{"output_tokens":N}}
// Chat: the same with "messages":[{"role":"user","content":prompt}] and
//       "max_completion_tokens" instead of "prompt"/"max_tokens".
boost::json::object build_request_json(const WorkloadRequest& r, const BodyOptions& options);
std::string build_request_body(const WorkloadRequest& r, const BodyOptions& options);

}  // namespace eta::workload
