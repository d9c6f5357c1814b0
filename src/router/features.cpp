#include "router/features.hpp"

#include <algorithm>
#include <limits>

#include "predict/token_estimate.hpp"

namespace eta::router {

void extract_request_info(const openai::RequestFields& fields, std::string_view session_header,
                          int block_size, RequestInfo& out) {
  out.model = fields.model;
  out.stream = fields.stream;
  predict::PromptEstimate estimate;
  if (fields.prompt_is_tokens) {
    predict::estimate_prompt(fields.prompt_token_ids, block_size, estimate);
  } else {
    predict::estimate_prompt(fields.prompt_text, block_size, estimate);
  }
  out.prompt_tokens = estimate.tokens;
  out.block_hashes = std::move(estimate.block_hashes);
  out.max_tokens.reset();
  if (fields.max_tokens) {
    out.max_tokens =
        static_cast<int>(std::min<int64_t>(*fields.max_tokens, std::numeric_limits<int>::max()));
  }
  out.ignore_eos = fields.ignore_eos;
  out.session_hash.reset();
  if (!session_header.empty()) {
    out.session_hash = predict::hash_session_key(session_header);
  } else if (!fields.user.empty()) {
    out.session_hash = predict::hash_session_key(fields.user);
  }
  // The output-length predictor's shape context: the endpoint and the stop strings.
  uint64_t shape = fields.endpoint == openai::Endpoint::kChat ? 0x63686174ull : 0x636d706cull;
  for (const std::string& s : fields.stop)
    shape = predict::hash_session_key(std::to_string(shape) + '\x1f' + s);
  out.output_shape = shape;
  // fields.sim_output_tokens (eta_sim) is deliberately never read.
}

void prepare_request(const cluster::ClusterState& state, const openai::RequestFields& fields,
                     std::string_view session_header, RequestInfo& info,
                     cluster::PreparedRequest& out) {
  extract_request_info(fields, session_header, kHashBlockSize, info);
  state.prepare(info.model, info.prompt_tokens, info.block_hashes, info.max_tokens, info.ignore_eos,
                info.session_hash, out, info.output_shape);
}

}  // namespace eta::router
