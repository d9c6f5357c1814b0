#include "bench/sse.hpp"

namespace eta::bench {

void StreamTimer::on_event(const EventInfo& info, double t) {
  if (info.prompt_tokens >= 0) usage_prompt_ = info.prompt_tokens;
  if (info.completion_tokens >= 0) usage_completion_ = info.completion_tokens;
  switch (info.kind) {
    case EventKind::kToken:
      if (token_events_ == 0) {
        first_token_ = t;
      } else {
        itls_.push_back(t - last_token_);
      }
      last_token_ = t;
      ++token_events_;
      break;
    case EventKind::kDone:
      done_ = true;
      break;
    case EventKind::kError:
      if (!error_) error_message_ = info.error_message;
      error_ = true;
      break;
    case EventKind::kMalformed:
      ++malformed_;
      break;
    default:
      break;
  }
}

}  // namespace eta::bench
