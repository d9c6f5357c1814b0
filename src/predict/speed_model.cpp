#include "predict/speed_model.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace eta::predict {

std::shared_ptr<const StepTables> StepTables::make(const engine::EngineConfig& config) {
  return std::shared_ptr<const StepTables>(new StepTables(config));
}

StepTables::StepTables(const engine::EngineConfig& config)
    : config_(config.resolved()), model_(config_) {
  inv_speed_ = 1.0 / (config_.speed > 0 ? config_.speed : 1.0);
  // lm_head is max(weight read, rows x per-row compute): recover both terms from the model.
  lm_read_ms_ = model_.lm_head_ms(1) * inv_speed_;
  // Large batches are compute bound: the per-row cost is the slope at the top.
  lm_ms_per_row_ = (model_.lm_head_ms(1 << 20) / static_cast<double>(1 << 20)) * inv_speed_;
  overhead_ms_ = model_.overhead_ms() * inv_speed_;
  kv_ms_per_token_ =
      model_.decode_attention_ms(1 << 20) / static_cast<double>(1 << 20) * inv_speed_;
  prefill_ms_per_pair_ = model_.prefill_attention_ms(1e9, 0) / 1e9 * inv_speed_;
  prefill_ms_per_cached_token_ =
      model_.prefill_attention_ms(0, 1 << 20) / static_cast<double>(1 << 20) * inv_speed_;
  const int table = std::max(config_.max_num_batched_tokens, 1) + std::max(config_.max_num_seqs, 1);
  linear_ms_.resize(static_cast<size_t>(table) + 1);
  for (int t = 0; t <= table; ++t)
    linear_ms_[static_cast<size_t>(t)] = model_.linear_ms(t) * inv_speed_;
  linear_table_size_ = static_cast<int>(linear_ms_.size());
  raw_linear_ms_.resize(linear_ms_.size());
  for (size_t t = 0; t < raw_linear_ms_.size(); ++t)
    raw_linear_ms_[t] = model_.linear_ms(static_cast<int>(t));
  raw_table_size_ = static_cast<int>(raw_linear_ms_.size());
  raw_lm_head_ms_.resize(static_cast<size_t>(std::max(config_.max_num_seqs, 1)) * 2 + 1);
  for (size_t s = 0; s < raw_lm_head_ms_.size(); ++s)
    raw_lm_head_ms_[s] = model_.lm_head_ms(static_cast<int>(s));
  raw_lm_table_size_ = static_cast<int>(raw_lm_head_ms_.size());
  full_step_linear_ms_ = linear_ms(config_.max_num_batched_tokens);
  const int max_seqs = std::max(config_.max_num_seqs, 1);
  decode_ms_.resize(static_cast<size_t>(max_seqs) + 1);
  decode_ms_[0] = 0;
  for (int b = 1; b <= max_seqs; ++b)
    decode_ms_[static_cast<size_t>(b)] = decode_step_formula_ms(b);
  decode_max_batch_ = static_cast<double>(max_seqs);
}

double StepTables::decode_step_formula_ms(double batch) const {
  const int lo = static_cast<int>(batch);
  const double frac = batch - lo;
  const double lin = linear_ms(lo) + (linear_ms(lo + 1) - linear_ms(lo)) * frac;
  return lin + lm_head_ms(batch) + overhead_ms_;
}

SpeedModel::SpeedModel(const engine::EngineConfig& config, SpeedModelOptions options)
    : SpeedModel(StepTables::make(config), options) {}

SpeedModel::SpeedModel(std::shared_ptr<const StepTables> tables, SpeedModelOptions options)
    : tables_(std::move(tables)),
      options_(options),
      prefill_source_(std::numeric_limits<double>::quiet_NaN()),
      decode_source_(std::numeric_limits<double>::quiet_NaN()),
      log_min_factor_(std::log(options_.min_factor)),
      log_max_factor_(std::log(options_.max_factor)) {
  refresh();
}

double SpeedModel::clamp_factor(double log_factor) const {
  return std::clamp(std::exp(log_factor), options_.min_factor, options_.max_factor);
}

void SpeedModel::recompute() const {
  stale_ = false;
  const int m = options_.min_observations;
  const double decode_source =
      decode_.weight < m && prefill_.weight >= m ? prefill_.log_factor : decode_.log_factor;
  const double prefill_source =
      prefill_.weight < m && decode_.weight >= m ? decode_.log_factor : prefill_.log_factor;
  // exp() only for a factor whose source changed (bitwise: the result is the same either way).
  if (!(decode_source == decode_source_)) {
    decode_source_ = decode_source;
    decode_factor_ = clamp_factor(decode_source);
    inv_decode_factor_ = 1.0 / decode_factor_;
  }
  if (!(prefill_source == prefill_source_)) {
    prefill_source_ = prefill_source;
    prefill_factor_ = clamp_factor(prefill_source);
    inv_prefill_factor_ = 1.0 / prefill_factor_;
  }
}

void SpeedModel::update(Estimate& e, double log_ratio, double weight) {
  if (!std::isfinite(log_ratio) || !(weight > 0)) return;
  // Warm start: the first observations replace the prior quickly (a weighted running mean),
  // then the estimate becomes an exponential average that follows a replica that changes speed.
  e.n += 1;
  e.weight += weight;
  const double rate = weight * std::max(options_.learning_rate, 1.0 / e.weight);
  const double diff =
      std::clamp(log_ratio - e.log_factor, -options_.max_log_step, options_.max_log_step);
  e.log_factor += rate * diff;
  e.log_factor = std::clamp(e.log_factor, log_min_factor_, log_max_factor_);
  refresh();
}

void SpeedModel::observe_itl(double seconds_per_token, const engine::BatchShape& shape, int gaps) {
  const double base = base_step_seconds(shape);
  if (seconds_per_token <= 0 || base <= 0 || gaps <= 0) return;
  const int batch = std::max(shape.num_sampled, 1);
  update(decode_, std::log(base / seconds_per_token),
         gaps >= batch ? 1.0 : static_cast<double>(gaps) / batch);
}

void SpeedModel::observe_ttft(double observed_s, double base_predicted_s) {
  if (observed_s <= 0 || base_predicted_s <= 0) return;
  // Until the prefill factor has its own history, start it from the decode factor's.
  if (prefill_.n == 0 && decode_.weight >= options_.min_observations)
    prefill_.log_factor = decode_.log_factor;
  update(prefill_, std::log(base_predicted_s / observed_s));
}

void SpeedModel::observe_e2e(double observed_s, double base_predicted_s) {
  if (observed_s <= 0 || base_predicted_s <= 0) return;
  const double r = std::log(base_predicted_s / observed_s);
  update(prefill_, r);
  update(decode_, r);
}

void SpeedModel::set_factors(double prefill, double decode, int weight) {
  prefill_.log_factor = std::log(std::clamp(prefill, options_.min_factor, options_.max_factor));
  decode_.log_factor = std::log(std::clamp(decode, options_.min_factor, options_.max_factor));
  prefill_.n = decode_.n = std::max(weight, 0);
  prefill_.weight = decode_.weight = prefill_.n;
  refresh();
}

}  // namespace eta::predict
