// A small HTTP/1.1 server on Boost.Beast/Asio, shared by `eta vllm-sim` and `eta route`.
// This header is free of Beast and Asio (only a forward declaration of asio::io_context), so
// code that includes it compiles fast; everything networked lives in server.cpp.
//
// Model
//   - Server listens on host:port (port 0 picks a free port; port() tells which) and accepts
//     connections on the io_context it is given. Every request that parses is handed to the
//     Handler as an Exchange: one request and its one response. Paths and methods mean nothing to
//     the server: the handler answers 404/405 itself (Routes below does that).
//   - Connections are HTTP/1.1 keep-alive (HTTP/1.0 and "Connection: close" close after the
//     response). The next request on a connection is read only once the current response has
//     been written completely; requests are answered strictly in order.
//   - Limits, answered by the server with vLLM's nested error body (openai::error_body) and then
//     closing the connection: request head over max_header_bytes -> 431; body over
//     max_body_bytes -> 413; unparsable request -> 400 (including Content-Length together with
//     Transfer-Encoding, and Content-Length sent twice or as a list, even with equal values:
//     request smuggling); a request whose head and body are not fully received within
//     request_timeout (a slow client) -> 408. A connection idle longer than idle_timeout (5 s,
//     uvicorn's keep-alive default) is closed without an answer. A write that makes no progress for
//     write_timeout, or a streaming client more than max_buffered_bytes behind, closes the
//     connection (the exchange then reports a disconnect).
//
// Threading
//   The server and every connection run on one io_context. If that io_context is run by one
//   thread (as in `eta vllm-sim`), all callbacks run on that thread and Exchange methods may be
//   called directly from anything else running on it. If it is run by several threads, each
//   connection runs on its own strand: call Exchange methods only from that strand, e.g. through
//   Exchange::dispatch(). Exchange objects are not thread-safe.
//
// Answering
//   (a) respond(Response): a complete response with Content-Length.
//   (b) start_stream(status, content_type): sends the head at once with chunked transfer
//       encoding (for HTTP/1.0 clients: no length, the connection closes at the end); then
//       write(bytes) sends one chunk per call, as soon as the socket accepts it (TCP_NODELAY is
//       on; chunks written while a previous write is in flight go out together right after it);
//       end_stream() writes the last chunk. Each write copies the bytes into a reused buffer:
//       no allocation per chunk once the buffers have grown.
//   (c) on_disconnect(callback): called at most once, on the connection's executor, as soon as
//       the client closes or resets the connection (detected by a read that sees EOF while the
//       response is pending), a write fails, or a timeout closes it, if that happens before the
//       response is complete. It is never called after the response is complete, nor after the
//       Server is stopped. After a disconnect every method is a harmless no-op.
//   An Exchange that is dropped (last shared_ptr released) without a complete response closes
//   the connection, so a forgotten request never hangs a client.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/message.hpp"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace eta::http {

namespace detail {
struct ServerImpl;
}  // namespace detail

using Handler = std::function<void(ExchangePtr)>;

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0: any free port
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 32u << 20;
  std::chrono::milliseconds idle_timeout{5000};
  std::chrono::milliseconds request_timeout{30000};
  std::chrono::milliseconds write_timeout{30000};
  size_t max_buffered_bytes = 16u << 20;
  int backlog = 1024;
  // SO_REUSEPORT: several servers (one per thread, each on its own io_context) listen on the
  // same host:port and the kernel spreads the connections among them (`eta route --threads`).
  bool reuse_port = false;
  // TLS (both set): the listener speaks TLS (1.2 or later) with this PEM certificate chain and
  // key. Each TLS connection is decrypted by a front in server.cpp and relayed byte for byte to
  // a plain listener on 127.0.0.1 that serves it as any other connection (remote_address() then
  // shows that loopback hop). The handshake must finish within request_timeout.
  std::string tls_cert_file;
  std::string tls_key_file;
};

class Server {
 public:
  Server(boost::asio::io_context& io, ServerOptions options, Handler handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens. Returns false and sets `error` to one line on failure.
  bool listen(std::string& error);
  // The bound port (after listen()).
  uint16_t port() const;
  const ServerOptions& options() const;
  // Starts accepting connections (after listen()).
  void start();
  // Closes the listening socket (new connections are refused); open connections go on
  // (graceful shutdown: let in-flight exchanges finish, then stop()).
  void stop_accepting();
  // Stops accepting and closes every connection; pending exchanges become no-ops and their
  // disconnect callbacks are not called.
  void stop();
  size_t num_connections() const;

 private:
  std::shared_ptr<detail::ServerImpl> impl_;
};

// An io_context run by one background thread, for tests and tools that want a server without
// touching Asio themselves. The thread starts in the constructor and is joined by stop() or the
// destructor.
class IoThread {
 public:
  IoThread();
  ~IoThread();
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;
  boost::asio::io_context& io();
  // Runs fn on the io thread and waits for it to finish.
  void run_sync(const std::function<void()>& fn);
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Dispatch by exact path and method. Unknown path -> 404, known path with another method -> 405
// (with an Allow header), both with vLLM's nested error body.
class Routes {
 public:
  void add(std::string_view method, std::string path, Handler handler);
  // Serves the exchange; returns false if it answered 404/405 itself.
  bool dispatch(const ExchangePtr& exchange) const;
  Handler handler() const;

 private:
  struct Route {
    std::string path;
    std::vector<std::pair<std::string, Handler>> methods;
  };
  std::vector<Route> routes_;
};

}  // namespace eta::http
