// llm-d's predicted-latency model, re-implemented from its published behaviour (llm-d
// latency-predictor training server and the EPP's predicted-latency producer, 2026): one online
// regressor of TTFT and one of TPOT for the whole pool (llm-d assumes a homogeneous pool), on
// llm-d's features of the candidate endpoint plus the request's input length:
//   kv_cache_percentage, input_token_length, num_request_waiting, num_request_running,
//   num_tokens_generated (TPOT only; 1 when predicting, as the EPP does at scheduling),
//   prefix_cache_score, prefill_tokens_in_flight, decode_tokens_in_flight, and for TTFT the
//   engineered effective_input_tokens = (1 - prefix_cache_score) x input_token_length.
// The model is Bayesian ridge regression (the in-process option; scikit-learn's BayesianRidge
// on StandardScaler'd features, evidence maximisation of the noise and weight precisions),
// refitted every `refit_every` samples from decayed sufficient statistics (bounded memory: O(d^2)
// numbers; llm-d keeps a sliding window of samples instead) and predicting from the cached
// coefficients between refits. Targets are milliseconds, as llm-d's; the API is in seconds.
#pragma once

#include <array>
#include <cstddef>

#include "cluster/view.hpp"

namespace eta::predict {

// llm-d's features of one endpoint for one request.
struct LatencyFeatures {
  double kv_usage = 0;        // 0..1
  double input_tokens = 0;    // the request's prompt
  double waiting = 0;         // requests waiting on the endpoint
  double running = 0;         // requests running on it
  double prefix_score = 0;    // matched prompt blocks / prompt blocks, 0..1
  double prefill_tokens = 0;  // prefill tokens in flight (this router's, without a first token)
  double decode_tokens = 0;  // decode tokens in flight (context of this router's decoding requests)
  double tokens_generated = 1;
};

// The features of `replica` for a request of `prompt_tokens` with `prefix_score`: the scrape when
// fresh (as the EPP reads its metrics), else the router's ledger (waiting = requests without a
// first token, running = decoding, KV = the blocks its in-flight work holds).
LatencyFeatures latency_features(const cluster::ReplicaView& replica,
                                 const cluster::ClusterView& view, int prompt_tokens,
                                 double prefix_score);

// Bayesian ridge regression (scikit-learn's BayesianRidge defaults: tol 1e-3, 300 iterations,
// Gamma(1e-6, 1e-6) priors on both precisions, intercept fitted, features standardised) on
// exponentially decayed sufficient statistics. D <= 8.
class BayesianRidge {
 public:
  static constexpr int kMaxFeatures = 8;
  explicit BayesianRidge(int features = 0, double decay = 1.0 / 4096)
      : d_(features), decay_(decay) {}

  void add(const double* x, double y);
  // Refits from the statistics; false if there are fewer than 2 samples' weight.
  bool fit();
  bool fitted() const { return fitted_; }
  double predict(const double* x) const;
  double samples() const { return weight_; }
  double coefficient(int j) const { return coef_[static_cast<size_t>(j)]; }  // raw scale
  double intercept() const { return intercept_; }

 private:
  int d_;
  double decay_;
  double weight_ = 0;
  std::array<double, kMaxFeatures> sx_{};
  std::array<double, kMaxFeatures * kMaxFeatures> sxx_{};
  std::array<double, kMaxFeatures> sxy_{};
  double sy_ = 0, syy_ = 0;
  bool fitted_ = false;
  std::array<double, kMaxFeatures> coef_{};
  double intercept_ = 0;
};

struct LatencyModelOptions {
  int min_samples = 32;       // no prediction before this many samples (llm-d: a minimum per model)
  int refit_every = 32;       // refit after this many new samples
  double decay = 1.0 / 4096;  // each sample fades the older ones by this fraction
};

class LatencyModel {
 public:
  explicit LatencyModel(LatencyModelOptions options = {});

  void observe_ttft(const LatencyFeatures& f, double ttft_s);
  void observe_tpot(const LatencyFeatures& f, double tpot_s);
  bool ready() const { return ttft_.fitted() && tpot_.fitted(); }
  double predict_ttft_s(const LatencyFeatures& f) const;  // >= 0
  double predict_tpot_s(const LatencyFeatures& f) const;  // >= 0
  double ttft_samples() const { return ttft_.samples(); }
  double tpot_samples() const { return tpot_.samples(); }

 private:
  static constexpr int kTtftFeatures = 8;
  static constexpr int kTpotFeatures = 7;
  static void ttft_row(const LatencyFeatures& f, double* x);
  static void tpot_row(const LatencyFeatures& f, double* x);

  LatencyModelOptions options_;
  BayesianRidge ttft_;
  BayesianRidge tpot_;
  int ttft_new_ = 0;
  int tpot_new_ = 0;
};

}  // namespace eta::predict
