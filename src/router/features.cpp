#include "router/features.hpp"

#include <algorithm>
#include <limits>

#include "predict/token_estimate.hpp"

namespace eta::router {

namespace {

int clamp_int(int64_t v) {
  return static_cast<int>(std::clamp<int64_t>(v, 0, std::numeric_limits<int>::max() / 2));
}

}  // namespace

void extract_request_info(const openai::ExtractedRequest& r, std::string_view model,
                          std::string_view session_header, int block_size, RequestInfo& out,
                          const std::vector<uint32_t>* exact_tokens) {
  out.model = std::string(model);
  out.stream = r.stream;
  predict::PromptEstimate estimate;
  if (exact_tokens != nullptr) {
    predict::estimate_prompt(*exact_tokens, block_size, estimate);
  } else if (r.prompt_is_tokens) {
    predict::estimate_prompt(r.prompt_token_ids, block_size, estimate);
  } else {
    predict::estimate_prompt(r.prompt_text, block_size, estimate);
  }
  out.prompt_tokens = clamp_int(estimate.tokens + r.extra_prompt_tokens);
  out.block_hashes = std::move(estimate.block_hashes);
  out.max_tokens.reset();
  if (r.max_tokens) out.max_tokens = clamp_int(*r.max_tokens);
  out.ignore_eos = r.ignore_eos;
  out.decode = r.decode;
  out.sequences = r.decode ? clamp_int(std::min<int64_t>(r.n * r.prompts, 1 << 20)) : 1;
  if (out.sequences < 1) out.sequences = 1;
  out.session_hash.reset();
  if (!session_header.empty()) {
    out.session_hash = predict::hash_session_key(session_header);
  } else if (!r.session_id.empty()) {
    out.session_hash = predict::hash_session_key(r.session_id);
  } else if (!r.user.empty()) {
    out.session_hash = predict::hash_session_key(r.user);
  }
  // The output-length predictor's shape context: the endpoint and the stop strings.
  uint64_t shape = r.api == openai::Api::kChat ? 0x63686174ull
                   : r.api == openai::Api::kCompletions
                       ? 0x636d706cull
                       : 0x617069ull + static_cast<uint64_t>(r.api);
  for (const std::string& s : r.stop)
    shape = predict::hash_session_key(std::to_string(shape) + '\x1f' + s);
  out.output_shape = shape;
}

void prepare_request(const cluster::ClusterState& state, const openai::ExtractedRequest& request,
                     std::string_view model, std::string_view session_header, RequestInfo& info,
                     cluster::PreparedRequest& out, const std::vector<uint32_t>* exact_tokens) {
  extract_request_info(request, model, session_header, kHashBlockSize, info, exact_tokens);
  if (!info.decode) {
    // Prefill only: exactly one output (no decode step); exact, so nothing is learned from it.
    state.prepare(info.model, info.prompt_tokens, info.block_hashes, 1, true, info.session_hash,
                  out, info.output_shape);
    return;
  }
  // One sequence's output is predicted from one prompt's size; a batch shares it out.
  const int prompts = static_cast<int>(std::max<int64_t>(1, request.prompts));
  const int per_prompt = std::max(1, info.prompt_tokens / prompts);
  state.prepare(info.model, per_prompt, info.block_hashes, info.max_tokens, info.ignore_eos,
                info.session_hash, out, info.output_shape);
  cluster::RequestFeatures& f = out.features;
  f.prompt_tokens = info.prompt_tokens;
  if (info.sequences > 1) {
    const int64_t s = info.sequences;
    f.predicted_output_tokens = clamp_int(static_cast<int64_t>(f.output_tokens()) * s);
    if (f.max_tokens) f.max_tokens = clamp_int(static_cast<int64_t>(*f.max_tokens) * s);
  }
}

}  // namespace eta::router
