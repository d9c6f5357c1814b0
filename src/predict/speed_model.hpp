// A replica's speed: the engine's step-time model for its GPU profile (engine::StepTimeModel),
// times a speed factor learned online from what the router observes (1 = as fast as the
// profile says; 0.5 = every step takes twice as long). Two factors, because prefill is compute
// bound and decode memory bound: the prefill factor learns from observed TTFTs, the decode factor
// from inter-token gaps. Until a factor has its own observations it borrows the other's.
//
// Learning is a clipped (Huber-style) exponential average in log space: each observation moves
// log(factor) towards log(predicted at factor 1 / observed) by `learning_rate` of the
// difference, the difference clipped to +-max_log_step, so a gap stretched by an unmodelled
// prefill chunk or a network stall cannot drag the estimate far. The first observations count
// more (a weighted running mean until their weight reaches 1/learning_rate), so a replica on a
// slower GPU is learned from its first few dozen steps, and a replica that slows down later
// within a few hundred (seconds of traffic). Token gaps are weighted 1/batch: the B gaps of one
// decode step are one observation of that step. The owner (cluster::ClusterState) only reports
// gaps of steps that ran no prefill it knows of, so the decode factor is the replica's decode
// speed; the prefill factor is learned from TTFTs.
#pragma once

#include <algorithm>
#include <memory>
#include <vector>

#include "engine/engine.hpp"

namespace eta::predict {

// StepTimeModel pieces precomputed for O(1) evaluation on the routing path. Immutable; share one
// among replicas with the same configuration. Milliseconds at the configuration's own speed
// (EngineConfig::speed applied), i.e. at learned factor 1.
class StepTables {
 public:
  static std::shared_ptr<const StepTables> make(const engine::EngineConfig& config);

  const engine::EngineConfig& config() const { return config_; }  // resolved
  const engine::StepTimeModel& model() const { return model_; }

  // One decode-only step of `batch` sequences without attention: linear + lm_head + overhead.
  // Fractional batches interpolate.
  double decode_step_ms(double batch) const {
    if (!(batch > 0)) return 0;
    if (batch >= decode_max_batch_) return decode_step_formula_ms(batch);
    const auto i = static_cast<size_t>(batch);
    const double frac = batch - static_cast<double>(i);
    return decode_ms_[i] + (decode_ms_[i + 1] - decode_ms_[i]) * frac;
  }
  double linear_ms(int tokens) const {
    return tokens >= 0 && tokens < linear_table_size_ ? linear_ms_[static_cast<size_t>(tokens)]
                                                      : model_.linear_ms(tokens) * inv_speed_;
  }
  double lm_head_ms(double sampled) const {
    return sampled <= 0 ? 0 : std::max(lm_read_ms_, lm_ms_per_row_ * sampled);
  }
  double overhead_ms() const { return overhead_ms_; }
  double kv_ms_per_token() const { return kv_ms_per_token_; }          // decode attention
  double prefill_ms_per_pair() const { return prefill_ms_per_pair_; }  // prefill attention
  double prefill_ms_per_cached_token() const { return prefill_ms_per_cached_token_; }
  // linear_ms(max_num_batched_tokens), the linear part of a full chunked-prefill step.
  double full_step_linear_ms() const { return full_step_linear_ms_; }

  // model().step_ms(b) at this speed; the linear and lm_head terms from tables of the model's
  // own values (bit-identical to calling the model: same terms, same order of additions).
  double step_ms(const engine::BatchShape& b) const {
    if (b.num_tokens <= 0) return model_.step_ms(b) * inv_speed_;
    const double linear = b.num_tokens < raw_table_size_
                              ? raw_linear_ms_[static_cast<size_t>(b.num_tokens)]
                              : model_.linear_ms(b.num_tokens);
    const double lm_head = b.num_sampled >= 0 && b.num_sampled < raw_lm_table_size_
                               ? raw_lm_head_ms_[static_cast<size_t>(b.num_sampled)]
                               : model_.lm_head_ms(b.num_sampled);
    return (linear + lm_head + model_.decode_attention_ms(b.decode_kv_tokens) +
            model_.prefill_attention_ms(b.prefill_attn_pairs, b.prefill_kv_tokens) +
            model_.overhead_ms()) *
           inv_speed_;
  }

 private:
  explicit StepTables(const engine::EngineConfig& config);
  double decode_step_formula_ms(double batch) const;

  engine::EngineConfig config_;
  engine::StepTimeModel model_;
  double inv_speed_ = 1;
  std::vector<double> decode_ms_;  // index: batch size 0..max_num_seqs
  std::vector<double> linear_ms_;  // index: tokens 0..max_num_batched_tokens + max_num_seqs
  // model_.linear_ms(tokens) and model_.lm_head_ms(sampled), unscaled, for step_ms().
  std::vector<double> raw_linear_ms_;
  std::vector<double> raw_lm_head_ms_;
  int raw_table_size_ = 0;
  int raw_lm_table_size_ = 0;
  double decode_max_batch_ = 0;  // decode_ms_.size() - 1
  int linear_table_size_ = 0;    // linear_ms_.size()
  double lm_read_ms_ = 0;
  double lm_ms_per_row_ = 0;
  double overhead_ms_ = 0;
  double kv_ms_per_token_ = 0;
  double prefill_ms_per_pair_ = 0;
  double prefill_ms_per_cached_token_ = 0;
  double full_step_linear_ms_ = 0;
};

struct SpeedModelOptions {
  double learning_rate = 0.05;  // weight of one observation once warmed up
  double max_log_step = 0.5;    // clip on |log(observed ratio) - log(factor)| per observation
  int min_observations = 5;     // a factor with fewer borrows the other's (or the prior)
  double min_factor = 0.02;     // the learned factor stays within [min_factor, max_factor]
  double max_factor = 50;
};

class SpeedModel {
 public:
  explicit SpeedModel(const engine::EngineConfig& config, SpeedModelOptions options = {});
  explicit SpeedModel(std::shared_ptr<const StepTables> tables, SpeedModelOptions options = {});

  const StepTables& tables() const { return *tables_; }
  const engine::EngineConfig& config() const { return tables_->config(); }

  // Learned speed relative to the profile: 1 = as profiled, 0.5 = twice slower.
  double decode_factor() const {
    sync();
    return decode_factor_;
  }
  double prefill_factor() const {
    sync();
    return prefill_factor_;
  }
  // 1 / factor, for the routing loop (multiplications instead of divisions).
  double inv_decode_factor() const {
    sync();
    return inv_decode_factor_;
  }
  double inv_prefill_factor() const {
    sync();
    return inv_prefill_factor_;
  }
  int decode_observations() const { return decode_.n; }
  int prefill_observations() const { return prefill_.n; }

  // Step duration at factor 1 (the profile at its configured speed).
  double base_step_seconds(const engine::BatchShape& b) const { return tables_->step_ms(b) * 1e-3; }
  // ... and with the learned decode factor.
  double step_seconds(const engine::BatchShape& b) const {
    return base_step_seconds(b) / decode_factor();
  }

  // Observed time per output token over a relayed gap (gap / tokens in it), and the batch the
  // replica was believed to run meanwhile (decodes, their context, any prefill chunk). A step
  // of B sequences yields B such gaps, all measuring the same step: each counts 1/B of an
  // observation, so one step is one observation whatever its batch (otherwise one misjudged
  // step of a large batch would move the factor B times).
  // `gaps`: how many of the step's gaps this one observation stands for (the owner may report a
  // step once instead of once per token: weight gaps / B; at most 1).
  void observe_itl(double seconds_per_token, const engine::BatchShape& shape, int gaps = 1);
  // Observed TTFT against the TTFT the completion model predicted at dispatch at factor 1
  // (queue ahead + own uncached prefill). Non-positive values are ignored.
  void observe_ttft(double observed_s, double base_predicted_s);
  // A non-streamed response: only the total is seen; it updates both factors.
  void observe_e2e(double observed_s, double base_predicted_s);

  // Sets both factors (e.g. restored state, tests); observations count as `weight`.
  void set_factors(double prefill, double decode, int weight);

 private:
  struct Estimate {
    double log_factor = 0;
    int n = 0;          // observations
    double weight = 0;  // their total weight (an observation of a step of B gaps: 1/B each)
  };
  void update(Estimate& e, double log_ratio, double weight = 1.0);
  double clamp_factor(double log_factor) const;
  // The cached factors below are computed lazily: an observation (one per relayed token) only
  // marks them stale, and the first read after it recomputes them.
  void refresh() { stale_ = true; }
  void sync() const {
    if (stale_) recompute();
  }
  void recompute() const;

  std::shared_ptr<const StepTables> tables_;
  SpeedModelOptions options_;
  Estimate prefill_;
  Estimate decode_;
  mutable bool stale_ = true;
  mutable double prefill_factor_ = 1;
  mutable double decode_factor_ = 1;
  mutable double inv_prefill_factor_ = 1;
  mutable double inv_decode_factor_ = 1;
  // The log factors the cached factors above were computed from: recompute() skips exp() when
  // a factor's source has not changed (the other estimate was updated). NaN: not computed yet.
  mutable double prefill_source_;
  mutable double decode_source_;
  double log_min_factor_ = 0;  // log(options_.min_factor), log(options_.max_factor)
  double log_max_factor_ = 0;
};

}  // namespace eta::predict
