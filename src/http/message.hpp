// The plain types of an HTTP exchange, shared by the server (server.hpp), the client
// (client.hpp) and the router's pure core (src/router/core/), which relays between the two
// without any networking header: requests and responses as the server hands them over, the
// Exchange interface a handler answers through, and what an upstream request reports back.
// Standard library only; message.cpp holds the few out-of-line helpers (library eta_http_message).
#pragma once

#include <cctype>
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

namespace eta::openai {
struct Error;
}  // namespace eta::openai

namespace eta::http {

// ASCII case-insensitive equality (header names, tokens).
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

using Header = std::pair<std::string, std::string>;
using Headers = std::vector<Header>;

struct Request {
  std::string method;  // as sent, e.g. "GET"
  std::string target;  // path and query, e.g. "/v1/models?x=1"
  int version = 11;    // 10 or 11
  Headers headers;     // in arrival order, names as sent
  std::string body;
  bool keep_alive = true;

  std::string_view path() const;   // target up to '?'
  std::string_view query() const;  // after '?', or empty
  // Value of the first header with this name (case-insensitive), or empty.
  std::string_view header(std::string_view name) const;
  bool has_header(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  Headers headers;  // extra headers (not Content-Length, Transfer-Encoding or Connection)
};

// A JSON error response with vLLM's nested error body.
Response error_response(const openai::Error& error);
Response error_response(int status, std::string_view type, std::string message);

class Exchange {
 public:
  virtual ~Exchange() = default;

  virtual const Request& request() const = 0;
  Request& mutable_request() { return const_cast<Request&>(request()); }

  // (a) The whole response. No-op if a response was already started or the client is gone.
  virtual void respond(Response response) = 0;

  // (b) Streaming. start_stream sends the head; write sends one chunk (empty data is ignored);
  // end_stream finishes the response. Each returns false if the client is gone (or the call is
  // out of order), true otherwise.
  virtual bool start_stream(int status, std::string_view content_type,
                            const Headers& headers = {}) = 0;
  virtual bool write(std::string_view data) = 0;
  virtual bool end_stream() = 0;

  // (c) Client disconnect: see the header comment.
  virtual void on_disconnect(std::function<void()> callback) = 0;
  virtual bool disconnected() const = 0;
  // True once the response has been completely handed to the socket.
  virtual bool finished() const = 0;

  // Bytes accepted by write() that the socket has not yet taken.
  virtual size_t buffered_bytes() const = 0;
  // Runs fn on this exchange's connection executor (inline if already there).
  virtual void dispatch(std::function<void()> fn) = 0;
  // The client's address as "ip:port".
  virtual std::string remote_address() const = 0;
};

using ExchangePtr = std::shared_ptr<Exchange>;
// ---------------------------------------------------------------------------------------------
// Upstream requests (client.hpp's UpstreamPool sends them)

enum class ClientError : uint8_t {
  kOk,
  kConnectFailed,   // resolve failed, unreachable, or another connect error
  kConnectRefused,  // the upstream refused the connection (nothing listens there)
  kTimeout,         // connect, head, idle or total timeout
  kReset,           // the upstream closed or reset the connection before the response ended
  kProtocolError,   // the response is not valid HTTP/1.x
  kCanceled,        // RequestHandle::cancel()
  kTooLarge,        // response head or body over its limit
};
// "ok", "connect_failed", "connect_refused", "timeout", "reset", "protocol_error", "canceled",
// "too_large".
std::string_view to_string(ClientError error);

struct ClientResult {
  ClientError error = ClientError::kOk;
  bool connected = false;      // a connection to the upstream was established
  bool head_received = false;  // the response head had arrived (on_head was called)
  int status = 0;              // the response status, once its status line arrived
  std::string detail;          // one line for logs on error (empty when ok)

  bool ok() const { return error == ClientError::kOk; }
  // Whether a failed request may go to another replica is the router's retry policy's answer
  // (src/router/core/retry_policy.hpp), not the client's.
};

using HeaderView = std::pair<std::string_view, std::string_view>;

// The response head. The views point into the connection's buffers and are valid only during
// on_head: copy what must outlive it.
struct ResponseHead {
  int status = 0;
  int version = 11;  // 10 or 11
  bool keep_alive = true;
  bool chunked = false;
  std::optional<uint64_t> content_length;
  std::span<const HeaderView> headers;  // in arrival order, names as sent

  // Value of the first header with this name (case-insensitive), or empty.
  std::string_view header(std::string_view name) const;
};

struct ClientRequest {
  std::string method = "GET";
  // Path and query, e.g. "/v1/completions"; the pool's base path is put in front of it.
  std::string target = "/";
  // Extra headers. Host, Content-Length, Transfer-Encoding, Connection and Keep-Alive are the
  // client's own and are dropped from here.
  Headers headers;
  // The body, sent with Content-Length (also when empty for POST, PUT and PATCH). Either a view
  // whose bytes the caller keeps alive until on_complete, or bytes moved into body_storage, which
  // the client then owns: a non-empty body_storage is sent and body is ignored.
  std::string_view body;
  std::string body_storage;

  // Timeouts, 0 = none. "Request start" is the request() call (connecting included).
  std::chrono::milliseconds head_timeout{0};  // request start to response head
  // Longest time without a received byte, counted from when the request is written.
  std::chrono::milliseconds idle_timeout{0};
  std::chrono::milliseconds total_timeout{0};  // request start to the end of the response
  uint64_t max_body_bytes = 0;                 // 0 = unbounded; over it: kTooLarge
};

struct ResponseHandlers {
  // Each may be empty. Views passed to them are valid only during the call.
  std::function<void(const ResponseHead&)> on_head;
  std::function<void(std::string_view)> on_body;
  // Exactly once per request (unless the pool is destroyed first).
  std::function<void(const ClientResult&)> on_complete;
};

}  // namespace eta::http
