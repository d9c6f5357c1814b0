#include "router/headers.hpp"

#include <array>

namespace eta::router {

namespace {

constexpr std::array<std::string_view, 9> kHopByHop = {"connection",
                                                       "keep-alive",
                                                       "proxy-connection",
                                                       "proxy-authenticate",
                                                       "proxy-authorization",
                                                       "te",
                                                       "trailer",
                                                       "transfer-encoding",
                                                       "upgrade"};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// True if `name` is listed in a Connection header value ("close, x-foo").
bool named_in(std::string_view connection, std::string_view name) {
  while (!connection.empty()) {
    const size_t comma = connection.find(',');
    if (iequals(trim(connection.substr(0, comma)), name)) return true;
    if (comma == std::string_view::npos) break;
    connection.remove_prefix(comma + 1);
  }
  return false;
}

template <typename Range>
std::string_view connection_value(const Range& headers) {
  for (const auto& [k, v] : headers)
    if (iequals(k, "connection")) return v;
  return {};
}

}  // namespace

bool is_hop_by_hop(std::string_view name) {
  for (std::string_view h : kHopByHop)
    if (iequals(name, h)) return true;
  return false;
}

bool is_eta_header(std::string_view name) {
  return name.size() >= 6 && iequals(name.substr(0, 6), "x-eta-");
}

void forward_request_headers(const http::Headers& in, http::Headers& out) {
  const std::string_view connection = connection_value(in);
  for (const auto& [k, v] : in) {
    if (is_hop_by_hop(k) || is_eta_header(k) || iequals(k, "host") ||
        iequals(k, "content-length") || (!connection.empty() && named_in(connection, k))) {
      continue;
    }
    out.emplace_back(k, v);
  }
}

void set_upstream_authorization(http::Headers& headers, bool router_has_keys,
                                std::string_view upstream_key) {
  if (!router_has_keys && upstream_key.empty()) return;  // the client's own goes through
  std::erase_if(headers, [](const auto& h) { return iequals(h.first, "authorization"); });
  if (!upstream_key.empty())
    headers.emplace_back("Authorization", "Bearer " + std::string(upstream_key));
}

void relay_response_headers(const http::ResponseHead& head, http::Headers& out,
                            std::string& content_type) {
  const std::string_view connection = connection_value(head.headers);
  for (const auto& [k, v] : head.headers) {
    if (iequals(k, "content-type")) {
      content_type.assign(v);
      continue;
    }
    if (is_hop_by_hop(k) || is_eta_header(k) || iequals(k, "content-length") ||
        (!connection.empty() && named_in(connection, k))) {
      continue;
    }
    out.emplace_back(std::string(k), std::string(v));
  }
}

std::string_view bearer_token(std::string_view authorization) {
  authorization = trim(authorization);
  if (authorization.size() < 7 || !iequals(authorization.substr(0, 7), "bearer ")) return {};
  return trim(authorization.substr(7));
}

std::string_view cookie_value(std::string_view cookie_header, std::string_view name) {
  while (!cookie_header.empty()) {
    const size_t semi = cookie_header.find(';');
    const std::string_view pair = trim(cookie_header.substr(0, semi));
    cookie_header = semi == std::string_view::npos ? "" : cookie_header.substr(semi + 1);
    const size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) return pair.substr(eq + 1);
  }
  return {};
}

std::string_view query_value(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? "" : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) return pair.substr(eq + 1);
  }
  return {};
}

bool same_secret(std::string_view token, std::string_view key) {
  if (token.size() != key.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < key.size(); ++i) diff |= static_cast<unsigned char>(token[i] ^ key[i]);
  return diff == 0;
}

}  // namespace eta::router
