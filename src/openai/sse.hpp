// Server-Sent Events of the OpenAI streaming API, shared by `eta route` (counting relayed
// tokens for its ledger) and `eta bench` (timing every event): splitting an SSE byte stream into
// events however the bytes were split into reads, and classifying each OpenAI streaming event
// (token-bearing chunk, chat role chunk, final usage chunk, error event, [DONE]). Pure: no
// networking. See ../shared/vllm-interface.md §3.
//
// A token-bearing event is a chunk with a non-empty `choices` whose first choice carries text
// (completions `text`, chat `delta.content` or `delta.reasoning_content`) or a finish_reason (a
// final chunk whose token decodes to nothing, such as EOS, is still a generated token). The chat
// role chunk (`delta: {"role":"assistant","content":""}`) and the usage-only chunk
// (`"choices": []`) are not.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace eta::openai {

// Splits an SSE byte stream into events. Lines end in "\n", "\r\n" or "\r"; a blank line ends an
// event; the event's data is its "data:" lines (one leading space removed) joined by "\n". Other
// fields ("event:", "id:", "retry:") and comments (":...") are ignored; an event without data
// lines is not reported. An unfinished event at the end of the input is kept until more bytes
// arrive (and dropped by reset()).
class SseScanner {
 public:
  // An unfinished event longer than this is dropped (counted in overflows()) instead of growing
  // the buffer without bound: a replica's stream is not trusted.
  static constexpr size_t kDefaultMaxEventBytes = 1u << 20;
  explicit SseScanner(size_t max_event_bytes = kDefaultMaxEventBytes)
      : max_event_bytes_(max_event_bytes) {}

  // Calls on_event(std::string_view data) for every event completed by `bytes`. The view is
  // valid only during the call. Returns the number of events reported.
  template <class OnEvent>
  int feed(std::string_view bytes, OnEvent&& on_event);

  // Bytes held back for an unfinished event.
  size_t pending_bytes() const { return partial_.size(); }
  void reset() {
    partial_.clear();
    skipping_ = false;
  }
  // Events dropped because they grew past max_event_bytes.
  uint64_t overflows() const { return overflows_; }

 private:
  // Scans `buf` from the start; returns the offset of the first byte of the unfinished event.
  template <class OnEvent>
  size_t scan(std::string_view buf, int& events, OnEvent& on_event);

  // Keeps the unfinished event, or drops it if it is over the bound (then skips to its end).
  void keep_partial(std::string_view rest);
  // While skipping: the offset just past the blank line that ends the dropped event, or npos
  // (then every byte is discarded). Ends skipping when found.
  size_t skip_to_event_end(std::string_view bytes);

  size_t max_event_bytes_;
  uint64_t overflows_ = 0;
  bool skipping_ = false;  // inside an over-long event: discard bytes up to its blank line
  char tail_[2] = {0, 0};  // the last two bytes discarded while skipping
  std::string partial_;    // the unfinished event (from its first byte)
  std::string joined_;     // scratch for multi-line data
};

enum class EventKind : uint8_t {
  kToken,      // a chunk carrying generated text or a finish_reason
  kRole,       // a chunk with choices but no token (the chat role chunk)
  kUsage,      // "choices": [] (the final usage chunk)
  kDone,       // "[DONE]"
  kError,      // {"error": {...}} (or a flat {"object":"error",...})
  kOther,      // valid JSON that is none of the above
  kMalformed,  // not JSON
};
const char* to_string(EventKind kind);

struct EventInfo {
  EventKind kind = EventKind::kOther;
  // From a "usage" object on the event, -1 when absent.
  int64_t prompt_tokens = -1;
  int64_t completion_tokens = -1;
  std::string error_message;  // kError: the message (truncated to 200 bytes)
};

// Classifies one event's data. Keeps a JSON parser and a padded buffer between calls (no
// allocation per event once they have grown); not thread-safe.
class EventParser {
 public:
  EventParser();
  ~EventParser();
  EventParser(const EventParser&) = delete;
  EventParser& operator=(const EventParser&) = delete;

  EventInfo parse(std::string_view data);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------------------------
// SseScanner implementation (a template: the callback is inlined into the hot path).

template <class OnEvent>
int SseScanner::feed(std::string_view bytes, OnEvent&& on_event) {
  int events = 0;
  if (skipping_) {
    const size_t end = skip_to_event_end(bytes);
    if (end == std::string_view::npos) return 0;
    bytes.remove_prefix(end);
  }
  if (partial_.empty()) {
    const size_t keep = scan(bytes, events, on_event);
    if (keep < bytes.size()) keep_partial(bytes.substr(keep));
    return events;
  }
  partial_.append(bytes);
  const size_t keep = scan(partial_, events, on_event);
  partial_.erase(0, keep);
  if (partial_.size() > max_event_bytes_) {
    const std::string rest = std::move(partial_);
    partial_.clear();
    keep_partial(rest);
  }
  return events;
}

template <class OnEvent>
size_t SseScanner::scan(std::string_view buf, int& events, OnEvent& on_event) {
  size_t event_start = 0;
  size_t pos = 0;
  // The event's data: a view into buf while it is one line, joined_ once it has several.
  std::string_view data;
  int data_lines = 0;
  while (pos < buf.size()) {
    const size_t eol = buf.find_first_of("\r\n", pos);
    if (eol == std::string_view::npos) break;
    size_t next = eol + 1;
    // A "\r" at the end of the buffer ends its line now. If a "\n" follows in the next read,
    // it is either re-scanned with the unfinished event (so "\r\n" is one line end) or, after
    // a completed event, read as a blank line without data, which reports nothing.
    if (buf[eol] == '\r' && eol + 1 < buf.size() && buf[eol + 1] == '\n') next = eol + 2;
    const std::string_view line = buf.substr(pos, eol - pos);
    pos = next;
    if (line.empty()) {
      if (data_lines > 0) {
        ++events;
        on_event(data_lines == 1 ? data : std::string_view(joined_));
      }
      data_lines = 0;
      data = {};
      event_start = pos;
      continue;
    }
    if (line.size() >= 5 && line.compare(0, 5, "data:") == 0) {
      std::string_view value = line.substr(5);
      if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      if (data_lines == 0) {
        data = value;
      } else {
        if (data_lines == 1) joined_.assign(data);
        joined_ += '\n';
        joined_.append(value);
      }
      ++data_lines;
    }
  }
  return event_start;
}

}  // namespace eta::openai
