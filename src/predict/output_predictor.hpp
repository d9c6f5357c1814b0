// Predicts how many tokens a request will generate, from what the router can legitimately know:
//   - ignore_eos with max_tokens: exactly max_tokens (the engine cannot stop earlier);
//   - otherwise the lengths it has seen finish, per model and prompt-length bucket (log2 of the
//     prompt tokens), as a decaying histogram of log2 output bins; the prediction is the
//     expected length capped by max_tokens, E[min(X, max_tokens)], not min(E[X], max_tokens).
// A bucket with too few samples borrows the model's whole histogram, then all models', then the
// configured prior. Never reads the simulator's eta_sim field: the caller only passes what a
// real client request carries.
#pragma once

#include <array>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace eta::predict {

struct OutputPredictorOptions {
  double prior_output_tokens = 256;  // before anything is learned
  double min_weight = 8;             // a histogram with less (decayed) weight borrows
  double decay = 1.0 / 512;          // each sample fades old ones by this fraction
};

class OutputLengthPredictor {
 public:
  explicit OutputLengthPredictor(OutputPredictorOptions options = {}) : options_(options) {}

  // Predicted output tokens (>= 1). max_model_len > 0 also caps at max_model_len - prompt.
  int predict(std::string_view model, int prompt_tokens, std::optional<int> max_tokens,
              bool ignore_eos, int max_model_len = 0) const;
  // A finished request's output length. Requests run with ignore_eos say nothing about natural
  // lengths: do not observe them.
  void observe(std::string_view model, int prompt_tokens, int output_tokens);

  // Expected (uncapped, unclamped) natural length for tests and diagnostics.
  double mean(std::string_view model, int prompt_tokens) const;

 private:
  static constexpr int kPromptBuckets = 20;
  static constexpr int kOutputBins = 20;
  struct Histogram {
    std::array<double, kOutputBins> weight{};
    std::array<double, kOutputBins> sum{};
    double total = 0;
    void add(int output_tokens, double decay);
    double expected_capped(double cap) const;  // E[min(X, cap)]
  };
  struct ModelStats {
    std::array<Histogram, kPromptBuckets> by_prompt;
    Histogram all;
  };
  static int prompt_bucket(int prompt_tokens);
  const Histogram* pick(std::string_view model, int prompt_tokens) const;

  OutputPredictorOptions options_;
  std::map<std::string, ModelStats, std::less<>> models_;
  Histogram global_;
};

}  // namespace eta::predict
