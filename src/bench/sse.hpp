// Pure parts of `eta bench`'s stream handling (no networking): splitting an SSE byte stream into
// events however the bytes were split into reads, classifying each OpenAI streaming event
// (token-bearing chunk, chat role chunk, final usage chunk, error event, [DONE]), and timing one
// request's stream the way `vllm bench serve` does (../shared/vllm-interface.md §3 and §7):
//
//   TTFT  send -> the first token-bearing event;
//   ITL   every gap between successive token-bearing events;
//   E2E   send -> the last byte of the response.
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

namespace eta::bench {

// Splits an SSE byte stream into events. Lines end in "\n", "\r\n" or "\r"; a blank line ends an
// event; the event's data is its "data:" lines (one leading space removed) joined by "\n". Other
// fields ("event:", "id:", "retry:") and comments (":...") are ignored; an event without data
// lines is not reported. An unfinished event at the end of the input is kept until more bytes
// arrive (and dropped by reset()).
class SseScanner {
 public:
  // Calls on_event(std::string_view data) for every event completed by `bytes`. The view is
  // valid only during the call. Returns the number of events reported.
  template <class OnEvent>
  int feed(std::string_view bytes, OnEvent&& on_event);

  // Bytes held back for an unfinished event.
  size_t pending_bytes() const { return partial_.size(); }
  void reset() { partial_.clear(); }

 private:
  // Scans `buf` from the start; returns the offset of the first byte of the unfinished event.
  template <class OnEvent>
  size_t scan(std::string_view buf, int& events, OnEvent& on_event);

  std::string partial_;  // the unfinished event (from its first byte)
  std::string joined_;   // scratch for multi-line data
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

// One request's stream timing and token counts. Times are seconds on any clock, passed in; the
// bench passes wall seconds since the request was sent and scales them afterwards.
class StreamTimer {
 public:
  // Records an event that arrived at `t` (seconds since send). Events that arrive together in
  // one read get the same `t`.
  void on_event(const EventInfo& info, double t);

  bool first_token_seen() const { return token_events_ > 0; }
  double ttft() const { return first_token_; }
  double last_token() const { return last_token_; }
  const std::vector<double>& itls() const { return itls_; }
  std::vector<double>& mutable_itls() { return itls_; }
  int64_t token_events() const { return token_events_; }
  bool done() const { return done_; }
  bool error() const { return error_; }
  const std::string& error_message() const { return error_message_; }
  // From the last event that carried usage; -1 if none did.
  int64_t usage_prompt_tokens() const { return usage_prompt_; }
  int64_t usage_completion_tokens() const { return usage_completion_; }
  // Output tokens: the usage's completion_tokens, else the number of token-bearing events.
  int64_t output_tokens() const {
    return usage_completion_ >= 0 ? usage_completion_ : token_events_;
  }
  int64_t malformed_events() const { return malformed_; }

 private:
  double first_token_ = 0;
  double last_token_ = 0;
  std::vector<double> itls_;
  int64_t token_events_ = 0;
  int64_t usage_prompt_ = -1;
  int64_t usage_completion_ = -1;
  int64_t malformed_ = 0;
  bool done_ = false;
  bool error_ = false;
  std::string error_message_;
};

// ---------------------------------------------------------------------------------------------
// SseScanner implementation (a template: the callback is inlined into the hot path).

template <class OnEvent>
int SseScanner::feed(std::string_view bytes, OnEvent&& on_event) {
  int events = 0;
  if (partial_.empty()) {
    const size_t keep = scan(bytes, events, on_event);
    if (keep < bytes.size()) partial_.assign(bytes.substr(keep));
    return events;
  }
  partial_.append(bytes);
  const size_t keep = scan(partial_, events, on_event);
  partial_.erase(0, keep);
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

}  // namespace eta::bench
