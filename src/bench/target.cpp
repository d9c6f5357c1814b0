#include "bench/target.hpp"

#include <simdjson.h>

namespace eta::bench {

bool parse_models_body(std::string_view body, std::vector<ModelCardInfo>& out, std::string& error) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(body.data(), body.size()).get(root) != simdjson::SUCCESS) {
    error = "/v1/models: the answer is not JSON";
    return false;
  }
  simdjson::dom::array data;
  if (root["data"].get_array().get(data) != simdjson::SUCCESS) {
    error = "/v1/models: the answer has no \"data\" list";
    return false;
  }
  std::vector<ModelCardInfo> cards;
  for (simdjson::dom::element card : data) {
    ModelCardInfo info;
    std::string_view id;
    if (card["id"].get_string().get(id) != simdjson::SUCCESS) continue;
    info.id = std::string(id);
    int64_t len = 0;
    if (card["max_model_len"].get_int64().get(len) == simdjson::SUCCESS && len > 0) {
      info.max_model_len = len;
    }
    double scale = 0;
    if (card["eta_time_scale"].get_double().get(scale) == simdjson::SUCCESS && scale > 0) {
      info.time_scale = scale;
    } else if (card["eta_time_scale"].get_int64().get(len) == simdjson::SUCCESS && len > 0) {
      info.time_scale = static_cast<double>(len);
    }
    cards.push_back(std::move(info));
  }
  if (cards.empty()) {
    error = "/v1/models: the target serves no model";
    return false;
  }
  out = std::move(cards);
  return true;
}

const ModelCardInfo* find_model(const std::vector<ModelCardInfo>& cards, std::string_view model) {
  if (cards.empty()) return nullptr;
  if (model.empty()) return &cards.front();
  for (const ModelCardInfo& c : cards) {
    if (c.id == model) return &c;
  }
  return nullptr;
}

}  // namespace eta::bench
