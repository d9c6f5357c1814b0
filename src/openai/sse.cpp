#include "openai/sse.hpp"

#include <simdjson.h>

#include <cstring>

namespace eta::openai {

namespace {

constexpr size_t kMaxErrorMessage = 200;

bool non_empty_string(simdjson::dom::element e) {
  std::string_view s;
  return e.get_string().get(s) == simdjson::SUCCESS && !s.empty();
}

void read_usage(simdjson::dom::element usage, EventInfo& info) {
  simdjson::dom::object o;
  if (usage.get_object().get(o) != simdjson::SUCCESS) return;
  int64_t v = 0;
  if (o["prompt_tokens"].get_int64().get(v) == simdjson::SUCCESS) info.prompt_tokens = v;
  if (o["completion_tokens"].get_int64().get(v) == simdjson::SUCCESS) info.completion_tokens = v;
}

// True when the first choice carries a generated token: text, delta content (or reasoning
// content, or tool calls), or a finish_reason.
bool choice_has_token(simdjson::dom::element choice) {
  simdjson::dom::object c;
  if (choice.get_object().get(c) != simdjson::SUCCESS) return false;
  for (auto field : c) {
    const std::string_view key = field.key;
    if (key == "text") {
      if (non_empty_string(field.value)) return true;
    } else if (key == "finish_reason") {
      if (!field.value.is_null()) return true;
    } else if (key == "delta") {
      simdjson::dom::object delta;
      if (field.value.get_object().get(delta) != simdjson::SUCCESS) continue;
      for (auto d : delta) {
        const std::string_view dk = d.key;
        if (dk == "content" || dk == "reasoning_content" || dk == "reasoning") {
          if (non_empty_string(d.value)) return true;
        } else if (dk == "tool_calls") {
          simdjson::dom::array calls;
          if (d.value.get_array().get(calls) == simdjson::SUCCESS && calls.size() > 0) return true;
        }
      }
    }
  }
  return false;
}

}  // namespace

const char* to_string(EventKind kind) {
  switch (kind) {
    case EventKind::kToken:
      return "token";
    case EventKind::kRole:
      return "role";
    case EventKind::kUsage:
      return "usage";
    case EventKind::kDone:
      return "done";
    case EventKind::kError:
      return "error";
    case EventKind::kOther:
      return "other";
    case EventKind::kMalformed:
      return "malformed";
  }
  return "?";
}

struct EventParser::Impl {
  simdjson::dom::parser parser;
  std::string buffer;  // the event's bytes followed by SIMDJSON_PADDING bytes
};

EventParser::EventParser() : impl_(std::make_unique<Impl>()) {}
EventParser::~EventParser() = default;

EventInfo EventParser::parse(std::string_view data) {
  EventInfo info;
  if (data == "[DONE]") {
    info.kind = EventKind::kDone;
    return info;
  }
  std::string& buf = impl_->buffer;
  if (buf.size() < data.size() + simdjson::SIMDJSON_PADDING) {
    buf.resize(data.size() + simdjson::SIMDJSON_PADDING);
  }
  std::memcpy(buf.data(), data.data(), data.size());
  std::memset(buf.data() + data.size(), 0, simdjson::SIMDJSON_PADDING);
  simdjson::dom::element root;
  if (impl_->parser.parse(buf.data(), data.size(), false).get(root) != simdjson::SUCCESS) {
    info.kind = EventKind::kMalformed;
    return info;
  }
  simdjson::dom::object obj;
  if (root.get_object().get(obj) != simdjson::SUCCESS) {
    info.kind = EventKind::kMalformed;
    return info;
  }
  bool has_choices = false;
  bool token = false;
  bool is_error = false;
  for (auto field : obj) {
    const std::string_view key = field.key;
    if (key == "choices") {
      simdjson::dom::array choices;
      if (field.value.get_array().get(choices) != simdjson::SUCCESS) continue;
      if (choices.size() > 0) {
        has_choices = true;
        token = choice_has_token(choices.at(0).value_unsafe());
      }
    } else if (key == "usage") {
      read_usage(field.value, info);
    } else if (key == "error") {
      is_error = true;
      simdjson::dom::object err;
      std::string_view message;
      if (field.value.get_object().get(err) == simdjson::SUCCESS &&
          err["message"].get_string().get(message) == simdjson::SUCCESS) {
        info.error_message = std::string(message.substr(0, kMaxErrorMessage));
      } else if (field.value.get_string().get(message) == simdjson::SUCCESS) {
        info.error_message = std::string(message.substr(0, kMaxErrorMessage));
      }
    } else if (key == "object") {
      std::string_view object;
      if (field.value.get_string().get(object) == simdjson::SUCCESS && object == "error") {
        is_error = true;
        std::string_view message;
        if (obj["message"].get_string().get(message) == simdjson::SUCCESS) {
          info.error_message = std::string(message.substr(0, kMaxErrorMessage));
        }
      }
    }
  }
  if (is_error) {
    info.kind = EventKind::kError;
  } else if (has_choices) {
    info.kind = token ? EventKind::kToken : EventKind::kRole;
  } else if (info.completion_tokens >= 0 || info.prompt_tokens >= 0) {
    info.kind = EventKind::kUsage;
  } else {
    info.kind = EventKind::kOther;
  }
  return info;
}

void SseScanner::keep_partial(std::string_view rest) {
  if (rest.size() <= max_event_bytes_) {
    partial_.assign(rest);
    return;
  }
  ++overflows_;
  partial_.clear();
  skipping_ = true;
  tail_[0] = rest.size() >= 2 ? rest[rest.size() - 2] : 0;
  tail_[1] = rest.back();
}

size_t SseScanner::skip_to_event_end(std::string_view bytes) {
  // A blank line is "\n\n" or "\n\r\n"; it may straddle the previous piece.
  size_t end = std::string_view::npos;
  if (!bytes.empty()) {
    if (tail_[1] == '\n' && bytes[0] == '\n')
      end = 1;
    else if (tail_[0] == '\n' && tail_[1] == '\r' && bytes[0] == '\n')
      end = 1;
    else if (tail_[1] == '\n' && bytes.size() >= 2 && bytes[0] == '\r' && bytes[1] == '\n')
      end = 2;
  }
  if (end == std::string_view::npos) {
    const size_t a = bytes.find("\n\n");
    const size_t b = bytes.find("\n\r\n");
    if (a != std::string_view::npos) end = a + 2;
    if (b != std::string_view::npos && (end == std::string_view::npos || b + 3 < end)) end = b + 3;
  }
  if (end != std::string_view::npos) {
    skipping_ = false;
    return end;
  }
  if (bytes.size() >= 2) {
    tail_[0] = bytes[bytes.size() - 2];
    tail_[1] = bytes.back();
  } else if (bytes.size() == 1) {
    tail_[0] = tail_[1];
    tail_[1] = bytes[0];
  }
  return std::string_view::npos;
}

}  // namespace eta::openai
