#include "bench/loadgen.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <csignal>
#include <memory>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "bench/sse.hpp"
#include "util/xoshiro.hpp"

namespace eta::bench {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

// Bodies are built ahead of time only while the next send is at least this far away.
constexpr auto kPrebuildMargin = std::chrono::microseconds(200);
constexpr size_t kMaxErrorBody = 512;

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

Clock::duration wall(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

std::chrono::milliseconds to_ms(double s) {
  return std::chrono::milliseconds(s > 0 ? std::max<int64_t>(1, static_cast<int64_t>(s * 1000))
                                         : 0);
}

std::optional<double> parse_number(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  if (text.empty()) return std::nullopt;
  double v = 0;
  const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size()) return std::nullopt;
  return v;
}

const char* error_kind(http::ClientError e) {
  switch (e) {
    case http::ClientError::kConnectFailed:
    case http::ClientError::kConnectRefused:
      return "connect";
    case http::ClientError::kTimeout:
      return "timeout";
    case http::ClientError::kReset:
      return "reset";
    case http::ClientError::kCanceled:
      return "aborted";
    case http::ClientError::kProtocolError:
    case http::ClientError::kTooLarge:
    case http::ClientError::kOk:
      break;
  }
  return "protocol";
}

// The "message" of an OpenAI-style error body, else the body's start, on one line.
std::string error_body_line(const std::string& body) {
  std::string line;
  const size_t key = body.find("\"message\"");
  if (key != std::string::npos) {
    const size_t open = body.find('"', body.find(':', key) + 1);
    if (open != std::string::npos) {
      for (size_t i = open + 1; i < body.size() && body[i] != '"'; ++i) {
        if (body[i] == '\\' && i + 1 < body.size()) ++i;
        line += body[i];
      }
      return line;
    }
  }
  for (char c : body) line += (c == '\n' || c == '\r') ? ' ' : c;
  if (line.size() > 200) line.resize(200);
  return line;
}

class Loadgen {
 public:
  Loadgen(asio::io_context& io, const LoadgenConfig& config)
      : io_(io), config_(config), timer_(io), progress_timer_(io), signals_(io, SIGINT, SIGTERM) {
    const size_t n = config_.plan.size();
    result_.requests.resize(n);
    bodies_.resize(n);
    live_.resize(n);
    for (size_t i = 0; i < n; ++i) result_.requests[i].scheduled_s = config_.plan[i].at_s;
    pools_.push_back(std::make_unique<http::UpstreamPool>(io, config.target, pool_options(config)));
    for (const http::Url& u : config.extra_targets)
      pools_.push_back(std::make_unique<http::UpstreamPool>(io, u, pool_options(config)));
    util::Xoshiro256 rng(config.target_seed);
    for (size_t i = 0; i < n; ++i) {
      result_.requests[i].target = config.random_targets
                                       ? static_cast<int>(rng.next() % pools_.size())
                                       : static_cast<int>(i % pools_.size());
    }
    headers_ = config_.headers;
    headers_.emplace_back("Content-Type", "application/json");
  }

  LoadgenResult run() {
    signals_.async_wait([this](const boost::system::error_code& ec, int) {
      if (!ec) interrupt();
    });
    // Build the first bodies before the clock starts.
    prebuild(/*deadline=*/false);
    start_ = Clock::now();
    if (config_.progress_interval_s > 0 && config_.on_progress) arm_progress();
    send_due();
    maybe_finish();
    io_.run();
    for (const auto& p : pools_) {
      const http::PoolStats st = p->stats();
      result_.pool.requests += st.requests;
      result_.pool.connections_opened += st.connections_opened;
      result_.pool.reused += st.reused;
      result_.pool.retried += st.retried;
      result_.pool.idle += st.idle;
      result_.pool.active += st.active;
    }
    return std::move(result_);
  }

 private:
  struct Live {
    Clock::time_point sent;
    Clock::time_point last_byte;
    bool any_byte = false;
    int status = 0;
    SseScanner scanner;
    StreamTimer timer;
    std::string error_body;
    http::RequestHandle handle;
  };

  static http::PoolOptions pool_options(const LoadgenConfig& config) {
    http::PoolOptions o;
    o.connect_timeout = config.timeout_s > 0
                            ? std::min(to_ms(config.timeout_s), std::chrono::milliseconds(30000))
                            : std::chrono::milliseconds(30000);
    o.max_idle_connections = 1 << 16;
    return o;
  }

  size_t size() const { return config_.plan.size(); }
  Clock::time_point scheduled(size_t i) const { return start_ + wall(config_.plan[i].at_s); }

  void prebuild(bool deadline) {
    size_t k = std::max(next_, prebuilt_upto_);
    while (k < size() && prebuilt_bytes_ < config_.prebuild_bytes) {
      if (deadline && Clock::now() + kPrebuildMargin >= scheduled(next_)) break;
      bodies_[k] = config_.make_body(k);
      prebuilt_bytes_ += bodies_[k].size();
      ++k;
    }
    prebuilt_upto_ = k;
  }

  void send_due() {
    if (stopping_) return;
    blocked_ = false;
    Clock::time_point now = Clock::now();
    while (next_ < size()) {
      if (scheduled(next_) > now) break;
      if (config_.max_concurrency > 0 && in_flight_ >= config_.max_concurrency) {
        blocked_ = true;
        return;  // a completion sends it
      }
      send(next_++);
      now = Clock::now();
    }
    if (next_ >= size()) return;
    prebuild(/*deadline=*/true);
    timer_.expires_at(scheduled(next_));
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) send_due();
    });
  }

  void send(size_t i) {
    std::string body;
    if (i < prebuilt_upto_) {
      body = std::move(bodies_[i]);
      prebuilt_bytes_ -= body.size();
    } else {
      body = config_.make_body(i);
    }
    http::ClientRequest req;
    req.method = "POST";
    req.target = std::string(config_.plan[i].path);
    req.headers = headers_;
    req.body_storage = std::move(body);
    req.total_timeout = to_ms(config_.timeout_s);

    http::ResponseHandlers h;
    h.on_head = [this, i](const http::ResponseHead& head) { on_head(i, head); };
    h.on_body = [this, i](std::string_view data) { on_body(i, data); };
    h.on_complete = [this, i](const http::ClientResult& r) { on_complete(i, r); };

    auto live = std::make_unique<Live>();
    Live& l = *live;
    live_[i] = std::move(live);
    RawResult& raw = result_.requests[i];
    l.sent = Clock::now();
    raw.sent = true;
    raw.sent_s = seconds(l.sent - start_);
    raw.lateness_s = raw.sent_s - raw.scheduled_s;
    if (sent_ == 0) result_.first_send_s = raw.sent_s;
    lateness_max_s_ = std::max(lateness_max_s_, raw.lateness_s);
    ++sent_;
    ++in_flight_;
    l.handle = pools_[static_cast<size_t>(raw.target)]->request(std::move(req), std::move(h));
  }

  void on_head(size_t i, const http::ResponseHead& head) {
    Live& l = *live_[i];
    l.status = head.status;
    RawResult& raw = result_.requests[i];
    raw.http_status = head.status;
    if (std::string_view r = head.header("x-eta-replica"); !r.empty()) raw.replica = std::string(r);
    raw.predicted_ttft_ms = parse_number(head.header("x-eta-predicted-ttft-ms"));
    raw.predicted_e2e_ms = parse_number(head.header("x-eta-predicted-e2e-ms"));
  }

  void on_body(size_t i, std::string_view data) {
    const Clock::time_point t = Clock::now();
    Live& l = *live_[i];
    l.last_byte = t;
    l.any_byte = true;
    if (l.status != 200) {
      if (l.error_body.size() < kMaxErrorBody) {
        l.error_body.append(data.substr(0, kMaxErrorBody - l.error_body.size()));
      }
      return;
    }
    const double since_send = seconds(t - l.sent);
    l.scanner.feed(
        data, [&](std::string_view event) { l.timer.on_event(parser_.parse(event), since_send); });
  }

  void on_complete(size_t i, const http::ClientResult& r) {
    const Clock::time_point t = Clock::now();
    std::unique_ptr<Live> live = std::move(live_[i]);
    RawResult& raw = result_.requests[i];
    const StreamTimer& st = live->timer;
    if (!r.ok()) {
      raw.error_kind = error_kind(r.error);
      raw.error_detail = r.detail.empty() ? std::string(http::to_string(r.error)) : r.detail;
    } else if (live->status != 200) {
      raw.error_kind = "http_" + std::to_string(live->status);
      raw.error_detail = error_body_line(live->error_body);
    } else if (st.error()) {
      raw.error_kind = "stream";
      raw.error_detail = st.error_message().empty() ? "error event" : st.error_message();
    } else if (!st.done()) {
      raw.error_kind = "stream";
      raw.error_detail = "the stream ended without data: [DONE]";
    }
    raw.http_status = live->status;
    raw.first_token = st.first_token_seen();
    raw.ttft_s = st.ttft();
    raw.e2e_s = seconds(((r.ok() && live->any_byte) ? live->last_byte : t) - live->sent);
    raw.itls_s = std::move(live->timer.mutable_itls());
    raw.token_events = st.token_events();
    raw.usage_prompt_tokens = st.usage_prompt_tokens();
    raw.usage_completion_tokens = st.usage_completion_tokens();
    if (!raw.error_kind.empty()) ++errors_;
    ++finished_;
    --in_flight_;
    result_.last_done_s = std::max(result_.last_done_s, seconds(t - start_));
    if (blocked_) send_due();
    maybe_finish();
  }

  void maybe_finish() {
    if (finished_flag_) return;
    if (in_flight_ > 0) return;
    if (!stopping_ && next_ < size()) return;
    finished_flag_ = true;
    timer_.cancel();
    progress_timer_.cancel();
    signals_.cancel();
    if (config_.on_progress) config_.on_progress(progress(), true);
    for (const auto& p : pools_) p->close_idle();
    io_.stop();
  }

  void interrupt() {
    if (stopping_) return;
    stopping_ = true;
    result_.interrupted = true;
    timer_.cancel();
    for (auto& l : live_) {
      if (l) l->handle.cancel();
    }
    maybe_finish();
  }

  ProgressCounts progress() const {
    ProgressCounts p;
    p.total = static_cast<int64_t>(size());
    p.sent = sent_;
    p.finished = finished_;
    p.errors = errors_;
    p.in_flight = in_flight_;
    p.elapsed_s = seconds(Clock::now() - start_);
    p.lateness_max_s = lateness_max_s_;
    return p;
  }

  void arm_progress() {
    progress_timer_.expires_after(wall(config_.progress_interval_s));
    progress_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || finished_flag_) return;
      config_.on_progress(progress(), false);
      arm_progress();
    });
  }

  asio::io_context& io_;
  const LoadgenConfig& config_;
  http::Headers headers_;
  LoadgenResult result_;
  std::vector<std::string> bodies_;
  std::vector<std::unique_ptr<Live>> live_;
  EventParser parser_;
  Clock::time_point start_;
  size_t next_ = 0;
  size_t prebuilt_upto_ = 0;
  size_t prebuilt_bytes_ = 0;
  int64_t sent_ = 0;
  int64_t finished_ = 0;
  int64_t errors_ = 0;
  int64_t in_flight_ = 0;
  double lateness_max_s_ = 0;
  bool blocked_ = false;
  bool stopping_ = false;
  bool finished_flag_ = false;
  // Declared last: destroyed first, so requests still in flight end silently before the
  // state their callbacks use goes away.
  std::vector<std::unique_ptr<http::UpstreamPool>> pools_;  // one per target
  asio::steady_timer timer_;
  asio::steady_timer progress_timer_;
  asio::signal_set signals_;
};

}  // namespace

LoadgenResult run_loadgen(const LoadgenConfig& config) {
  asio::io_context io(1);
  Loadgen gen(io, config);
  return gen.run();
}

bool http_get(const http::Url& url, const std::string& target, double timeout_s, std::string& body,
              std::string& error) {
  asio::io_context io(1);
  http::PoolOptions options;
  options.connect_timeout = to_ms(timeout_s);
  http::UpstreamPool pool(io, url, options);
  bool ok = false;
  pool.get(target, 16u << 20, to_ms(timeout_s),
           [&](int status, std::string text, const http::ClientResult& r) {
             if (!r.ok()) {
               error = "cannot GET " + url.str() + target + ": " +
                       (r.detail.empty() ? std::string(http::to_string(r.error)) : r.detail);
             } else if (status != 200) {
               error = "GET " + url.str() + target + " answered " + std::to_string(status) + ": " +
                       error_body_line(text);
             } else {
               body = std::move(text);
               ok = true;
             }
             pool.close_idle();
             io.stop();
           });
  io.run();
  return ok;
}

}  // namespace eta::bench
