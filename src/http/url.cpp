// Upstream URLs (see url.hpp). Pure: no networking headers.
#include "http/url.hpp"

#include <charconv>
#include <cstdio>

#include "http/message.hpp"  // iequals

namespace eta::http {

namespace {

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

void append_number(std::string& out, uint64_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, static_cast<size_t>(end - buf));
}

}  // namespace

std::string Url::authority() const {
  std::string out;
  bool v6 = host.find(':') != std::string::npos;
  if (v6) out += '[';
  out += host;
  if (v6) out += ']';
  out += ':';
  append_number(out, port);
  return out;
}

std::string Url::str() const {
  return (tls ? "https://" : "http://") + authority() + base_path;
}

std::optional<Url> parse_url(std::string_view text, std::string* error) {
  auto fail = [&](std::string_view reason) -> std::optional<Url> {
    if (error != nullptr) {
      *error = "bad URL '";
      for (char c : text) {  // keep the message on one line
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(c));
          error->append(buf);
        } else {
          error->push_back(c);
        }
      }
      error->append("': ");
      error->append(reason);
    }
    return std::nullopt;
  };
  for (char c : text) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      return fail("contains whitespace or control characters");
  }
  const bool tls = starts_with_nocase(text, "https://");
  if (!tls && !starts_with_nocase(text, "http://")) {
    return fail("expected http://host:port[/path] or https://host:port[/path]");
  }
  std::string_view rest = text.substr(tls ? 8 : 7);
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  if (authority.empty()) return fail("missing host");
  if (authority.find('@') != std::string_view::npos) return fail("user info is not supported");
  if (authority.find_first_of("?#") != std::string_view::npos ||
      path.find_first_of("?#") != std::string_view::npos)
    return fail("query and fragment are not allowed");

  std::string_view host;
  std::string_view port_text;
  bool has_port = false;
  if (authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return fail("unterminated '[' in IPv6 address");
    host = authority.substr(1, close - 1);
    std::string_view tail = authority.substr(close + 1);
    if (!tail.empty()) {
      if (tail.front() != ':') return fail("unexpected characters after ']'");
      port_text = tail.substr(1);
      has_port = true;
    }
    if (host.empty() ||
        host.find_first_not_of("0123456789abcdefABCDEF:.") != std::string_view::npos)
      return fail("bad IPv6 address");
  } else {
    size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      has_port = true;
      if (port_text.find(':') != std::string_view::npos)
        return fail("IPv6 addresses must be in brackets, e.g. http://[::1]:8000");
    }
    if (host.empty()) return fail("missing host");
    for (char c : host) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '.' || c == '_';
      if (!ok) return fail("bad character in host");
    }
  }

  Url url;
  url.host = std::string(host);
  url.tls = tls;
  if (tls) url.port = 443;
  if (has_port) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (port_text.empty()) return fail("missing port after ':'");
    if (ec != std::errc{} || end != port_text.data() + port_text.size() || value == 0 ||
        value > 65535)
      return fail("bad port '" + std::string(port_text) + "' (expected 1-65535)");
    url.port = static_cast<uint16_t>(value);
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  url.base_path = std::string(path);
  return url;
}

}  // namespace eta::http
