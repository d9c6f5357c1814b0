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
  // max_tokens is generous (max(factor * output, min), capped by the context) and the true
  // length travels only in the simulator's vendor field eta_sim.output_tokens: the router has to
  // predict output lengths as it would for real traffic.
  kHidden,
};
const char* to_string(LengthsMode mode);
bool parse_lengths_mode(std::string_view text, LengthsMode& out);  // "exact" | "hidden"

struct BodyOptions {
  std::string model;
  Api default_api = Api::kCompletions;  // for requests whose `api` is unset
  LengthsMode lengths = LengthsMode::kExact;
  int max_model_len = 0;       // > 0: caps the hidden max_tokens at max_model_len - prompt
  double hidden_factor = 2.0;  // hidden max_tokens = max(factor * output, hidden_min_tokens)
  int hidden_min_tokens = 256;
  std::optional<double> temperature = 0.0;  // unset: not sent
  bool send_output_seed = false;            // adds eta_sim.output_seed = request.output_seed
  bool send_session_as_user = false;        // adds "user": session_id for requests with a session
};

// "/v1/completions" or "/v1/chat/completions".
std::string_view endpoint_path(Api api);
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
