// Predicts how many tokens a request will generate, from what the router can legitimately know,
// as a distribution:
//   - ignore_eos with max_tokens: exactly max_tokens (the engine cannot stop earlier);
//   - otherwise the lengths it has seen finish, in contexts of what it sees of a request, each a
//     decaying histogram of output lengths in quarter-octave bins:
//       template  the model and the prompt's leading prefix blocks (requests from one template
//                 answer alike)
//       session   the model and the session key (x-session-id or `user`: one client)
//       shape     the model, endpoint and stop settings (RequestFeatures::output_shape), the
//                 max_tokens and prompt-length octaves
//       prompt    the model and the prompt-length octave
//       model     the model
//       global    everything
//     Each context is judged against the global one on the same requests, prequentially: before
//     a finished length is learned, both guesses' clipped relative errors are compared, and the
//     context keeps the decayed mean and variance of how much better its guess was. A query is
//     answered by the context whose advantage is surest (the largest lower confidence bound,
//     mean - confidence_z x standard error, if above zero), else the global one; before the
//     global one has min_weight of samples, the most specific context that has, else the prior.
//     So a context that carries no information (its advantage is noise) is not used, and a
//     workload whose lengths depend on nothing the router sees gets the global best constant.
//   The answer: `expected`, E[min(X, cap)] (what the ETA's work estimate needs; cap = max_tokens,
//   the context length), `point`, the guess with the least median relative error (the best
//   constant of the context's histogram, capped), and `sd`, the standard deviation of min(X, cap).
// Memory is bounded: contexts live in one table of at most max_contexts entries (the lightest
// half is dropped when it fills). Never reads the simulator's eta_sim field: the caller only
// passes what a real client request carries.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <unordered_map>

namespace eta::predict {

struct OutputPredictorOptions {
  double prior_output_tokens = 256;  // before anything is learned
  double min_weight = 8;             // a context with less (decayed) weight is not used
  double decay = 1.0 / 512;          // each sample fades the context's older ones by this fraction
  int template_blocks = 4;           // leading prefix blocks that name a template
  double confidence_z = 1.0;         // a context must beat the global one by this many errors
  double min_judged = 4;             // paired comparisons before a context may be chosen
  size_t max_contexts = 8192;
};

// What the predictor reads of a request.
struct OutputQuery {
  std::string_view model;
  int prompt_tokens = 0;
  std::optional<int> max_tokens;
  bool ignore_eos = false;
  int max_model_len = 0;                   // > 0: caps at max_model_len - prompt
  std::span<const uint64_t> block_hashes;  // the prompt's chained block hashes
  std::optional<uint64_t> session_hash;
  uint64_t shape = 0;  // endpoint and stop settings
};

struct OutputPrediction {
  int expected = 1;  // E[min(X, cap)], >= 1
  int point = 1;     // least median relative error guess, >= 1
  double sd = 0;     // standard deviation of min(X, cap), tokens
  int context = -1;  // which context answered (kTemplate..kGlobal), -1: the prior or exact
};

class OutputLengthPredictor {
 public:
  enum Context { kTemplate, kSession, kShape, kPrompt, kModel, kGlobal, kContexts };
  // The context keys of a request (0: the request has no such context).
  using Keys = std::array<uint64_t, kContexts>;

  explicit OutputLengthPredictor(OutputPredictorOptions options = {}) : options_(options) {}

  Keys keys(const OutputQuery& q) const;
  OutputPrediction predict(const OutputQuery& q) const;
  // A finished request's output length, with the keys of its query. Requests run with
  // ignore_eos say nothing about natural lengths: do not observe them.
  void observe(const Keys& keys, int output_tokens);

  // The model and prompt length only (the contexts prompt, model, global).
  int predict(std::string_view model, int prompt_tokens, std::optional<int> max_tokens,
              bool ignore_eos, int max_model_len = 0) const;
  void observe(std::string_view model, int prompt_tokens, int output_tokens);
  // Expected (uncapped) natural length for tests and diagnostics.
  double mean(std::string_view model, int prompt_tokens) const;
  size_t contexts() const { return table_.size(); }

 private:
  static constexpr int kBins = 72;  // quarter octaves: [2^(b/4), 2^((b+1)/4)), the last open
  struct Histogram {
    std::array<float, kBins> weight{};
    std::array<float, kBins> sum{};
    double total = 0;
    // Paired with the global context on the same requests: the decayed mean and mean square of
    // (global's clipped relative error - this one's), and of how many.
    double advantage = 0;
    double advantage_sq = 0;
    double judged = 0;
    mutable double point = 0;  // cached best constant (0: stale)
    mutable int stale = 0;     // samples since it was computed
    void add(int output_tokens, double decay);
    double best_constant() const;
    void moments_capped(double cap, double& mean, double& sd) const;
  };
  const Histogram* find(uint64_t key) const;
  Histogram& slot(uint64_t key);
  double cap_of(const OutputQuery& q) const;
  OutputPrediction answer(const Keys& keys, double cap) const;

  OutputPredictorOptions options_;
  std::unordered_map<uint64_t, Histogram> table_;
};

}  // namespace eta::predict
