#include "router/sse.hpp"

#include <cstring>

#include <simdjson.h>

namespace eta::router {

namespace {

simdjson::dom::parser& json_parser() {
  static thread_local simdjson::dom::parser parser;
  return parser;
}

bool non_empty_string(simdjson::dom::element e) {
  std::string_view s;
  return e.get_string().get(s) == simdjson::SUCCESS && !s.empty();
}

std::optional<int> usage_field(simdjson::dom::object usage, std::string_view key) {
  int64_t v = 0;
  if (usage[key].get_int64().get(v) == simdjson::SUCCESS && v >= 0 && v < (1ll << 31)) {
    return static_cast<int>(v);
  }
  return std::nullopt;
}

}  // namespace

void SseScanner::reset() {
  *this = SseScanner(max_line_bytes_);
}

int SseScanner::feed(std::string_view bytes) {
  pending_tokens_ = 0;
  while (!bytes.empty()) {
    const void* nl = std::memchr(bytes.data(), '\n', bytes.size());
    if (!nl) {
      if (line_.size() + bytes.size() > max_line_bytes_) {
        line_overflow_ = true;
        line_.clear();
      } else if (!line_overflow_) {
        line_.append(bytes);
      }
      break;
    }
    const size_t n = static_cast<size_t>(static_cast<const char*>(nl) - bytes.data());
    std::string_view segment = bytes.substr(0, n);
    bytes.remove_prefix(n + 1);
    if (line_overflow_) {
      line_overflow_ = false;
      line_.clear();
      ++malformed_;
      data_.clear();
      has_data_ = false;
      continue;
    }
    if (!line_.empty()) {
      if (line_.size() + segment.size() > max_line_bytes_) {
        line_.clear();
        ++malformed_;
        continue;
      }
      line_.append(segment);
      std::string line = std::move(line_);
      line_.clear();
      std::string_view v = line;
      if (!v.empty() && v.back() == '\r') v.remove_suffix(1);
      on_line(v);
      line_ = std::move(line);  // keep the capacity
      line_.clear();
    } else {
      if (!segment.empty() && segment.back() == '\r') segment.remove_suffix(1);
      on_line(segment);
    }
  }
  return pending_tokens_;
}

void SseScanner::on_line(std::string_view line) {
  if (line.empty()) {
    if (has_data_) pending_tokens_ += dispatch_event();
    data_.clear();
    has_data_ = false;
    return;
  }
  if (line.front() == ':') return;  // comment
  std::string_view field = line;
  std::string_view value;
  if (const size_t colon = line.find(':'); colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field != "data") return;
  if (has_data_) data_.push_back('\n');
  if (data_.size() + value.size() > max_line_bytes_) {
    ++malformed_;
    data_.clear();
    has_data_ = false;
    return;
  }
  data_.append(value);
  has_data_ = true;
}

int SseScanner::dispatch_event() {
  ++events_;
  if (data_ == "[DONE]") {
    done_ = true;
    return 0;
  }
  simdjson::dom::element doc;
  if (json_parser().parse(data_).get(doc) != simdjson::SUCCESS) {
    ++malformed_;
    return 0;
  }
  simdjson::dom::object obj;
  if (doc.get_object().get(obj) != simdjson::SUCCESS) {
    ++malformed_;
    return 0;
  }
  if (simdjson::dom::element err; obj["error"].get(err) == simdjson::SUCCESS && !err.is_null()) {
    saw_error_ = true;
  }
  if (simdjson::dom::object usage; obj["usage"].get_object().get(usage) == simdjson::SUCCESS) {
    if (auto v = usage_field(usage, "completion_tokens")) usage_completion_tokens_ = v;
    if (auto v = usage_field(usage, "prompt_tokens")) usage_prompt_tokens_ = v;
  }
  simdjson::dom::array choices;
  if (obj["choices"].get_array().get(choices) != simdjson::SUCCESS) return 0;
  bool token = false;
  for (simdjson::dom::element choice : choices) {
    simdjson::dom::object c;
    if (choice.get_object().get(c) != simdjson::SUCCESS) continue;
    if (simdjson::dom::element text; c["text"].get(text) == simdjson::SUCCESS) {
      token = token || non_empty_string(text);
    }
    if (simdjson::dom::object delta; c["delta"].get_object().get(delta) == simdjson::SUCCESS) {
      if (simdjson::dom::element content; delta["content"].get(content) == simdjson::SUCCESS) {
        token = token || non_empty_string(content);
      }
      if (simdjson::dom::element reasoning;
          delta["reasoning_content"].get(reasoning) == simdjson::SUCCESS) {
        token = token || non_empty_string(reasoning);
      }
    }
  }
  if (!token) return 0;
  ++tokens_;
  return 1;
}

BodyUsage parse_body_usage(std::string_view body) {
  BodyUsage out;
  simdjson::dom::element doc;
  if (json_parser().parse(body.data(), body.size(), true).get(doc) != simdjson::SUCCESS) {
    return out;
  }
  simdjson::dom::object usage;
  if (doc["usage"].get_object().get(usage) != simdjson::SUCCESS) return out;
  out.completion_tokens = usage_field(usage, "completion_tokens");
  out.prompt_tokens = usage_field(usage, "prompt_tokens");
  return out;
}

}  // namespace eta::router
