// HTTP/1.1 upstream client on Asio + Beast's basic_parser: see client.hpp for the model.
//
// Why this shape (latency per chunk): each connection owns one flat_buffer that every
// async_read_some fills directly. A subclass of beast::http::basic_parser (no body type, no
// buffer_body) is fed that buffer with put(); its body callbacks hand on_body string_views into
// the buffer itself, so the decoded chunk data reaches the caller in the same handler that read
// it, without a copy, without waiting for more bytes, and without allocating (the buffer, the
// header store and the parser, which lives in a std::optional, are reused). Writes are one
// gathered write of the head (built into a reused string) and the caller's body.
//
// Lifetime: a ClientConnection is kept alive by the completion handlers of its pending
// operations (they hold a shared_ptr), and by the pool while it is idle. Handlers carry the
// connection's io generation, bumped whenever the socket is closed or handed to a new request,
// so a stale completion is ignored. The pool lives as long as any of its connections.
#include "http/client.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <limits>
#include <unordered_set>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>

namespace eta::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

namespace {

constexpr auto kNever = Clock::time_point::max();

Clock::time_point after(Clock::time_point from, std::chrono::milliseconds d) {
  return d.count() > 0 ? from + d : kNever;
}

// Headers the client writes itself (or that make no sense on an upstream hop).
bool is_own_header(std::string_view name) {
  return iequals(name, "host") || iequals(name, "content-length") ||
         iequals(name, "transfer-encoding") || iequals(name, "connection") ||
         iequals(name, "keep-alive");
}

bool method_has_body(std::string_view method) {
  return method == "POST" || method == "PUT" || method == "PATCH";
}

void append_number(std::string& out, uint64_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, static_cast<size_t>(end - buf));
}

std::string ms_text(std::chrono::milliseconds d) {
  return std::to_string(d.count()) + " ms";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Results and heads

// ---------------------------------------------------------------------------------------------
// TLS (https:// upstreams)

class TlsClientContext {
 public:
  TlsClientContext() : ctx(asio::ssl::context::tls_client) {}
  asio::ssl::context ctx;
  bool verify = true;
};

std::shared_ptr<TlsClientContext> make_tls_client_context(const TlsClientOptions& o,
                                                          std::string& error) {
  auto c = std::make_shared<TlsClientContext>();
  c->verify = o.verify;
  error_code ec;
  c->ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                         asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                         asio::ssl::context::no_tlsv1_1,
                     ec);
  auto readable = [&](const std::string& file, std::string_view what) {
    if (std::FILE* f = std::fopen(file.c_str(), "rb")) {
      std::fclose(f);
      return true;
    }
    error = "cannot read TLS " + std::string(what) + " " + file;
    return false;
  };
  if (!o.ca_file.empty()) {
    if (!readable(o.ca_file, "CA file")) return nullptr;
    c->ctx.load_verify_file(o.ca_file, ec);
    if (ec) {
      error = "TLS CA file " + o.ca_file + ": " + ec.message();
      return nullptr;
    }
  } else if (o.verify) {
    c->ctx.set_default_verify_paths(ec);
    if (ec) {
      error = "cannot load the system's TLS CA store: " + ec.message();
      return nullptr;
    }
  }
  c->ctx.set_verify_mode(o.verify ? asio::ssl::verify_peer : asio::ssl::verify_none, ec);
  if (o.cert_file.empty() != o.key_file.empty()) {
    error = "a TLS client certificate needs both cert_file and key_file";
    return nullptr;
  }
  if (!o.cert_file.empty()) {
    if (!readable(o.cert_file, "client certificate") || !readable(o.key_file, "client key")) {
      return nullptr;
    }
    c->ctx.use_certificate_chain_file(o.cert_file, ec);
    if (ec) {
      error = "TLS client certificate " + o.cert_file + ": " + ec.message();
      return nullptr;
    }
    c->ctx.use_private_key_file(o.key_file, asio::ssl::context::pem, ec);
    if (ec) {
      error = "TLS client key " + o.key_file + ": " + ec.message();
      return nullptr;
    }
  }
  return c;
}

// ---------------------------------------------------------------------------------------------
// Pool and connection

struct detail::PoolImpl : std::enable_shared_from_this<detail::PoolImpl> {
  PoolImpl(asio::io_context& io_in, Url url_in, PoolOptions options_in)
      : io(io_in),
        url(std::move(url_in)),
        options(std::move(options_in)),
        authority(url.authority()),
        resolver(io_in) {
    error_code ec;
    auto address = asio::ip::make_address(url.host, ec);
    if (!ec) {
      literal = true;
      endpoints.emplace_back(address, url.port);
    }
    if (url.tls && !options.tls) {  // https without a context: the system's CA store
      options.tls = make_tls_client_context(TlsClientOptions{}, tls_error);
    }
  }

  RequestHandle request(ClientRequest&& request, ResponseHandlers&& handlers);
  std::shared_ptr<ClientConnection> take_idle();
  void release(std::shared_ptr<ClientConnection> conn);
  void remove_idle(const ClientConnection* conn);
  void shutdown();

  asio::io_context& io;
  Url url;
  PoolOptions options;
  std::string authority;  // Host header value
  tcp::resolver resolver;
  std::string tls_error;                 // https without a usable context: why
  bool literal = false;                  // url.host is an IP address
  std::vector<tcp::endpoint> endpoints;  // resolved (or literal) addresses; empty: resolve
  bool closed = false;
  uint64_t next_id = 0;
  std::vector<std::shared_ptr<ClientConnection>> idle;  // most recently used last
  std::unordered_set<ClientConnection*> live;           // every connection object alive
  PoolStats stats;
};

// One upstream connection and the request it serves (at most one at a time).
class detail::ClientConnection : public std::enable_shared_from_this<ClientConnection> {
 public:
  explicit ClientConnection(std::shared_ptr<PoolImpl> pool)
      : pool_(std::move(pool)), socket_(pool_->io), timer_(pool_->io) {
    pool_->live.insert(this);
  }
  ~ClientConnection() { pool_->live.erase(this); }

  void start(ClientRequest&& request, ResponseHandlers&& handlers, uint64_t id, bool reused);
  bool cancel(uint64_t id);
  bool is_active(uint64_t id) const { return active_ && id_ == id; }
  // Pool shutdown: close, and drop the request without calling anything.
  void abandon();

  // --- idle state, used by the pool ---
  void start_idle_watch();
  void stop_idle_watch();
  void close_socket();
  bool is_open() const { return tls_ ? tls_->next_layer().is_open() : socket_.is_open(); }
  Clock::time_point idle_since() const { return idle_since_; }

  // --- used by ResponseParser ---
  void on_status(int status, int version) {
    status_ = status;
    version_ = version;
  }
  void add_header(std::string_view name, std::string_view value) {
    header_spans_.push_back({header_store_.size(), name.size(), value.size()});
    header_store_.append(name);
    header_store_.append(value);
  }
  size_t deliver_body(std::string_view data, error_code& ec);

 private:
  class ResponseParser final : public bhttp::basic_parser<false> {
   public:
    explicit ResponseParser(ClientConnection& conn) : conn_(conn) {}

   private:
    void on_request_impl(bhttp::verb, beast::string_view, beast::string_view, int,
                         error_code&) override {}
    void on_response_impl(int code, beast::string_view, int version, error_code&) override {
      conn_.on_status(code, version);
    }
    void on_field_impl(bhttp::field, beast::string_view name, beast::string_view value,
                       error_code&) override {
      conn_.add_header(name, value);
    }
    void on_header_impl(error_code&) override {}
    void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}
    size_t on_body_impl(beast::string_view body, error_code& ec) override {
      return conn_.deliver_body(body, ec);
    }
    void on_chunk_header_impl(std::uint64_t, beast::string_view, error_code&) override {}
    size_t on_chunk_body_impl(std::uint64_t, beast::string_view body, error_code& ec) override {
      return conn_.deliver_body(body, ec);
    }
    void on_finish_impl(error_code&) override {}

    ClientConnection& conn_;
  };

  struct HeaderSpan {
    size_t offset;
    size_t name_size;
    size_t value_size;
  };

  void open_and_connect();
  void connect_next();
  void on_connect(uint64_t gen, error_code ec);
  void start_handshake();
  void on_handshake(uint64_t gen, error_code ec);
  // The TCP socket of the connection: the plain one, or the one under the TLS stream.
  tcp::socket& sock() { return tls_ ? tls_->next_layer() : socket_; }
  void send_request();
  void on_write(uint64_t gen, error_code ec);
  void start_read();
  void on_read(uint64_t gen, error_code ec, size_t n);
  void parse();
  void on_eof();
  void deliver_head();
  void response_done();
  bool reusable() const;
  void io_failed(error_code ec, const char* what);
  bool try_stale_retry(error_code ec);
  void reset_parser();

  void arm_timer();
  void on_timer(uint64_t id, error_code ec);
  Clock::time_point next_deadline() const;

  void finish(ClientError error, std::string detail, bool reuse, bool post);
  void clear_handlers();

  using TlsStream = asio::ssl::stream<tcp::socket>;

  std::shared_ptr<PoolImpl> pool_;
  tcp::socket socket_;  // http
  // https: a new stream (with its own socket) per TCP connection. Handlers of pending operations
  // hold it too, so a stream replaced by a reconnect outlives the operations still on it.
  std::shared_ptr<TlsStream> tls_;
  asio::steady_timer timer_;
  beast::flat_buffer rbuf_;
  std::optional<ResponseParser> parser_;
  std::string out_;
  std::string header_store_;
  std::vector<HeaderSpan> header_spans_;
  std::vector<HeaderView> header_views_;
  std::vector<tcp::endpoint> endpoints_;
  size_t endpoint_index_ = 0;

  // The request in flight.
  ClientRequest request_;
  ResponseHandlers handlers_;
  uint64_t id_ = 0;
  uint64_t io_gen_ = 0;
  bool active_ = false;
  bool reused_ = false;      // sent on a pooled connection
  bool retried_ = false;     // already resent once after a stale pooled connection
  bool connecting_ = false;  // resolve or connect in progress
  bool connected_ = false;   // ClientResult::connected
  bool writing_ = false;     // request write in flight
  bool write_failed_ = false;
  bool sent_ = false;  // send_request() ran: the idle timeout applies
  bool received_any_ = false;
  bool head_received_ = false;
  bool response_complete_ = false;
  int callback_depth_ = 0;  // > 0 while a user callback runs
  bool clear_after_callback_ = false;
  int status_ = 0;
  int version_ = 11;
  Clock::time_point head_deadline_ = kNever;
  Clock::time_point total_deadline_ = kNever;
  Clock::time_point connect_deadline_ = kNever;
  Clock::time_point last_rx_{};
  Clock::time_point idle_since_{};
};

using detail::ClientConnection;
using detail::PoolImpl;

// --- starting a request ---

void ClientConnection::start(ClientRequest&& request, ResponseHandlers&& handlers, uint64_t id,
                             bool reused) {
  request_ = std::move(request);
  if (!request_.body_storage.empty()) request_.body = request_.body_storage;
  if (request_.target.empty()) request_.target = "/";
  handlers_ = std::move(handlers);
  clear_after_callback_ = false;
  id_ = id;
  active_ = true;
  reused_ = reused;
  retried_ = false;
  connected_ = reused;
  writing_ = false;
  write_failed_ = false;
  sent_ = false;
  received_any_ = false;
  head_received_ = false;
  response_complete_ = false;
  status_ = 0;
  auto now = Clock::now();
  head_deadline_ = after(now, request_.head_timeout);
  total_deadline_ = after(now, request_.total_timeout);
  connect_deadline_ = kNever;
  arm_timer();
  if (reused) {
    send_request();
  } else {
    open_and_connect();
  }
}

void ClientConnection::open_and_connect() {
  ++io_gen_;
  close_socket();
  connected_ = false;
  connecting_ = true;
  if (pool_->url.tls) {
    if (!pool_->options.tls) {
      finish(ClientError::kConnectFailed, pool_->tls_error, false, true);
      return;
    }
    tls_ = std::make_shared<TlsStream>(pool_->io, pool_->options.tls->ctx);
  }
  connect_deadline_ = after(Clock::now(), pool_->options.connect_timeout);
  arm_timer();
  if (!pool_->endpoints.empty()) {
    endpoints_ = pool_->endpoints;
    endpoint_index_ = 0;
    connect_next();
    return;
  }
  auto port = std::to_string(pool_->url.port);
  pool_->resolver.async_resolve(
      pool_->url.host, port,
      [self = shared_from_this(), gen = io_gen_](error_code ec, tcp::resolver::results_type r) {
        if (gen != self->io_gen_ || !self->active_) return;
        if (!ec && r.empty()) ec = asio::error::host_not_found;
        if (ec) {
          self->finish(ClientError::kConnectFailed,
                       "cannot resolve " + self->pool_->url.host + ": " + ec.message(), false,
                       false);
          return;
        }
        self->endpoints_.clear();
        for (const auto& entry : r) self->endpoints_.push_back(entry.endpoint());
        self->pool_->endpoints = self->endpoints_;
        self->endpoint_index_ = 0;
        self->connect_next();
      });
}

void ClientConnection::connect_next() {
  const auto& endpoint = endpoints_[endpoint_index_];
  error_code ec;
  close_socket();
  sock().open(endpoint.protocol(), ec);
  if (ec) {
    finish(ClientError::kConnectFailed, "cannot open socket: " + ec.message(), false, true);
    return;
  }
  sock().async_connect(endpoint, [self = shared_from_this(), tls = tls_,
                                  gen = io_gen_](error_code cec) { self->on_connect(gen, cec); });
}

void ClientConnection::on_connect(uint64_t gen, error_code ec) {
  if (gen != io_gen_ || !active_) return;
  if (ec) {
    if (endpoint_index_ + 1 < endpoints_.size()) {
      ++endpoint_index_;
      connect_next();
      return;
    }
    if (!pool_->literal) pool_->endpoints.clear();  // resolve again next time
    auto error = ec == asio::error::connection_refused ? ClientError::kConnectRefused
                                                       : ClientError::kConnectFailed;
    finish(error, "cannot connect to " + pool_->authority + ": " + ec.message(), false, false);
    return;
  }
  error_code oec;
  sock().set_option(tcp::no_delay(true), oec);
  if (tls_) {
    start_handshake();  // the connect timeout covers the handshake too
    return;
  }
  connecting_ = false;
  connected_ = true;
  connect_deadline_ = kNever;
  ++pool_->stats.connections_opened;
  send_request();
}

void ClientConnection::start_handshake() {
  SSL* ssl = tls_->native_handle();
  const std::string& host = pool_->url.host;
  const bool ip = pool_->literal;
  if (!ip) SSL_set_tlsext_host_name(ssl, host.c_str());  // SNI: names only
  if (pool_->options.tls->verify) {
    // The certificate must name the URL's host: a DNS name, or an IP address SAN.
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    if (ip) {
      X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
    } else {
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
    }
  }
  tls_->async_handshake(asio::ssl::stream_base::client,
                        [self = shared_from_this(), tls = tls_, gen = io_gen_](error_code ec) {
                          self->on_handshake(gen, ec);
                        });
}

void ClientConnection::on_handshake(uint64_t gen, error_code ec) {
  if (gen != io_gen_ || !active_) return;
  if (ec) {
    std::string detail = "TLS handshake with " + pool_->authority + " failed: " + ec.message();
    const long verify = SSL_get_verify_result(tls_->native_handle());
    if (verify != X509_V_OK) detail += ": " + std::string(X509_verify_cert_error_string(verify));
    finish(ClientError::kConnectFailed, std::move(detail), false, false);
    return;
  }
  connecting_ = false;
  connected_ = true;
  connect_deadline_ = kNever;
  ++pool_->stats.connections_opened;
  send_request();
}

void ClientConnection::send_request() {
  const auto& r = request_;
  out_.clear();
  out_.append(r.method);
  out_.push_back(' ');
  out_.append(pool_->url.base_path);
  out_.append(r.target);
  out_.append(" HTTP/1.1\r\nHost: ");
  out_.append(pool_->authority);
  out_.append("\r\n");
  for (const auto& [name, value] : r.headers) {
    if (is_own_header(name)) continue;
    out_.append(name);
    out_.append(": ");
    out_.append(value);
    out_.append("\r\n");
  }
  if (!r.body.empty() || method_has_body(r.method)) {
    out_.append("Content-Length: ");
    append_number(out_, r.body.size());
    out_.append("\r\n");
  }
  out_.append("\r\n");

  rbuf_.consume(rbuf_.size());
  reset_parser();
  sent_ = true;
  last_rx_ = Clock::now();
  // The idle deadline applies from now: re-arm, or a stall after the head would only be seen at
  // the head or total deadline.
  if (request_.idle_timeout.count() > 0) arm_timer();
  writing_ = true;
  std::array<asio::const_buffer, 2> buffers{asio::buffer(out_), asio::buffer(r.body)};
  if (tls_) {
    asio::async_write(*tls_, buffers,
                      [self = shared_from_this(), tls = tls_, gen = io_gen_](
                          error_code ec, size_t) { self->on_write(gen, ec); });
  } else {
    asio::async_write(socket_, buffers,
                      [self = shared_from_this(), gen = io_gen_](error_code ec, size_t) {
                        self->on_write(gen, ec);
                      });
  }
  start_read();
}

void ClientConnection::reset_parser() {
  parser_.emplace(*this);
  parser_->header_limit(static_cast<uint32_t>(
      std::min<size_t>(pool_->options.max_header_bytes, std::numeric_limits<uint32_t>::max())));
  if (request_.max_body_bytes > 0) {
    parser_->body_limit(request_.max_body_bytes);
  } else {
    parser_->body_limit(boost::none);
  }
  if (request_.method == "HEAD") parser_->skip(true);
  header_store_.clear();
  header_spans_.clear();
  status_ = 0;
}

// --- writing and reading ---

void ClientConnection::on_write(uint64_t gen, error_code ec) {
  if (gen != io_gen_ || !active_) return;
  writing_ = false;
  // A failed write (the upstream closed or reset the connection) is reported by the read side,
  // which sees the close too: the upstream may have answered before closing (e.g. 413 without
  // reading the whole body), and a dead pooled connection is retried from there.
  if (ec) write_failed_ = true;
  if (response_complete_) finish(ClientError::kOk, {}, reusable(), false);
}

void ClientConnection::start_read() {
  auto buffer = rbuf_.prepare(pool_->options.read_buffer_bytes);
  if (tls_) {
    tls_->async_read_some(buffer, [self = shared_from_this(), tls = tls_, gen = io_gen_](
                                      error_code ec, size_t n) { self->on_read(gen, ec, n); });
    return;
  }
  socket_.async_read_some(buffer, [self = shared_from_this(), gen = io_gen_](
                                      error_code ec, size_t n) { self->on_read(gen, ec, n); });
}

void ClientConnection::on_read(uint64_t gen, error_code ec, size_t n) {
  if (gen != io_gen_ || !active_) return;
  if (ec) {
    // A TLS peer that closes without close_notify (as most HTTP servers do) is an EOF too.
    if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
      on_eof();
    } else {
      io_failed(ec, "read");
    }
    return;
  }
  rbuf_.commit(n);
  received_any_ = true;
  if (request_.idle_timeout.count() > 0) last_rx_ = Clock::now();
  parse();
}

void ClientConnection::parse() {
  const uint64_t id = id_;
  while (rbuf_.size() > 0) {
    error_code ec;
    size_t used = parser_->put(rbuf_.data(), ec);
    if (!active_ || id_ != id) return;  // canceled from a callback
    rbuf_.consume(used);
    if (ec == bhttp::error::need_more) break;
    if (ec) {
      if (ec == bhttp::error::body_limit) {
        finish(ClientError::kTooLarge,
               "response body over " + std::to_string(request_.max_body_bytes) + " bytes", false,
               false);
      } else if (ec == bhttp::error::header_limit) {
        finish(ClientError::kTooLarge,
               "response head over " + std::to_string(pool_->options.max_header_bytes) + " bytes",
               false, false);
      } else {
        finish(ClientError::kProtocolError, "bad response: " + ec.message(), false, false);
      }
      return;
    }
    if (!head_received_ && parser_->is_header_done()) {
      if (status_ >= 100 && status_ < 200 && status_ != 101) {
        reset_parser();  // interim response (100 Continue, 103 Early Hints): skip it
        continue;
      }
      deliver_head();
      if (!active_ || id_ != id) return;
      parser_->eager(true);
    }
    if (parser_->is_done()) {
      response_done();
      return;
    }
    if (used == 0) break;
  }
  start_read();
}

void ClientConnection::on_eof() {
  if (parser_ && parser_->got_some()) {
    error_code ec;
    parser_->put_eof(ec);
    if (!ec && parser_->is_done()) {  // a close-delimited body ends here
      const uint64_t id = id_;
      if (!head_received_) deliver_head();
      if (active_ && id_ == id) response_done();
      return;
    }
  }
  if (!received_any_ && try_stale_retry(asio::error::eof)) return;
  finish(ClientError::kReset,
         head_received_ ? "upstream closed the connection before the end of the response"
                        : "upstream closed the connection before the response head",
         false, false);
}

void ClientConnection::deliver_head() {
  head_received_ = true;
  header_views_.clear();
  std::string_view store = header_store_;
  for (const auto& s : header_spans_) {
    header_views_.emplace_back(store.substr(s.offset, s.name_size),
                               store.substr(s.offset + s.name_size, s.value_size));
  }
  if (!handlers_.on_head) return;
  ResponseHead head;
  head.status = status_;
  head.version = version_;
  head.keep_alive = parser_->keep_alive();
  head.chunked = parser_->chunked();
  if (auto length = parser_->content_length()) head.content_length = *length;
  head.headers = header_views_;
  ++callback_depth_;
  handlers_.on_head(head);
  --callback_depth_;
  if (callback_depth_ == 0 && clear_after_callback_) clear_handlers();
}

size_t ClientConnection::deliver_body(std::string_view data, error_code& ec) {
  if (!active_) {
    ec = asio::error::operation_aborted;
    return data.size();
  }
  if (data.empty() || !handlers_.on_body) return data.size();
  const uint64_t id = id_;
  ++callback_depth_;
  handlers_.on_body(data);
  --callback_depth_;
  if (callback_depth_ == 0 && clear_after_callback_) clear_handlers();
  if (!active_ || id_ != id) ec = asio::error::operation_aborted;  // stop parsing
  return data.size();
}

void ClientConnection::response_done() {
  response_complete_ = true;
  if (!writing_) {
    finish(ClientError::kOk, {}, reusable(), false);
    return;
  }
  // The response ended while the request write has not reported completion. Usually its
  // completion is already queued: give it one turn, then give up on reusing the connection
  // (the upstream answered without reading the whole request).
  asio::post(pool_->io, [self = shared_from_this(), gen = io_gen_] {
    if (gen != self->io_gen_ || !self->active_) return;
    self->finish(ClientError::kOk, {}, false, false);
  });
}

bool ClientConnection::reusable() const {
  return !writing_ && !write_failed_ && parser_ && parser_->is_done() && parser_->keep_alive() &&
         rbuf_.size() == 0 && is_open() && (!tls_ || SSL_pending(tls_->native_handle()) == 0);
}

bool ClientConnection::try_stale_retry(error_code ec) {
  // A pooled connection that the upstream closed while it was idle (a race with its keep-alive
  // timeout): nothing of a response arrived, so send the request again on a new connection.
  if (!reused_ || retried_ || received_any_) return false;
  if (ec != asio::error::eof && ec != asio::error::connection_reset &&
      ec != asio::error::broken_pipe && ec != asio::error::connection_aborted)
    return false;
  retried_ = true;
  reused_ = false;
  writing_ = false;
  write_failed_ = false;
  sent_ = false;
  ++pool_->stats.retried;
  open_and_connect();
  return true;
}

void ClientConnection::io_failed(error_code ec, const char* what) {
  if (try_stale_retry(ec)) return;
  std::string detail = std::string(what) + " failed: " + ec.message();
  finish(ClientError::kReset, std::move(detail), false, false);
}

// --- timeouts ---

Clock::time_point ClientConnection::next_deadline() const {
  auto next = total_deadline_;
  if (!head_received_) next = std::min(next, head_deadline_);
  if (connecting_) next = std::min(next, connect_deadline_);
  if (sent_ && request_.idle_timeout.count() > 0)
    next = std::min(next, last_rx_ + request_.idle_timeout);
  return next;
}

void ClientConnection::arm_timer() {
  auto next = next_deadline();
  if (next == kNever) return;
  timer_.expires_at(next);
  timer_.async_wait(
      [self = shared_from_this(), id = id_](error_code ec) { self->on_timer(id, ec); });
}

void ClientConnection::on_timer(uint64_t id, error_code ec) {
  if (ec == asio::error::operation_aborted || id != id_ || !active_) return;
  auto now = Clock::now();
  const auto& r = request_;
  if (connecting_ && connect_deadline_ <= now) {
    finish(ClientError::kTimeout,
           "connect to " + pool_->authority + " timed out after " +
               ms_text(pool_->options.connect_timeout),
           false, false);
  } else if (total_deadline_ <= now) {
    finish(ClientError::kTimeout, "response not complete within " + ms_text(r.total_timeout), false,
           false);
  } else if (!head_received_ && head_deadline_ <= now) {
    finish(ClientError::kTimeout, "no response head within " + ms_text(r.head_timeout), false,
           false);
  } else if (sent_ && r.idle_timeout.count() > 0 && last_rx_ + r.idle_timeout <= now) {
    finish(ClientError::kTimeout, "no data from upstream for " + ms_text(r.idle_timeout), false,
           false);
  } else {
    arm_timer();
  }
}

// --- completion ---

void ClientConnection::clear_handlers() {
  clear_after_callback_ = false;
  handlers_ = ResponseHandlers{};
}

void ClientConnection::finish(ClientError error, std::string detail, bool reuse, bool post) {
  if (!active_) return;
  active_ = false;
  connecting_ = false;
  ++io_gen_;
  timer_.cancel();
  ClientResult result;
  result.error = error;
  result.connected = connected_;
  result.head_received = head_received_;
  result.status = status_;
  result.detail = std::move(detail);
  auto on_complete = std::move(handlers_.on_complete);
  handlers_.on_complete = nullptr;
  // A callback of this request may be running (cancel from on_body): destroy the handlers after
  // it returns.
  if (callback_depth_ > 0) {
    clear_after_callback_ = true;
  } else {
    clear_handlers();
  }
  request_.headers.clear();
  request_.body = {};
  request_.body_storage.clear();
  request_.body_storage.shrink_to_fit();

  auto self = shared_from_this();
  auto pool = pool_;
  --pool->stats.active;
  if (reuse && !pool->closed) {
    pool->release(self);
  } else {
    close_socket();
  }
  if (!on_complete) return;
  if (post) {
    asio::post(pool->io, [on_complete = std::move(on_complete), result = std::move(result)] {
      on_complete(result);
    });
  } else {
    on_complete(result);
  }
}

bool ClientConnection::cancel(uint64_t id) {
  if (!is_active(id)) return false;
  finish(ClientError::kCanceled, "canceled", false, true);
  return true;
}

void ClientConnection::abandon() {
  if (active_) {
    active_ = false;
    connecting_ = false;
    --pool_->stats.active;
    handlers_.on_complete = nullptr;
    if (callback_depth_ > 0) {
      clear_after_callback_ = true;
    } else {
      clear_handlers();
    }
  }
  ++io_gen_;
  timer_.cancel();
  close_socket();
}

void ClientConnection::close_socket() {
  tcp::socket& s = sock();
  if (!s.is_open()) return;
  error_code ec;
  s.shutdown(tcp::socket::shutdown_both, ec);
  s.close(ec);
}

// --- idle in the pool ---

void ClientConnection::start_idle_watch() {
  idle_since_ = Clock::now();
  ++io_gen_;
  // While idle, any readable event means the upstream closed the connection (or sent bytes
  // nobody asked for): drop the connection at once.
  sock().async_wait(tcp::socket::wait_read,
                    [self = shared_from_this(), tls = tls_, gen = io_gen_](error_code ec) {
                      if (gen != self->io_gen_ || ec == asio::error::operation_aborted) return;
                      self->pool_->remove_idle(self.get());
                      self->close_socket();
                    });
}

void ClientConnection::stop_idle_watch() {
  ++io_gen_;
  error_code ec;
  sock().cancel(ec);
}

std::shared_ptr<ClientConnection> PoolImpl::take_idle() {
  auto now = Clock::now();
  while (!idle.empty()) {
    auto conn = std::move(idle.back());
    idle.pop_back();
    bool expired =
        options.idle_keepalive.count() > 0 && now - conn->idle_since() >= options.idle_keepalive;
    if (expired || !conn->is_open()) {
      conn->stop_idle_watch();
      conn->close_socket();
      continue;
    }
    conn->stop_idle_watch();
    return conn;
  }
  return nullptr;
}

void PoolImpl::release(std::shared_ptr<ClientConnection> conn) {
  if (closed || idle.size() >= options.max_idle_connections) {
    conn->close_socket();
    return;
  }
  conn->start_idle_watch();
  idle.push_back(std::move(conn));
}

void PoolImpl::remove_idle(const ClientConnection* conn) {
  auto it = std::find_if(idle.begin(), idle.end(), [&](const auto& c) { return c.get() == conn; });
  if (it != idle.end()) idle.erase(it);
}

RequestHandle PoolImpl::request(ClientRequest&& request, ResponseHandlers&& handlers) {
  ++stats.requests;
  ++stats.active;
  auto conn = take_idle();
  bool reused = conn != nullptr;
  if (reused) {
    ++stats.reused;
  } else {
    conn = std::make_shared<ClientConnection>(shared_from_this());
  }
  uint64_t id = ++next_id;
  conn->start(std::move(request), std::move(handlers), id, reused);
  return RequestHandle(conn, id);
}

void PoolImpl::shutdown() {
  if (closed) return;
  closed = true;
  resolver.cancel();
  std::vector<std::shared_ptr<ClientConnection>> all;
  all.reserve(live.size());
  for (auto* c : live)
    if (auto sp = c->weak_from_this().lock()) all.push_back(std::move(sp));
  for (auto& c : all) c->abandon();
  idle.clear();
}

// ---------------------------------------------------------------------------------------------
// Public classes

void RequestHandle::cancel() {
  if (auto conn = conn_.lock()) conn->cancel(id_);
}

bool RequestHandle::active() const {
  auto conn = conn_.lock();
  return conn && conn->is_active(id_);
}

UpstreamPool::UpstreamPool(asio::io_context& io, Url url, PoolOptions options)
    : impl_(std::make_shared<PoolImpl>(io, std::move(url), std::move(options))) {}

UpstreamPool::~UpstreamPool() {
  impl_->shutdown();
}

RequestHandle UpstreamPool::request(ClientRequest request, ResponseHandlers handlers) {
  return impl_->request(std::move(request), std::move(handlers));
}

RequestHandle UpstreamPool::get(std::string target, size_t max_body_bytes,
                                std::chrono::milliseconds timeout, GetCallback callback) {
  struct State {
    std::string body;
    GetCallback callback;
  };
  auto state = std::make_shared<State>();
  state->callback = std::move(callback);
  ClientRequest request;
  request.method = "GET";
  request.target = std::move(target);
  request.total_timeout = timeout;
  request.max_body_bytes = max_body_bytes;
  ResponseHandlers handlers;
  handlers.on_head = [state, max_body_bytes](const ResponseHead& head) {
    if (head.content_length) {
      uint64_t n = *head.content_length;
      if (max_body_bytes > 0) n = std::min<uint64_t>(n, max_body_bytes);
      state->body.reserve(static_cast<size_t>(n));
    }
  };
  handlers.on_body = [state](std::string_view data) { state->body.append(data); };
  handlers.on_complete = [state](const ClientResult& result) {
    auto callback = std::move(state->callback);
    if (callback) callback(result.status, std::move(state->body), result);
  };
  return impl_->request(std::move(request), std::move(handlers));
}

const Url& UpstreamPool::url() const {
  return impl_->url;
}

const PoolOptions& UpstreamPool::options() const {
  return impl_->options;
}

PoolStats UpstreamPool::stats() const {
  PoolStats s = impl_->stats;
  s.idle = impl_->idle.size();
  return s;
}

void UpstreamPool::close_idle() {
  for (auto& c : impl_->idle) {
    c->stop_idle_watch();
    c->close_socket();
  }
  impl_->idle.clear();
}

}  // namespace eta::http
