#include "router/access_log.hpp"

#include <spdlog/async.h>
#include <spdlog/async_logger.h>
#include <spdlog/details/periodic_worker.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <set>

namespace eta::router {

namespace {

template <typename Buf>
void append_json_string(Buf& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out.append(std::string_view("\\\""));
        break;
      case '\\':
        out.append(std::string_view("\\\\"));
        break;
      case '\n':
        out.append(std::string_view("\\n"));
        break;
      case '\r':
        out.append(std::string_view("\\r"));
        break;
      case '\t':
        out.append(std::string_view("\\t"));
        break;
      default:
        if (c < 0x20) {
          const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
          out.append(std::string_view(esc, 6));
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

// %* in the JSON pattern: the message as a JSON string (quotes included).
class JsonMessageFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    struct Out {
      spdlog::memory_buf_t& b;
      void push_back(char c) { b.push_back(c); }
      void append(std::string_view s) { b.append(s.data(), s.data() + s.size()); }
    } out{dest};
    append_json_string(out, std::string_view(msg.payload.data(), msg.payload.size()));
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};

struct StringOut {
  std::string& s;
  void push_back(char c) { s.push_back(c); }
  void append(std::string_view v) { s.append(v); }
};

void append_ms(std::string& out, const std::optional<double>& v) {
  if (!v || !std::isfinite(*v)) {
    out += "null";
    return;
  }
  fmt::format_to(std::back_inserter(out), "{:.3f}", *v);
}

void append_iso_time(std::string& out, double unix_s) {
  const auto secs = static_cast<std::time_t>(std::floor(unix_s));
  int ms = static_cast<int>((unix_s - static_cast<double>(secs)) * 1000.0);
  ms = std::clamp(ms, 0, 999);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  fmt::format_to(std::back_inserter(out), "\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z\"",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 ms);
}

void append_string_or_null(std::string& out, std::string_view v) {
  if (v.empty()) {
    out += "null";
    return;
  }
  StringOut o{out};
  append_json_string(o, v);
}

}  // namespace

bool setup_logging(const std::string& level, const std::string& format, std::string& error) {
  static const std::set<std::string> kLevels = {"trace", "debug",    "info", "warn",
                                                "error", "critical", "off"};
  if (kLevels.count(level) == 0) {
    error = "log level must be one of trace, debug, info, warn, error, critical, off; got '" +
            level + "'";
    return false;
  }
  if (format != "text" && format != "json") {
    error = "log format must be text or json; got '" + format + "'";
    return false;
  }
  auto logger = spdlog::get("eta-route");
  if (!logger) logger = spdlog::stderr_logger_mt("eta-route");
  if (format == "json") {
    auto f = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    f->add_flag<JsonMessageFlag>('*').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","msg":%*})");
    logger->set_formatter(std::move(f));
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  }
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
  return true;
}

void format_access_record(const AccessRecord& r, std::string& out) {
  out.clear();
  out += "{\"time\":";
  append_iso_time(out, r.unix_time_s);
  fmt::format_to(std::back_inserter(out), ",\"request_id\":{},\"replica\":", r.request_id);
  append_string_or_null(out, r.replica);
  out += ",\"policy\":";
  append_string_or_null(out, r.policy);
  out += ",\"model\":";
  append_string_or_null(out, r.model);
  fmt::format_to(std::back_inserter(out),
                 ",\"prompt_tokens\":{},\"output_tokens\":", r.prompt_tokens);
  if (r.output_tokens) {
    fmt::format_to(std::back_inserter(out), "{}", *r.output_tokens);
  } else {
    out += "null";
  }
  out += ",\"predicted_ttft_ms\":";
  append_ms(out, r.predicted_ttft_ms);
  out += ",\"ttft_ms\":";
  append_ms(out, r.ttft_ms);
  out += ",\"predicted_e2e_ms\":";
  append_ms(out, r.predicted_e2e_ms);
  out += ",\"e2e_ms\":";
  append_ms(out, r.e2e_ms);
  out += ",\"dispatch_ms\":";
  append_ms(out, r.dispatch_ms);
  fmt::format_to(std::back_inserter(out), ",\"status\":{},\"retries\":{},\"stream\":{}", r.status,
                 r.retries, r.stream ? "true" : "false");
  out += ",\"error\":";
  append_string_or_null(out, r.error);
  out += '}';
}

// The writer's queue holds 1,024 batches; should it fall that far behind, the event loop waits
// (block) rather than dropping lines.
std::unique_ptr<AccessLog> AccessLog::open(const std::string& target, std::string& error) {
  if (target == "off") return nullptr;
  if (target.empty()) {
    error = "access log must be a file path, '-' (stdout) or 'off'";
    return nullptr;
  }
  spdlog::sink_ptr sink;
  try {
    if (target == "-") {
      sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
    } else {
      // spdlog would create missing directories; a typo in the path should be an error instead.
      const std::filesystem::path parent = std::filesystem::path(target).parent_path();
      std::error_code ec;
      if (!parent.empty() && !std::filesystem::is_directory(parent, ec)) {
        error = "cannot open access log " + target + ": no directory " + parent.string();
        return nullptr;
      }
      sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(target, false);
    }
  } catch (const std::exception& e) {
    error = "cannot open access log " + target + ": " + e.what();
    return nullptr;
  }
  sink->set_formatter(
      std::make_unique<spdlog::pattern_formatter>("%v", spdlog::pattern_time_type::local, ""));
  auto pool = std::make_shared<spdlog::details::thread_pool>(1024, 1);
  auto logger = std::make_shared<spdlog::async_logger>("eta-access", std::move(sink), pool,
                                                       spdlog::async_overflow_policy::block);
  logger->set_level(spdlog::level::info);
  logger->flush_on(spdlog::level::info);  // every batch
  auto log = std::unique_ptr<AccessLog>(new AccessLog(logger));
  log->pool_ = std::move(pool);
  log->flusher_ = std::make_unique<spdlog::details::periodic_worker>(
      [logger, batch = log->batch_] { batch->send(*logger); }, std::chrono::seconds(1));
  return log;
}

AccessLog::AccessLog(std::shared_ptr<spdlog::logger> logger) : logger_(std::move(logger)) {}

AccessLog::~AccessLog() {
  flusher_.reset();
  batch_->send(*logger_);
  logger_.reset();
  pool_.reset();  // joins the writer after it has written every queued batch
}

void AccessLog::Batch::send(spdlog::logger& logger) {
  std::lock_guard lock(mu);
  if (pending.empty()) return;
  logger.info(std::string_view(pending));
  pending.clear();
}

void AccessLog::write(const AccessRecord& r) {
  constexpr size_t kBatchBytes = 64 << 10;
  format_access_record(r, line_);
  std::lock_guard lock(batch_->mu);
  batch_->pending += line_;
  batch_->pending += '\n';
  if (batch_->pending.size() >= kBatchBytes) {
    logger_->info(std::string_view(batch_->pending));
    batch_->pending.clear();
  }
}

}  // namespace eta::router
