#include "router/sse.hpp"

namespace eta::router {

namespace {

std::optional<int> usage_count(int64_t v) {
  if (v >= 0 && v < (int64_t{1} << 31)) return static_cast<int>(v);
  return std::nullopt;
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
}

int StreamTokenCounter::feed(std::string_view bytes) {
  int counted = 0;
  scanner_.feed(bytes, [&](std::string_view data) {
    ++events_;
    const openai::EventInfo info = parser_.parse(data);
    if (info.completion_tokens >= 0) usage_completion_tokens_ = usage_count(info.completion_tokens);
    if (info.prompt_tokens >= 0) usage_prompt_tokens_ = usage_count(info.prompt_tokens);
    switch (info.kind) {
      case openai::EventKind::kToken:
        ++counted;
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
      default:
        break;
    }
  });
  tokens_ += counted;
  return counted;
}

BodyUsage parse_body_usage(std::string_view body) {
  // One parser per thread, reused: a fresh simdjson parser would allocate for every response.
  static thread_local openai::EventParser parser;
  const openai::EventInfo info = parser.parse(body);
  return BodyUsage{usage_count(info.completion_tokens), usage_count(info.prompt_tokens)};
}

}  // namespace eta::router
