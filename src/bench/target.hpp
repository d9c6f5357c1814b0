// What `eta bench` learns from the target's GET /v1/models (pure parsing): the served model ids,
// each card's max_model_len, and the simulator's vendor field eta_time_scale (simulated seconds
// per wall second; absent on real vLLM).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace eta::bench {

struct ModelCardInfo {
  std::string id;
  int64_t max_model_len = 0;         // 0 when absent
  std::optional<double> time_scale;  // eta_time_scale, when present and > 0
};

// Parses {"object":"list","data":[{"id":...},...]}; false with a one-line error when the body
// is not that shape or lists no model.
bool parse_models_body(std::string_view body, std::vector<ModelCardInfo>& out, std::string& error);

// The card for `model` ("" = the first card), or nullptr.
const ModelCardInfo* find_model(const std::vector<ModelCardInfo>& cards, std::string_view model);

}  // namespace eta::bench
