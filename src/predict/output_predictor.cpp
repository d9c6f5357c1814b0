#include "predict/output_predictor.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace eta::predict {
namespace {

int log2_bin(int64_t v, int bins) {
  if (v < 2) return 0;
  const int b = 63 - __builtin_clzll(static_cast<uint64_t>(v));
  return std::min(b, bins - 1);
}

}  // namespace

void OutputLengthPredictor::Histogram::add(int output_tokens, double decay) {
  const double keep = 1.0 - decay;
  for (int i = 0; i < kOutputBins; ++i) {
    weight[i] *= keep;
    sum[i] *= keep;
  }
  total *= keep;
  const int b = log2_bin(output_tokens, kOutputBins);
  weight[b] += 1;
  sum[b] += output_tokens;
  total += 1;
}

double OutputLengthPredictor::Histogram::expected_capped(double cap) const {
  if (total <= 0) return 0;
  double acc = 0;
  for (int i = 0; i < kOutputBins; ++i) {
    if (weight[i] <= 0) continue;
    acc += weight[i] * std::min(sum[i] / weight[i], cap);
  }
  return acc / total;
}

int OutputLengthPredictor::prompt_bucket(int prompt_tokens) {
  return log2_bin(prompt_tokens, kPromptBuckets);
}

const OutputLengthPredictor::Histogram* OutputLengthPredictor::pick(std::string_view model,
                                                                    int prompt_tokens) const {
  if (auto it = models_.find(model); it != models_.end()) {
    const Histogram& b = it->second.by_prompt[prompt_bucket(prompt_tokens)];
    if (b.total >= options_.min_weight) return &b;
    if (it->second.all.total >= options_.min_weight) return &it->second.all;
  }
  if (global_.total >= options_.min_weight) return &global_;
  return nullptr;
}

int OutputLengthPredictor::predict(std::string_view model, int prompt_tokens,
                                   std::optional<int> max_tokens, bool ignore_eos,
                                   int max_model_len) const {
  double cap = std::numeric_limits<double>::infinity();
  if (max_tokens && *max_tokens > 0) cap = *max_tokens;
  if (max_model_len > 0) cap = std::min(cap, static_cast<double>(max_model_len - prompt_tokens));
  cap = std::max(cap, 1.0);
  double expected = 0;
  if (ignore_eos && max_tokens && *max_tokens > 0) {
    expected = cap;  // exact: it runs to max_tokens (or the context limit)
  } else if (const Histogram* h = pick(model, prompt_tokens)) {
    expected = h->expected_capped(cap);
  } else {
    expected = std::min(options_.prior_output_tokens, cap);
  }
  return std::max(1, static_cast<int>(std::lround(expected)));
}

double OutputLengthPredictor::mean(std::string_view model, int prompt_tokens) const {
  const Histogram* h = pick(model, prompt_tokens);
  return h ? h->expected_capped(std::numeric_limits<double>::infinity())
           : options_.prior_output_tokens;
}

void OutputLengthPredictor::observe(std::string_view model, int prompt_tokens, int output_tokens) {
  if (output_tokens <= 0) return;
  auto it = models_.find(model);
  if (it == models_.end()) it = models_.emplace(std::string(model), ModelStats{}).first;
  it->second.by_prompt[prompt_bucket(prompt_tokens)].add(output_tokens, options_.decay);
  it->second.all.add(output_tokens, options_.decay);
  global_.add(output_tokens, options_.decay);
}

}  // namespace eta::predict
