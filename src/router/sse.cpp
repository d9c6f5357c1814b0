#include "router/sse.hpp"

#include <simdjson.h>

#include "openai/extract.hpp"

namespace eta::router {

namespace {

std::optional<int> usage_count(int64_t v) {
  if (v >= 0 && v < (int64_t{1} << 31)) return static_cast<int>(v);
  return std::nullopt;
}

// What a Responses-API or Anthropic-style event says (the shared EventParser knows the chat and
// completions chunks only).
struct OtherEvent {
  bool token = false;            // a text delta
  int64_t output_tokens = -1;    // a final usage
  std::string_view response_id;  // response.created's response.id
};

OtherEvent parse_other(simdjson::dom::parser& parser, std::string_view data) {
  OtherEvent out;
  simdjson::dom::element root;
  if (parser.parse(data.data(), data.size(), true).get(root) != simdjson::SUCCESS) return out;
  std::string_view type;
  if (root["type"].get_string().get(type) != simdjson::SUCCESS) return out;
  if (type == "response.output_text.delta" || type == "response.reasoning_text.delta" ||
      type == "content_block_delta") {
    out.token = true;
    return out;
  }
  simdjson::dom::element response;
  if (root["response"].get(response) == simdjson::SUCCESS) {
    std::string_view id;
    if (response["id"].get_string().get(id) == simdjson::SUCCESS) out.response_id = id;
    int64_t n = 0;
    if (response["usage"]["output_tokens"].get_int64().get(n) == simdjson::SUCCESS)
      out.output_tokens = n;
    return out;
  }
  int64_t n = 0;
  if (root["usage"]["output_tokens"].get_int64().get(n) == simdjson::SUCCESS) out.output_tokens = n;
  return out;
}

}  // namespace

void StreamTokenCounter::reset() {
  scanner_.reset();
  tokens_ = 0;
  events_ = 0;
  malformed_ = 0;
  done_ = false;
  saw_error_ = false;
  usage_completion_tokens_.reset();
  usage_prompt_tokens_.reset();
  response_id_.clear();
}

int StreamTokenCounter::feed(std::string_view bytes) {
  int counted = 0;
  scanner_.feed(bytes, [&](std::string_view data) {
    ++events_;
    const openai::EventInfo info = parser_.parse(data);
    std::optional<int> usage;
    if (info.completion_tokens >= 0) usage = usage_count(info.completion_tokens);
    if (info.prompt_tokens >= 0) usage_prompt_tokens_ = usage_count(info.prompt_tokens);
    switch (info.kind) {
      case openai::EventKind::kToken:
      case openai::EventKind::kRole:
        if (usage) {
          // Cumulative usage on the chunk (continuous_usage_stats): the exact growth.
          const int so_far = tokens_ + counted;
          if (*usage > so_far) counted += *usage - so_far;
        } else if (info.kind == openai::EventKind::kToken) {
          ++counted;
        }
        break;
      case openai::EventKind::kDone:
        done_ = true;
        break;
      case openai::EventKind::kError:
        saw_error_ = true;
        break;
      case openai::EventKind::kMalformed:
        ++malformed_;
        break;
      case openai::EventKind::kOther: {
        static thread_local simdjson::dom::parser parser;
        const OtherEvent o = parse_other(parser, data);
        if (o.token) ++counted;
        if (o.output_tokens >= 0) usage = usage_count(o.output_tokens);
        if (response_id_.empty() && !o.response_id.empty()) response_id_ = o.response_id;
        break;
      }
      default:
        break;
    }
    if (usage) usage_completion_tokens_ = usage;
  });
  tokens_ += counted;
  return counted;
}

BodyUsage parse_body_usage(std::string_view body) {
  // One parser per thread, reused: a fresh simdjson parser would allocate for every response.
  static thread_local openai::EventParser parser;
  const openai::EventInfo info = parser.parse(body);
  BodyUsage out{usage_count(info.completion_tokens), usage_count(info.prompt_tokens)};
  if (!out.completion_tokens && info.kind == openai::EventKind::kOther) {
    // Responses and Anthropic-style bodies: usage.output_tokens.
    static thread_local simdjson::dom::parser other;
    simdjson::dom::element root;
    int64_t n = 0;
    if (other.parse(body.data(), body.size(), true).get(root) == simdjson::SUCCESS &&
        root["usage"]["output_tokens"].get_int64().get(n) == simdjson::SUCCESS) {
      out.completion_tokens = usage_count(n);
    }
  }
  return out;
}

std::string response_id_of(std::string_view body) {
  static thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  std::string_view id;
  if (parser.parse(body.data(), body.size(), true).get(root) != simdjson::SUCCESS) return {};
  if (root["id"].get_string().get(id) != simdjson::SUCCESS) return {};
  return std::string(id);
}

// ---------------------------------------------------------------------------------------------
// UsageStreamRewriter

namespace {

// The end of the first event in `s` at or after `from` (just past its blank line), or npos.
// Lines end in "\n" or "\r\n" (vLLM writes "\n").
size_t event_end(std::string_view s, size_t from) {
  for (size_t i = s.find('\n', from); i != std::string_view::npos; i = s.find('\n', i + 1)) {
    if (i + 1 < s.size() && s[i + 1] == '\n') return i + 2;
    if (i + 2 < s.size() && s[i + 1] == '\r' && s[i + 2] == '\n') return i + 3;
  }
  return std::string_view::npos;
}

// The span of vLLM's usage member, which it writes last: `,"usage":{...}` right before the
// object's closing brace. nullopt when the text is not shaped so (find_member then decides).
std::optional<openai::MemberSpan> trailing_usage(std::string_view data) {
  constexpr std::string_view kKey = ",\"usage\":{";
  const size_t p = data.rfind(kKey);
  if (p == std::string_view::npos || data.back() != '}') return std::nullopt;
  const size_t value_begin = p + kKey.size() - 1;
  int depth = 0;
  bool in_string = false;
  for (size_t i = value_begin; i + 1 < data.size(); ++i) {
    const char c = data[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{') {
      ++depth;
    } else if (c == '}' && --depth == 0) {
      if (i + 2 != data.size()) return std::nullopt;  // not the last member
      return openai::MemberSpan{value_begin, i + 1, p, i + 1};
    }
  }
  return std::nullopt;
}

}  // namespace

void UsageStreamRewriter::feed(std::string_view bytes, std::string& out) {
  if (passthrough_) {
    out.append(bytes);
    return;
  }
  // Whole events straight from the piece; only an unfinished one is copied.
  std::string_view buf = bytes;
  if (!partial_.empty()) {
    partial_.append(bytes);
    buf = partial_;
  }
  size_t start = 0;
  while (true) {
    const size_t end = event_end(buf, start);
    if (end == std::string_view::npos) break;
    event(buf.substr(start, end - start), out);
    start = end;
  }
  if (partial_.empty()) {
    partial_.assign(buf.substr(start));
  } else {
    partial_.erase(0, start);
  }
  if (partial_.size() > kMaxEventBytes) {
    out.append(partial_);
    partial_.clear();
    passthrough_ = true;
  }
}

void UsageStreamRewriter::event(std::string_view block, std::string& out) {
  // vLLM's events are one "data: " line each; anything else is relayed as it came.
  const size_t data_end = block.find_first_of("\r\n");
  if (block.substr(0, 6) != "data: " || data_end < block.find_last_not_of("\r\n")) {
    out.append(block);
    return;
  }
  const std::string_view data = block.substr(6, data_end - 6);
  const std::string_view tail = block.substr(data_end);
  if (data.empty() || data.front() != '{') {
    out.append(block);
    return;
  }
  std::optional<openai::MemberSpan> usage = trailing_usage(data);
  if (!usage) usage = openai::find_member(data, "usage");
  if (!usage) {
    out.append(block);
    return;
  }
  // The final usage-only chunk ("choices":[]; a quote before ':' cannot be inside a string).
  const size_t choices = data.find("\"choices\":[");
  if (choices != std::string_view::npos && choices + 11 < data.size() &&
      data[choices + 11] == ']') {
    if (include_usage_) out.append(block);
    return;
  }
  if (continuous_) {
    out.append(block);
    return;
  }
  out.append("data: ");
  out.append(data.substr(0, usage->member_begin));
  out.append(data.substr(usage->member_end));
  out.append(tail);
}

std::string with_continuous_usage(std::string_view body) {
  constexpr std::string_view kOptions = "{\"include_usage\":true,\"continuous_usage_stats\":true}";
  const size_t open = body.find_first_not_of(" \t\r\n");
  if (open == std::string_view::npos || body[open] != '{') return {};
  std::string out;
  out.reserve(body.size() + 80);
  if (const std::optional<openai::MemberSpan> m = openai::find_member(body, "stream_options")) {
    out.append(body.substr(0, m->value_begin));
    out.append(kOptions);
    out.append(body.substr(m->value_end));
    return out;
  }
  const size_t first = body.find_first_not_of(" \t\r\n", open + 1);
  if (first == std::string_view::npos) return {};
  out.append(body.substr(0, open + 1));
  out.append("\"stream_options\":");
  out.append(kOptions);
  if (body[first] != '}') out.push_back(',');
  out.append(body.substr(open + 1));
  return out;
}

}  // namespace eta::router
