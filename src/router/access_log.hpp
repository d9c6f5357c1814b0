// The router's logging: its own log lines (spdlog's default logger, text or JSON, to stderr) and
// the access log (one JSON object per finished request, written by spdlog's async logger on its
// own thread: the event loop formats the line and appends it to a batch; a batch of 64 KiB, or
// whatever is pending once a second and when the log closes, goes to the writer thread as one
// message, which writes and flushes it).
//
// Access log record (keys always present, in this order; null where unknown):
//   {"time":"2026-11-25T11:52:03.123Z","request_id":7,"replica":"http://..."|null,
//    "policy":"eta","model":"m"|null,"prompt_tokens":12,"output_tokens":30|null,
//    "predicted_ttft_ms":41.2|null,"ttft_ms":44.0|null,"predicted_e2e_ms":..|null,
//    "e2e_ms":..|null,"dispatch_ms":0.08|null,"status":200,"retries":0,"stream":true,
//    "error":"upstream_timeout"|null}
// time is the request's arrival (UTC); ttft_ms and e2e_ms run from the arrival (what the client
// saw through the router); dispatch_ms is arrival -> the final attempt's dispatch (queueing and
// failed attempts); the predictions were made at that dispatch. API keys and request bodies are
// never logged.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace spdlog {
class logger;
namespace details {
class thread_pool;
class periodic_worker;
}  // namespace details
}  // namespace spdlog

namespace eta::router {

// Sets up the default logger on stderr: level trace|debug|info|warn|error|critical|off, format
// text ("2026-11-25T11:52:03.123 info message") or json ({"time","level","msg"} per line, UTC).
// Returns false with one line in `error` for an unknown level or format.
bool setup_logging(const std::string& level, const std::string& format, std::string& error);

struct AccessRecord {
  double unix_time_s = 0;  // arrival
  uint64_t request_id = 0;
  std::string_view replica;  // empty: none chosen
  std::string_view policy;
  std::string_view model;  // empty: unknown (the request did not parse)
  int prompt_tokens = 0;
  std::optional<int> output_tokens;
  std::optional<double> predicted_ttft_ms;
  std::optional<double> ttft_ms;
  std::optional<double> predicted_e2e_ms;
  std::optional<double> e2e_ms;
  std::optional<double> dispatch_ms;
  int status = 0;
  int retries = 0;
  bool stream = false;
  std::string_view error;  // empty: none
};

// One JSON object, no trailing newline.
void format_access_record(const AccessRecord& r, std::string& out);

class AccessLog {
 public:
  // `target`: a file path (appended to), "-" (stdout) or "off" (returns nullptr, no error).
  // Returns nullptr with one line in `error` when the file cannot be opened.
  static std::unique_ptr<AccessLog> open(const std::string& target, std::string& error);
  ~AccessLog();  // flushes every queued line
  void write(const AccessRecord& r);

 private:
  struct Batch {
    std::mutex mu;
    std::string pending;  // complete lines, each ending with '\n'
    // Hands the pending lines to the writer (under mu, so batches keep their order).
    void send(spdlog::logger& logger);
  };

  explicit AccessLog(std::shared_ptr<spdlog::logger> logger);
  std::shared_ptr<spdlog::details::thread_pool> pool_;
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<Batch> batch_ = std::make_shared<Batch>();
  std::unique_ptr<spdlog::details::periodic_worker> flusher_;
  std::string line_;  // reused
};

}  // namespace eta::router
