#include "workload/request_body.hpp"

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <cmath>

namespace eta::workload {

const char* to_string(LengthsMode mode) {
  switch (mode) {
    case LengthsMode::kHidden:
      return "hidden";
    case LengthsMode::kHiddenScaled:
      return "hidden-scaled";
    case LengthsMode::kExact:
      break;
  }
  return "exact";
}

bool is_hidden(LengthsMode mode) {
  return mode != LengthsMode::kExact;
}

bool parse_lengths_mode(std::string_view text, LengthsMode& out) {
  if (text == "exact") {
    out = LengthsMode::kExact;
  } else if (text == "hidden") {
    out = LengthsMode::kHidden;
  } else if (text == "hidden-scaled") {
    out = LengthsMode::kHiddenScaled;
  } else {
    return false;
  }
  return true;
}

std::string_view endpoint_path(Api api) {
  return api == Api::kChat ? "/v1/chat/completions" : "/v1/completions";
}

int workload_max_tokens(const Workload& w) {
  int longest = 1;
  for (const WorkloadRequest& r : w.requests) longest = std::max(longest, r.output_tokens);
  int64_t m = 256;
  while (m < longest) m *= 2;
  return static_cast<int>(std::min<int64_t>(m, 1 << 30));
}

int max_tokens_for(const WorkloadRequest& r, const BodyOptions& options) {
  const int output = std::max(r.output_tokens, 1);
  if (options.lengths == LengthsMode::kExact) return output;
  int64_t m = options.hidden_max_tokens > 0 ? options.hidden_max_tokens : 256;
  if (options.lengths == LengthsMode::kHiddenScaled) {
    const double generous = std::ceil(options.hidden_factor * static_cast<double>(output));
    m = std::max<int64_t>(static_cast<int64_t>(generous), options.hidden_min_tokens);
  }
  m = std::max<int64_t>(m, output);
  if (options.max_model_len > 0) {
    m = std::min<int64_t>(m, static_cast<int64_t>(options.max_model_len) - r.prompt_tokens);
  }
  return static_cast<int>(std::clamp<int64_t>(m, 1, 1 << 30));
}

boost::json::object build_request_json(const WorkloadRequest& r, const BodyOptions& options) {
  const Api api = effective_api(r, options.default_api);
  boost::json::object body;
  body["model"] = options.model;
  if (api == Api::kChat) {
    boost::json::object message;
    message["role"] = "user";
    message["content"] = prompt_text(r, api);
    body["messages"] = boost::json::array{std::move(message)};
    body["max_completion_tokens"] = max_tokens_for(r, options);
  } else {
    body["prompt"] = prompt_text(r, api);
    body["max_tokens"] = max_tokens_for(r, options);
  }
  body["stream"] = true;
  body["stream_options"] = boost::json::object{{"include_usage", true}};
  if (options.temperature) body["temperature"] = *options.temperature;
  boost::json::object sim;
  if (options.lengths == LengthsMode::kExact) {
    body["ignore_eos"] = true;
  } else {
    sim["output_tokens"] = std::max(r.output_tokens, 1);
  }
  if (options.send_output_seed) sim["output_seed"] = r.output_seed;
  if (!sim.empty()) body["eta_sim"] = std::move(sim);
  if (options.send_session_as_user && !r.session_id.empty()) body["user"] = r.session_id;
  return body;
}

std::string build_request_body(const WorkloadRequest& r, const BodyOptions& options) {
  return boost::json::serialize(build_request_json(r, options));
}

}  // namespace eta::workload
