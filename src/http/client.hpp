// HTTP/1.1 client for upstreams (vLLM replicas), shared by `eta route` (forwarding, SSE relay,
// /metrics scrapes, health checks) and `eta bench` (load generation). Like server.hpp, this
// header is free of Beast and Asio (only a forward declaration of asio::io_context); everything
// networked lives in client.cpp.
//
// Model
//   - An UpstreamPool talks to one upstream (a Url). request() sends one request on a pooled
//     keep-alive connection (or a new one) and reports the response through ResponseHandlers as
//     it arrives: on_head once, on_body for every piece of the body as the socket delivers it,
//     on_complete exactly once. There is no limit on concurrent requests: each in-flight request
//     has its own connection (HTTP/1.1, no pipelining).
//   - Reuse: a connection goes back to the pool only after a response that was read completely,
//     with keep-alive, the request fully written, and no stray bytes after it. Anything else
//     (errors, timeouts, cancel, "Connection: close", a close-delimited body) closes it. At most
//     max_idle_connections idle connections are kept, most recently used first; an idle
//     connection that the server closes (or that sends anything) is dropped at once, and one
//     idle longer than idle_keepalive is not reused. If a reused connection turns out to be
//     dead (EOF/reset before any response byte), the request is sent once more on a new
//     connection, transparently.
//   - Sockets have TCP_NODELAY. Host names are resolved once per pool and cached (IP literals
//     need no resolver); a failed connect clears the cache.
//   - https:// upstreams: each connection does a TLS (1.2+) handshake after connecting, with the
//     pool's TlsClientContext (PoolOptions::tls; without one, the system's CA store and
//     verification). Verification checks the chain and the URL's host (a DNS name, or an IP
//     literal against the certificate's IP SANs); SNI carries the host name. A failed handshake
//     is kConnectFailed (retryable: nothing was sent) with the reason in detail, e.g. "TLS
//     handshake with 127.0.0.1:8443 failed: certificate verify failed (unable to get local issuer
//     certificate)". Everything else (reuse, timeouts, body delivery) is as for http.
//
// Body delivery (latency)
//   One async_read_some per socket arrival into a reused per-connection buffer; Beast's
//   basic_parser (subclassed, no body type) decodes the framing in place and on_body receives
//   string_views into that buffer: for Content-Length and close-delimited bodies the bytes as
//   read, for chunked bodies the decoded chunk data (one call per chunk piece; a chunk that
//   arrived whole in one read is one call). Nothing is accumulated or copied before on_body,
//   and there is no heap allocation per read or per chunk once the buffer has grown. A server
//   that writes one SSE event per chunk, with pauses between events, produces one on_body call
//   per event.
//
// Errors
//   ClientResult::error says what went wrong, head_received whether the response head had
//   arrived. Before the head (connect refused/failed, a timeout, a reset or close) nothing of the
//   response reached the caller; whether the request goes to another replica is the router's
//   retry policy's answer (src/router/core/retry_policy.hpp). Timeouts (0 = none): connect
//   (PoolOptions), time to head, idle gap between received bytes, and total time (ClientRequest).
//   max_body_bytes bounds the body (kTooLarge), and max_header_bytes the head (kTooLarge).
//
// Threading and callbacks
//   A pool and its connections live on one io_context that the caller runs, from one thread
//   (one io_context per thread). Call every method, including RequestHandle::cancel() and the
//   destructor, from that thread. Callbacks run on it too, and are never invoked from inside
//   request(), get() or cancel(): they always come later from the io_context.
//   Destroying the pool closes every connection; requests still in flight then end silently
//   (no more callbacks), so owners of callbacks may go away together with the pool.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/message.hpp"
#include "http/server.hpp"
#include "http/tls_options.hpp"  // TlsClientOptions
#include "http/url.hpp"          // Url, parse_url

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace eta::http {

namespace detail {
struct PoolImpl;
class ClientConnection;
}  // namespace detail

class TlsClientContext;  // an OpenSSL context, shared by the connections of one or more pools
// Loads the files; nullptr with one line in `error` ("TLS CA file ca.pem: no such file ...").
std::shared_ptr<TlsClientContext> make_tls_client_context(const TlsClientOptions& options,
                                                          std::string& error);

// Refers to one request. Copyable; default-constructed or finished handles do nothing.
class RequestHandle {
 public:
  RequestHandle() = default;
  // Aborts the request at once: the upstream connection is closed (the upstream sees the
  // disconnect), no further on_head/on_body calls happen, and on_complete(kCanceled) follows from
  // the io_context. No-op if the request already completed.
  void cancel();
  // True until the request completes or is canceled.
  bool active() const;

 private:
  friend struct detail::PoolImpl;
  RequestHandle(std::weak_ptr<detail::ClientConnection> conn, uint64_t id)
      : conn_(std::move(conn)), id_(id) {}
  std::weak_ptr<detail::ClientConnection> conn_;
  uint64_t id_ = 0;
};

struct PoolOptions {
  std::chrono::milliseconds connect_timeout{2000};  // 0 = none
  // Idle keep-alive connections kept for reuse. A load generator with many streams in flight
  // wants this near its concurrency, or finished connections are closed and new ones opened.
  size_t max_idle_connections = 64;
  // An idle connection older than this is closed instead of reused (uvicorn closes idle
  // keep-alive connections after 5 s).
  std::chrono::milliseconds idle_keepalive{4000};
  size_t max_header_bytes = 64 * 1024;   // response head limit
  size_t read_buffer_bytes = 16 * 1024;  // bytes asked of each socket read
  // https:// only: the TLS context (null: the system's CA store, verification on).
  std::shared_ptr<TlsClientContext> tls;
};

struct PoolStats {
  uint64_t requests = 0;            // request() calls
  uint64_t connections_opened = 0;  // successful connects
  uint64_t reused = 0;              // requests sent on a pooled connection
  uint64_t retried = 0;             // requests resent after a pooled connection proved dead
  size_t idle = 0;                  // idle connections now
  size_t active = 0;                // requests in flight now
};

class UpstreamPool {
 public:
  UpstreamPool(boost::asio::io_context& io, Url url, PoolOptions options = {});
  ~UpstreamPool();
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  // Starts a request; see the header comment. Callbacks come later, from the io_context.
  RequestHandle request(ClientRequest request, ResponseHandlers handlers);

  // Convenience for scrapes and health checks: GET base_path + target, body collected up to
  // max_body_bytes (0 = unbounded; over it: kTooLarge), whole exchange within timeout (0 =
  // none). The callback gets the status (0 if none arrived), the body, and the result.
  using GetCallback = std::function<void(int status, std::string body, const ClientResult&)>;
  RequestHandle get(std::string target, size_t max_body_bytes, std::chrono::milliseconds timeout,
                    GetCallback callback);

  const Url& url() const;
  const PoolOptions& options() const;
  PoolStats stats() const;
  // Closes every idle connection.
  void close_idle();

 private:
  std::shared_ptr<detail::PoolImpl> impl_;
};

}  // namespace eta::http
