// The step-time model: a roofline calibrated by the GPU profile's linear-operator table.
//
//   step_ms = linear(T) * scale / N                      table for linear_ops_arch, scaled by
//                                                        linear params x layers of the arch
//           + max(vocab*hidden*dtype / BW, 2*vocab*hidden*num_sampled / FLOPS) / N lm_head
//           + decode_kv_tokens * kv_bytes_per_token_per_gpu / BW                   decode attn
//           + 4*layers*hidden*prefill_attn_pairs / FLOPS / N                       prefill attn
//           + prefill_kv_tokens * kv_bytes_per_token_per_gpu / BW  prefill reads cached context
//           + 2*layers*(AR_latency + 2(N-1)/N * T*hidden*dtype / AR_busbw)  all-reduces, N > 1
//           + step_overhead_ms
//   step_seconds = step_ms / 1000 / speed
// with BW = bw_efficiency * mem_bw, FLOPS = flops_efficiency * peak_tflops and N the tensor
// parallel size: every GPU holds 1/N of each linear operator (Megatron column/row split), of
// the vocabulary (vLLM's VocabParallelEmbedding / ParallelLMHead), of the attention heads and
// max(1, kv_heads/N) KV heads, and computes them at the same time as the others.
#include <algorithm>

#include "engine/engine.hpp"

namespace eta::engine {

struct StepTimeModel::Impl {
  std::vector<std::pair<int, double>> table;  // (tokens, ms) of the reference arch
  double linear_scale = 1;
  double lm_head_bytes = 0;
  double lm_head_flops_per_row = 0;
  double kv_bytes_per_token = 0;
  double prefill_flops_per_pair = 0;
  double bytes_per_ms = 0;  // effective bandwidth
  double flops_per_ms = 0;  // effective compute
  double overhead_ms = 0;
  double ms_to_seconds = 1e-3;  // includes 1 / speed
  // Tensor parallelism (all 0 at TP 1).
  double allreduce_fixed_ms = 0;      // 2 x layers x latency
  double allreduce_ms_per_token = 0;  // 2 x layers x 2(N-1)/N x hidden x dtype / busbw
};

StepTimeModel::StepTimeModel(const EngineConfig& c) {
  auto impl = std::make_shared<Impl>();
  impl->table = c.gpu.linear_ops_ms;
  double ref_params = c.gpu.linear_ops_arch_params;
  if (ref_params <= 0) {
    const auto& builtin = ProfileSet::builtin().archs;
    if (const auto it = builtin.find(c.gpu.linear_ops_arch); it != builtin.end()) {
      ref_params = it->second.linear_params();
    }
  }
  const double own_params = c.arch.linear_params();
  // Dividing by 1.0 is exact: at TP 1 every term is bit-identical to the model without TP.
  const double tp = c.tensor_parallel_size > 1 ? c.tensor_parallel_size : 1;
  impl->linear_scale = (ref_params > 0 && own_params > 0 ? own_params / ref_params : 1.0) / tp;
  const double vh = static_cast<double>(c.arch.vocab) * c.arch.hidden;
  impl->lm_head_bytes = vh * c.arch.dtype_bytes / tp;
  impl->lm_head_flops_per_row = 2.0 * vh / tp;
  impl->kv_bytes_per_token = c.kv_bytes_per_token_per_gpu();
  impl->prefill_flops_per_pair = 4.0 * c.arch.layers * static_cast<double>(c.arch.hidden) / tp;
  impl->bytes_per_ms = c.gpu.bw_efficiency * c.gpu.mem_bw_tbps * 1e12 / 1e3;
  impl->flops_per_ms = c.gpu.flops_efficiency * c.gpu.peak_tflops * 1e12 / 1e3;
  impl->overhead_ms = c.gpu.step_overhead_ms;
  impl->ms_to_seconds = 1e-3 / (c.speed > 0 ? c.speed : 1.0);
  if (tp > 1 && c.gpu.allreduce_busbw_gbps > 0) {
    const double allreduces = 2.0 * c.arch.layers;  // after attention's O and the MLP's down
    impl->allreduce_fixed_ms = allreduces * c.gpu.allreduce_latency_us * 1e-3;
    const double bytes_per_token = static_cast<double>(c.arch.hidden) * c.arch.dtype_bytes;
    const double busbw_bytes_per_ms = c.gpu.allreduce_busbw_gbps * 1e9 / 1e3;
    impl->allreduce_ms_per_token =
        allreduces * 2.0 * (tp - 1) / tp * bytes_per_token / busbw_bytes_per_ms;
  }
  impl_ = std::move(impl);
}

double StepTimeModel::linear_ms(int num_tokens) const {
  const auto& t = impl_->table;
  if (t.empty() || num_tokens <= 0) return 0;
  double ms = 0;
  if (num_tokens <= t.front().first || t.size() == 1) {
    ms = num_tokens <= t.front().first ? t.front().second : t.back().second;
  } else if (num_tokens >= t.back().first) {
    const auto& [x0, y0] = t[t.size() - 2];
    const auto& [x1, y1] = t.back();
    ms = y1 + (y1 - y0) / (x1 - x0) * (num_tokens - x1);
  } else {
    // First point with tokens >= num_tokens; the table is short (8 points), a linear scan is
    // as fast as a binary search.
    std::size_t i = 1;
    while (t[i].first < num_tokens) ++i;
    const auto& [x0, y0] = t[i - 1];
    const auto& [x1, y1] = t[i];
    ms = y0 + (y1 - y0) * (num_tokens - x0) / static_cast<double>(x1 - x0);
  }
  return ms * impl_->linear_scale;
}

double StepTimeModel::lm_head_ms(int num_sampled) const {
  if (num_sampled <= 0) return 0;
  const double read_ms = impl_->lm_head_bytes / impl_->bytes_per_ms;
  const double compute_ms = impl_->lm_head_flops_per_row * num_sampled / impl_->flops_per_ms;
  return std::max(read_ms, compute_ms);
}

double StepTimeModel::decode_attention_ms(int64_t kv_tokens) const {
  return static_cast<double>(kv_tokens) * impl_->kv_bytes_per_token / impl_->bytes_per_ms;
}

double StepTimeModel::prefill_attention_ms(double attn_pairs, int64_t kv_tokens) const {
  return impl_->prefill_flops_per_pair * attn_pairs / impl_->flops_per_ms +
         static_cast<double>(kv_tokens) * impl_->kv_bytes_per_token / impl_->bytes_per_ms;
}

double StepTimeModel::allreduce_ms(int num_tokens) const {
  if (num_tokens <= 0 || impl_->allreduce_fixed_ms <= 0) return 0;
  return impl_->allreduce_fixed_ms + impl_->allreduce_ms_per_token * num_tokens;
}

double StepTimeModel::overhead_ms() const {
  return impl_->overhead_ms;
}

double StepTimeModel::step_ms(const BatchShape& b) const {
  if (b.num_tokens <= 0) return 0;
  const double ms = linear_ms(b.num_tokens) + lm_head_ms(b.num_sampled) +
                    decode_attention_ms(b.decode_kv_tokens) +
                    prefill_attention_ms(b.prefill_attn_pairs, b.prefill_kv_tokens) + overhead_ms();
  // Added last and only with TP > 1, so TP 1 keeps the exact sum it always had.
  return impl_->allreduce_fixed_ms > 0 ? ms + allreduce_ms(b.num_tokens) : ms;
}

double StepTimeModel::step_seconds(const BatchShape& b) const {
  return step_ms(b) * impl_->ms_to_seconds;
}

}  // namespace eta::engine
