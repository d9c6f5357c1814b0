// HTTP/1.1 server on Beast/Asio: see server.hpp for the model. Requests are parsed by Beast;
// responses are serialized here into one reused output buffer per connection (double-buffered:
// bytes written while a write is in flight go out together right after it).
#include "http/server.hpp"

// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frames (awaitable_frame_base
// has matching class-specific operator new/delete).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <exception>
#include <future>
#include <limits>
#include <mutex>
#include <thread>
#include <tuple>
#include <unordered_set>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

#include "openai/request.hpp"

namespace eta::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

namespace {

constexpr auto kNoDeadline = Clock::time_point::max();
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::chrono::seconds kLingerTimeout{2};
constexpr size_t kLingerMaxBytes = 64u << 20;

void report_exception(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "http: unexpected exception: %s\n", ex.what());
  } catch (...) {
    std::fprintf(stderr, "http: unexpected exception\n");
  }
}

void append_status_line(std::string& out, int version, int status) {
  out.append(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  char buf[8];
  int n = std::snprintf(buf, sizeof buf, "%d ", status);
  out.append(buf, static_cast<size_t>(n));
  auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
  if (reason.empty() || reason == "<unknown-status>") reason = "Unknown";
  out.append(reason.data(), reason.size());
  out.append("\r\n");
}

void append_header(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

// At most one Content-Length field, and a single number (not a list such as "5, 5").
template <class Message>
bool single_content_length(const Message& m) {
  size_t count = 0;
  for (const auto& f : m) {
    if (f.name() != bhttp::field::content_length) continue;
    if (++count > 1 || f.value().find(',') != beast::string_view::npos) return false;
  }
  return true;
}

// RFC 9112 6.1: a request whose Transfer-Encoding does not end in chunked has no reliable length
// (400). The router once caught these by failing to parse the body; it reads bodies leniently
// now (issue 11), so the framing is checked here.
template <class Message>
bool transfer_encoding_ok(const Message& m) {
  beast::string_view last;
  bool any = false;
  for (const auto& f : m) {
    if (f.name() != bhttp::field::transfer_encoding) continue;
    any = true;
    last = f.value();
  }
  if (!any) return true;
  const size_t comma = last.rfind(',');
  if (comma != beast::string_view::npos) last = last.substr(comma + 1);
  while (!last.empty() && (last.front() == ' ' || last.front() == '\t')) last.remove_prefix(1);
  while (!last.empty() && (last.back() == ' ' || last.back() == '\t')) last.remove_suffix(1);
  return beast::iequals(last, "chunked");
}

void append_hex(std::string& out, size_t n) {
  char buf[24];
  int len = std::snprintf(buf, sizeof buf, "%zx\r\n", n);
  out.append(buf, static_cast<size_t>(len));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Request / Response helpers

// ---------------------------------------------------------------------------------------------
// Connection and Exchange

class Connection;

struct detail::ServerImpl : std::enable_shared_from_this<detail::ServerImpl> {
  ServerImpl(asio::io_context& io_in, ServerOptions options_in, Handler handler_in)
      : io(io_in),
        options(std::move(options_in)),
        handler(std::move(handler_in)),
        acceptor(io_in) {}

  // tls_front: accepts TLS on `from` and relays each decrypted connection to `inner`.
  asio::awaitable<void> accept_loop(tcp::acceptor& from, bool tls_front);
  asio::awaitable<void> tls_session(tcp::socket socket);
  bool tls_enabled() const { return tls != nullptr; }
  void add(Connection* c) {
    std::lock_guard lock(mu);
    connections.insert(c);
  }
  void remove(Connection* c) {
    std::lock_guard lock(mu);
    connections.erase(c);
  }

  asio::io_context& io;
  ServerOptions options;
  Handler handler;
  tcp::acceptor acceptor;
  std::unique_ptr<asio::ssl::context> tls;  // set when the listener speaks TLS
  tcp::acceptor inner{io};                  // TLS: the plain listener behind the front
  uint16_t port = 0;
  std::atomic<bool> stopped{false};
  mutable std::mutex mu;
  std::unordered_set<Connection*> connections;
};

class ExchangeImpl;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, std::shared_ptr<detail::ServerImpl> server)
      : socket_(std::move(socket)),
        server_(std::move(server)),
        options_(server_->options),
        deadline_timer_(socket_.get_executor()),
        done_timer_(socket_.get_executor()) {
    server_->add(this);
  }
  ~Connection() { server_->remove(this); }

  void start() {
    // User-level non-blocking mode: the disconnect watch's read_some never blocks the thread
    // (async operations are unaffected).
    error_code ec;
    socket_.non_blocking(true, ec);
    auto self = shared_from_this();
    asio::co_spawn(socket_.get_executor(), self->run(), report_exception);
    asio::co_spawn(socket_.get_executor(), self->watchdog(), report_exception);
  }

  // Closes the socket. With notify, a pending exchange hears of the disconnect.
  void close(bool notify);

  // --- used by ExchangeImpl ---
  bool is_current(const ExchangeImpl* e) const { return current_ == e && !closed_; }
  // Appends bytes to the output without starting a write; flush() starts it.
  void append(std::string_view data) {
    if (!closed_) out_pending_.append(data);
  }
  void flush();
  // A complete response: the head is copied, the body is written without a copy.
  void queue_response(std::string_view head, std::string body);
  void finish_response();  // the response's last bytes have been queued
  void set_keep_alive(bool keep_alive) { keep_alive_ = keep_alive; }
  size_t buffered_bytes() const {
    return out_pending_.size() + (writing_ ? out_inflight_.size() + out_body_.size() : 0);
  }
  void exchange_gone(ExchangeImpl* e);
  auto executor() { return socket_.get_executor(); }
  std::string remote_address() const {
    error_code ec;
    auto ep = socket_.remote_endpoint(ec);
    if (ec) return {};
    return ep.address().to_string() + ":" + std::to_string(ep.port());
  }
  const ServerOptions& options() const { return options_; }

 private:
  asio::awaitable<void> run();
  asio::awaitable<void> watchdog();
  asio::awaitable<void> send_error_and_close(int status, std::string message, int version);
  asio::awaitable<void> linger_and_close();

  void set_read_deadline(Clock::duration d) { set_deadline(read_deadline_, Clock::now() + d); }
  void clear_read_deadline() { read_deadline_ = kNoDeadline; }
  void set_deadline(Clock::time_point& which, Clock::time_point when) {
    which = when;
    // Only an earlier deadline needs to wake the watchdog; a later one is picked up when it
    // wakes at the old expiry.
    if (when < deadline_timer_.expiry()) deadline_timer_.cancel();
  }

  void on_write(error_code ec);
  void start_watch();
  void on_watch(uint64_t generation, error_code ec);
  void response_complete();

  tcp::socket socket_;
  std::shared_ptr<detail::ServerImpl> server_;
  const ServerOptions& options_;
  beast::flat_buffer buffer_;
  asio::steady_timer deadline_timer_;
  asio::steady_timer done_timer_;
  Clock::time_point read_deadline_ = kNoDeadline;
  Clock::time_point write_deadline_ = kNoDeadline;

  std::string out_pending_;
  std::string out_inflight_;
  std::string out_body_;  // a full response's body, written after out_inflight_ without a copy
  bool writing_ = false;
  bool ending_ = false;  // the response's last bytes are queued
  bool keep_alive_ = true;
  bool closed_ = false;

  // True while a request's head or body is being read (after its first byte): a read deadline
  // then answers 408 instead of closing silently.
  bool reading_request_ = false;
  bool request_timed_out_ = false;

  ExchangeImpl* current_ = nullptr;
  bool response_done_ = true;
  uint64_t generation_ = 0;  // of the current exchange; tells stale watch completions apart
};

class ExchangeImpl final : public Exchange, public std::enable_shared_from_this<ExchangeImpl> {
 public:
  ExchangeImpl(std::shared_ptr<Connection> conn, Request request)
      : conn_(std::move(conn)), request_(std::move(request)) {
    head_only_ = request_.method == "HEAD";
  }
  ~ExchangeImpl() override {
    // A dropped exchange without a complete response would leave the client hanging.
    conn_->exchange_gone(this);
  }

  const Request& request() const override { return request_; }

  void respond(Response r) override {
    if (state_ != State::kNew || !conn_->is_current(this)) return;
    state_ = State::kDone;
    std::string head;
    head.reserve(160 + r.content_type.size());
    append_status_line(head, request_.version, r.status);
    if (!r.content_type.empty()) append_header(head, "Content-Type", r.content_type);
    for (const auto& [k, v] : r.headers) append_header(head, k, v);
    char len[24];
    int n = std::snprintf(len, sizeof len, "%zu", r.body.size());
    append_header(head, "Content-Length", std::string_view(len, static_cast<size_t>(n)));
    if (!request_.keep_alive) append_header(head, "Connection", "close");
    head.append("\r\n");
    if (head_only_) r.body.clear();
    conn_->queue_response(head, std::move(r.body));
    conn_->finish_response();
  }

  bool start_stream(int status, std::string_view content_type, const Headers& headers) override {
    if (state_ != State::kNew || !conn_->is_current(this)) return false;
    state_ = State::kStreaming;
    chunked_ = request_.version >= 11;
    if (!chunked_) {
      request_.keep_alive = false;
      conn_->set_keep_alive(false);
    }
    std::string head;
    head.reserve(192);
    append_status_line(head, request_.version, status);
    if (!content_type.empty()) append_header(head, "Content-Type", content_type);
    for (const auto& [k, v] : headers) append_header(head, k, v);
    if (chunked_) append_header(head, "Transfer-Encoding", "chunked");
    if (!request_.keep_alive) append_header(head, "Connection", "close");
    head.append("\r\n");
    conn_->append(head);
    conn_->flush();
    if (head_only_) {
      state_ = State::kDone;
      conn_->finish_response();
    }
    return true;
  }

  bool write(std::string_view data) override {
    if (state_ != State::kStreaming || !conn_->is_current(this)) return false;
    if (data.empty()) return true;
    if (chunked_) {
      scratch_.clear();
      append_hex(scratch_, data.size());
      conn_->append(scratch_);
      conn_->append(data);
      conn_->append("\r\n");
    } else {
      conn_->append(data);
    }
    conn_->flush();
    if (conn_->buffered_bytes() > conn_->options().max_buffered_bytes) {
      conn_->close(true);  // a client this far behind is treated as gone
      return false;
    }
    return true;
  }

  bool end_stream() override {
    if (state_ != State::kStreaming || !conn_->is_current(this)) return false;
    state_ = State::kDone;
    if (chunked_) conn_->append("0\r\n\r\n");
    conn_->flush();
    conn_->finish_response();
    return true;
  }

  void on_disconnect(std::function<void()> callback) override {
    if (gone_ || finished_) return;
    on_disconnect_ = std::move(callback);
  }
  bool disconnected() const override { return gone_; }
  bool finished() const override { return finished_; }
  size_t buffered_bytes() const override {
    return conn_->is_current(this) ? conn_->buffered_bytes() : 0;
  }
  void dispatch(std::function<void()> fn) override {
    asio::dispatch(conn_->executor(), std::move(fn));
  }
  std::string remote_address() const override { return conn_->remote_address(); }

  // --- used by Connection ---
  void mark_finished() {
    finished_ = true;
    on_disconnect_ = nullptr;
  }
  void mark_gone(bool notify) {
    if (gone_ || finished_) return;
    gone_ = true;
    auto cb = std::move(on_disconnect_);
    on_disconnect_ = nullptr;
    if (notify && cb) cb();
  }

 private:
  enum class State { kNew, kStreaming, kDone };
  std::shared_ptr<Connection> conn_;
  Request request_;
  State state_ = State::kNew;
  bool chunked_ = true;
  bool head_only_ = false;
  bool gone_ = false;
  bool finished_ = false;
  std::function<void()> on_disconnect_;
  std::string scratch_;
};

void Connection::close(bool notify) {
  if (closed_) return;
  closed_ = true;
  error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  deadline_timer_.cancel();
  done_timer_.cancel();
  if (current_ != nullptr && !response_done_) {
    // Keep the exchange alive while its callback runs (the callback may drop the last owner).
    if (auto exchange = current_->weak_from_this().lock()) exchange->mark_gone(notify);
  }
}

void Connection::exchange_gone(ExchangeImpl* e) {
  if (current_ != e) return;
  current_ = nullptr;
  if (!response_done_ && !ending_) close(false);
}

void Connection::queue_response(std::string_view head, std::string body) {
  if (closed_) return;
  out_pending_.append(head);
  if (writing_ || !out_body_.empty()) {
    out_pending_.append(body);  // rare: a write is in flight; the body follows it
  } else {
    out_body_ = std::move(body);
  }
  flush();
}

void Connection::finish_response() {
  ending_ = true;
  if (!writing_ && out_pending_.empty()) response_complete();
}

void Connection::flush() {
  if (closed_ || writing_) return;
  if (out_pending_.empty() && out_body_.empty()) {
    if (ending_) response_complete();
    return;
  }
  std::swap(out_pending_, out_inflight_);
  out_pending_.clear();
  writing_ = true;
  set_deadline(write_deadline_, Clock::now() + options_.write_timeout);
  auto self = shared_from_this();
  std::array<asio::const_buffer, 2> buffers{asio::buffer(out_inflight_), asio::buffer(out_body_)};
  asio::async_write(socket_, buffers,
                    [self = std::move(self)](error_code ec, size_t) { self->on_write(ec); });
}

void Connection::on_write(error_code ec) {
  writing_ = false;
  write_deadline_ = kNoDeadline;
  out_inflight_.clear();
  if (!out_body_.empty()) std::string().swap(out_body_);
  if (ec) {
    close(true);
    return;
  }
  flush();
}

void Connection::response_complete() {
  if (response_done_) return;
  response_done_ = true;
  ending_ = false;
  if (current_ != nullptr) current_->mark_finished();
  done_timer_.cancel();
}

void Connection::start_watch() {
  socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this(), g = generation_](
                                                 error_code ec) { self->on_watch(g, ec); });
}

void Connection::on_watch(uint64_t generation, error_code ec) {
  if (generation != generation_ || response_done_ || closed_) return;  // stale
  if (ec) {
    if (ec != asio::error::operation_aborted) close(true);
    return;
  }
  // Readable while the response is pending: EOF/reset means the client went away; bytes
  // (a pipelined request) are kept in the read buffer for the next parse.
  size_t avail = socket_.available(ec);
  if (ec) {
    close(true);
    return;
  }
  size_t limit = options_.max_header_bytes + options_.max_body_bytes;
  auto buf = buffer_.prepare(std::max<size_t>(avail, 512));
  size_t n = socket_.read_some(buf, ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) {
    start_watch();  // spurious readiness
    return;
  }
  if (ec) {
    close(true);
    return;
  }
  buffer_.commit(n);
  if (buffer_.size() <= limit) start_watch();
  // Otherwise stop reading: TCP flow control holds the client back until the response ends.
}

asio::awaitable<void> Connection::watchdog() {
  auto self = shared_from_this();
  while (!closed_) {
    auto next = std::min(read_deadline_, write_deadline_);
    deadline_timer_.expires_at(next);
    co_await deadline_timer_.async_wait(kTuple);
    if (closed_) break;
    auto now = Clock::now();
    if (reading_request_ && read_deadline_ <= now && write_deadline_ > now) {
      // A request that arrives too slowly (slowloris): stop reading; run() answers 408.
      reading_request_ = false;
      request_timed_out_ = true;
      read_deadline_ = kNoDeadline;
      error_code ec;
      socket_.cancel(ec);
      continue;
    }
    if (read_deadline_ <= now || write_deadline_ <= now) {
      close(true);
      break;
    }
  }
}

asio::awaitable<void> Connection::linger_and_close() {
  // Half-close and drain what the client still sends, so that it reads our answer instead of a
  // reset (nginx's lingering close).
  error_code ec;
  socket_.shutdown(tcp::socket::shutdown_send, ec);
  set_read_deadline(kLingerTimeout);
  std::array<char, 16384> sink;
  size_t total = 0;
  while (!closed_ && total < kLingerMaxBytes) {
    auto [rec, n] = co_await socket_.async_read_some(asio::buffer(sink), kTuple);
    if (rec) break;
    total += n;
  }
  close(false);
}

asio::awaitable<void> Connection::send_error_and_close(int status, std::string message,
                                                       int version) {
  openai::Error e;
  e.status = status;
  e.message = std::move(message);
  std::string body = openai::error_body(e);
  std::string out;
  append_status_line(out, version, status);
  append_header(out, "Content-Type", "application/json");
  append_header(out, "Content-Length", std::to_string(body.size()));
  append_header(out, "Connection", "close");
  out.append("\r\n");
  out.append(body);
  set_deadline(write_deadline_, Clock::now() + options_.write_timeout);
  auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(out), kTuple);
  write_deadline_ = kNoDeadline;
  if (ec) {
    close(false);
    co_return;
  }
  co_await linger_and_close();
}

asio::awaitable<void> Connection::run() {
  auto self = shared_from_this();
  while (!closed_) {
    // Idle: wait for the first byte of the next request.
    if (buffer_.size() == 0) {
      set_read_deadline(options_.idle_timeout);
      auto [ec] = co_await socket_.async_wait(tcp::socket::wait_read, kTuple);
      if (ec || closed_) break;
    }
    set_read_deadline(options_.request_timeout);
    reading_request_ = true;
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<uint32_t>(
        std::min<size_t>(options_.max_header_bytes, std::numeric_limits<uint32_t>::max())));
    parser.body_limit(options_.max_body_bytes);
    auto [ec, n] = co_await bhttp::async_read_header(socket_, buffer_, parser, kTuple);
    if (!ec && !single_content_length(parser.get())) {
      // Beast accepts repeated identical Content-Length values (RFC 9110 allows it); a proxy
      // must not, or a front end that reads a different one smuggles a request past it.
      ec = bhttp::error::bad_content_length;
    }
    if (!ec && !transfer_encoding_ok(parser.get())) ec = bhttp::error::bad_transfer_encoding;
    if (!ec && !parser.is_done()) {
      const auto& h = parser.get();
      auto expect = h[bhttp::field::expect];
      if (iequals(expect, "100-continue")) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        auto [wec, wn] = co_await asio::async_write(socket_, asio::buffer(kContinue), kTuple);
        ec = wec;
      }
      if (!ec) std::tie(ec, n) = co_await bhttp::async_read(socket_, buffer_, parser, kTuple);
    }
    clear_read_deadline();
    reading_request_ = false;
    if (closed_) break;
    if (ec) {
      int version = parser.is_header_done() ? parser.get().version() : 11;
      if (request_timed_out_) {
        co_await send_error_and_close(408,
                                      "Request timeout: the request was not received within " +
                                          std::to_string(options_.request_timeout.count()) + " ms",
                                      version);
      } else if (ec == bhttp::error::header_limit) {
        co_await send_error_and_close(431, "Request header fields too large", version);
      } else if (ec == bhttp::error::body_limit) {
        co_await send_error_and_close(
            413,
            "Request body too large (limit " + std::to_string(options_.max_body_bytes) + " bytes)",
            version);
      } else if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
                 ec == asio::error::eof || ec == asio::error::operation_aborted ||
                 ec == asio::error::connection_reset) {
        close(false);
      } else {
        co_await send_error_and_close(400, "Invalid HTTP request: " + ec.message(), version);
      }
      break;
    }

    auto msg = parser.release();
    Request req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    req.version = msg.version();
    req.keep_alive = msg.keep_alive();
    req.headers.reserve(8);
    for (const auto& f : msg) req.headers.emplace_back(f.name_string(), f.value());
    req.body = std::move(msg.body());

    if (server_->stopped) break;
    auto exchange = std::make_shared<ExchangeImpl>(self, std::move(req));
    current_ = exchange.get();
    keep_alive_ = exchange->request().keep_alive;
    response_done_ = false;
    ending_ = false;
    ++generation_;
    start_watch();
    server_->handler(std::move(exchange));
    while (!response_done_ && !closed_) {
      done_timer_.expires_at(kNoDeadline);
      co_await done_timer_.async_wait(kTuple);
    }
    current_ = nullptr;
    if (closed_) break;
    if (!keep_alive_) {
      error_code sec;
      socket_.shutdown(tcp::socket::shutdown_send, sec);
      close(false);
      break;
    }
  }
  close(false);
}

// ---------------------------------------------------------------------------------------------
// Server

// Accepts on `from` until stopped. Plain: each connection is served here. TLS: each one is
// decrypted by tls_session and relayed to the inner plain listener.
asio::awaitable<void> detail::ServerImpl::accept_loop(tcp::acceptor& from, bool tls_front) {
  auto self = shared_from_this();
  asio::steady_timer backoff(io);
  while (!stopped) {
    auto [ec, socket] = co_await from.async_accept(asio::make_strand(io), kTuple);
    if (stopped) break;
    if (ec) {
      if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) break;
      // Out of descriptors or similar: back off briefly instead of spinning.
      backoff.expires_after(std::chrono::milliseconds(10));
      co_await backoff.async_wait(kTuple);
      continue;
    }
    error_code oec;
    socket.set_option(tcp::no_delay(true), oec);
    if (tls_front) {
      auto ex = socket.get_executor();
      asio::co_spawn(ex, self->tls_session(std::move(socket)), report_exception);
    } else {
      auto conn = std::make_shared<Connection>(std::move(socket), self);
      conn->start();
    }
  }
}

asio::awaitable<void> detail::ServerImpl::tls_session(tcp::socket socket) {
  auto self = shared_from_this();
  auto ex = socket.get_executor();
  using TlsStream = asio::ssl::stream<tcp::socket>;
  auto stream = std::make_shared<TlsStream>(std::move(socket), *tls);
  auto up = std::make_shared<tcp::socket>(ex);
  auto close_both = [stream, up] {
    error_code ec;
    stream->lowest_layer().close(ec);
    up->close(ec);
  };
  // The handshake and the connection to the inner listener within request_timeout.
  asio::steady_timer timer(ex);
  timer.expires_after(options.request_timeout);
  timer.async_wait([close_both](error_code ec) {
    if (!ec) close_both();
  });
  auto [hec] = co_await stream->async_handshake(asio::ssl::stream_base::server, kTuple);
  error_code lec;
  const tcp::endpoint backend = inner.local_endpoint(lec);
  if (hec || lec || stopped) {
    timer.cancel();
    close_both();
    co_return;
  }
  auto [cec] = co_await up->async_connect(backend, kTuple);
  timer.cancel();
  if (cec) {
    close_both();
    co_return;
  }
  error_code nec;
  up->set_option(tcp::no_delay(true), nec);
  // Inner -> client: ends with a TLS close_notify when the inner connection closes.
  asio::co_spawn(
      ex,
      [stream, up, close_both]() -> asio::awaitable<void> {
        std::array<char, 16384> buf;
        for (;;) {
          auto [rec, n] = co_await up->async_read_some(asio::buffer(buf), kTuple);
          if (rec) break;
          auto [wec, wn] = co_await asio::async_write(*stream, asio::buffer(buf.data(), n), kTuple);
          if (wec) break;
        }
        // The client->inner loop has a read pending on the TLS stream; the shutdown reads the
        // client's close_notify itself, so cancel that read first (one read at a time).
        error_code cec;
        stream->lowest_layer().cancel(cec);
        asio::steady_timer t(up->get_executor());
        t.expires_after(std::chrono::seconds(1));
        t.async_wait([close_both](error_code ec) {
          if (!ec) close_both();
        });
        co_await stream->async_shutdown(kTuple);
        t.cancel();
        close_both();
      },
      report_exception);
  // Client -> inner: the client's close (or a TLS error) half-closes the inner connection, which
  // the inner server reads as the client going away.
  std::array<char, 16384> buf;
  for (;;) {
    auto [rec, n] = co_await stream->async_read_some(asio::buffer(buf), kTuple);
    if (rec) break;
    auto [wec, wn] = co_await asio::async_write(*up, asio::buffer(buf.data(), n), kTuple);
    if (wec) break;
  }
  error_code sec;
  up->shutdown(tcp::socket::shutdown_send, sec);
}

Server::Server(asio::io_context& io, ServerOptions options, Handler handler)
    : impl_(std::make_shared<detail::ServerImpl>(io, std::move(options), std::move(handler))) {}

Server::~Server() {
  stop();
}

bool Server::listen(std::string& error) {
  error_code ec;
  auto address = asio::ip::make_address(impl_->options.host, ec);
  if (ec) {
    error = "invalid listen address '" + impl_->options.host + "': " + ec.message();
    return false;
  }
  tcp::endpoint endpoint(address, impl_->options.port);
  auto& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec && impl_->options.reuse_port) {
    acceptor.set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true), ec);
  }
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(impl_->options.backlog, ec);
  if (ec) {
    error = "cannot listen on " + impl_->options.host + ":" + std::to_string(impl_->options.port) +
            ": " + ec.message();
    acceptor.close(ec);
    return false;
  }
  impl_->port = acceptor.local_endpoint(ec).port();
  const ServerOptions& o = impl_->options;
  if (!o.tls_cert_file.empty() || !o.tls_key_file.empty()) {
    auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                         asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                         asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use,
                     ec);
    if (!ec) ctx->use_certificate_chain_file(o.tls_cert_file, ec);
    if (ec) {
      error = "TLS certificate " + o.tls_cert_file + ": " + ec.message();
    } else {
      ctx->use_private_key_file(o.tls_key_file, asio::ssl::context::pem, ec);
      if (ec) error = "TLS key " + o.tls_key_file + ": " + ec.message();
    }
    if (!ec) {
      tcp::endpoint loopback(asio::ip::make_address("127.0.0.1"), 0);
      auto& inner = impl_->inner;
      inner.open(loopback.protocol(), ec);
      if (!ec) inner.bind(loopback, ec);
      if (!ec) inner.listen(o.backlog, ec);
      if (ec) error = "cannot listen on 127.0.0.1 for TLS: " + ec.message();
    }
    if (ec) {
      acceptor.close(ec);
      impl_->inner.close(ec);
      return false;
    }
    impl_->tls = std::move(ctx);
  }
  return true;
}

uint16_t Server::port() const {
  return impl_->port;
}
const ServerOptions& Server::options() const {
  return impl_->options;
}

void Server::start() {
  if (impl_->tls_enabled()) {
    asio::co_spawn(impl_->io, impl_->accept_loop(impl_->inner, false), report_exception);
    asio::co_spawn(impl_->io, impl_->accept_loop(impl_->acceptor, true), report_exception);
    return;
  }
  asio::co_spawn(impl_->io, impl_->accept_loop(impl_->acceptor, false), report_exception);
}

void Server::stop_accepting() {
  if (!impl_ || impl_->stopped) return;
  error_code ec;
  impl_->acceptor.close(ec);
}

void Server::stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  error_code ec;
  impl_->acceptor.close(ec);
  impl_->inner.close(ec);
  std::vector<std::shared_ptr<Connection>> live;
  {
    std::lock_guard lock(impl_->mu);
    for (auto* c : impl_->connections)
      if (auto sp = c->weak_from_this().lock()) live.push_back(std::move(sp));
  }
  for (auto& c : live) asio::dispatch(c->executor(), [c] { c->close(false); });
}

size_t Server::num_connections() const {
  std::lock_guard lock(impl_->mu);
  return impl_->connections.size();
}

// ---------------------------------------------------------------------------------------------
// IoThread

struct IoThread::Impl {
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
  std::thread thread;
};

IoThread::IoThread() : impl_(std::make_unique<Impl>()) {
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

IoThread::~IoThread() {
  stop();
}

asio::io_context& IoThread::io() {
  return impl_->io;
}

void IoThread::run_sync(const std::function<void()>& fn) {
  std::promise<void> done;
  asio::post(impl_->io, [&] {
    fn();
    done.set_value();
  });
  done.get_future().wait();
}

void IoThread::stop() {
  if (!impl_->thread.joinable()) return;
  impl_->work.reset();
  impl_->io.stop();
  impl_->thread.join();
}

// ---------------------------------------------------------------------------------------------
// Routes

void Routes::add(std::string_view method, std::string path, Handler handler) {
  for (auto& r : routes_) {
    if (r.path == path) {
      r.methods.emplace_back(std::string(method), std::move(handler));
      return;
    }
  }
  Route r;
  r.path = std::move(path);
  r.methods.emplace_back(std::string(method), std::move(handler));
  routes_.push_back(std::move(r));
}

bool Routes::dispatch(const ExchangePtr& exchange) const {
  const auto& req = exchange->request();
  auto path = req.path();
  for (const auto& r : routes_) {
    if (r.path != path) continue;
    std::string allow;
    for (const auto& [m, h] : r.methods) {
      if (m == req.method) {
        h(exchange);
        return true;
      }
      if (!allow.empty()) allow += ", ";
      allow += m;
    }
    auto resp = error_response(405, "BadRequestError", "Method Not Allowed");
    resp.headers.emplace_back("Allow", std::move(allow));
    exchange->respond(std::move(resp));
    return false;
  }
  exchange->respond(error_response(404, "NotFoundError", "Not Found"));
  return false;
}

Handler Routes::handler() const {
  return [this](ExchangePtr e) { dispatch(e); };
}

}  // namespace eta::http
