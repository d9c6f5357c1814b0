// Header handling of the proxy (pure): which client headers are forwarded upstream and which
// upstream headers are relayed back. Hop-by-hop headers (RFC 9110 §7.6.1: Connection, Keep-Alive,
// Proxy-Connection, Proxy-Authenticate, Proxy-Authorization, TE, Trailer, Transfer-Encoding,
// Upgrade, and every header the Connection header names) are never forwarded; neither are Host
// and Content-Length (the client sets its own) nor any `x-eta-*` header (the router's own
// namespace: a client cannot forge x-eta-replica, and upstream x-eta-* headers are replaced by
// the router's).
#pragma once

#include <string>
#include <string_view>

#include "http/message.hpp"

namespace eta::router {

using http::iequals;  // case-insensitive ASCII comparison
bool is_hop_by_hop(std::string_view name);
bool is_eta_header(std::string_view name);  // x-eta-*

// The client's headers to send upstream (appended to `out`).
void forward_request_headers(const http::Headers& in, http::Headers& out);

// Upstream auth (dropin), on headers already forwarded: when the router checks its own client
// keys (`router_has_keys`) the client's Authorization is never sent on; with an `upstream_key`
// it is replaced by "Authorization: Bearer <upstream_key>"; otherwise it goes through unchanged.
void set_upstream_authorization(http::Headers& headers, bool router_has_keys,
                                std::string_view upstream_key);

// The upstream response's headers to relay (appended to `out`), with Content-Type returned
// separately in `content_type` (the server writes it itself); Content-Length is dropped too.
void relay_response_headers(const http::ResponseHead& head, http::Headers& out,
                            std::string& content_type);

// The token of "Authorization: Bearer <token>", or empty.
std::string_view bearer_token(std::string_view authorization);
// Equality of a presented secret with a key, in time that does not depend on their content.
bool same_secret(std::string_view token, std::string_view key);

// The value of cookie `name` in a Cookie header ("a=1; b=2"), or empty.
std::string_view cookie_value(std::string_view cookie_header, std::string_view name);

// The value of `name` in a query string ("a=1&b=2", not percent-decoded), or empty.
std::string_view query_value(std::string_view query, std::string_view name);

}  // namespace eta::router
