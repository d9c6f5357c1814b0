// Upstream base URLs (http[s]://host[:port][/base]): parsing and the canonical form. Pure (no
// networking headers), so configuration loading (src/router/core/) can check replica URLs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace eta::http {

// An upstream base URL: http[s]://host[:port][/base].
struct Url {
  std::string host;  // name or IP literal (IPv6 without brackets)
  uint16_t port = 80;
  std::string base_path;  // "" or "/base" (no trailing '/'); prefixed to every request target
  bool tls = false;       // https://

  // "host:port" as sent in the Host header (IPv6 in brackets).
  std::string authority() const;
  // Canonical form, e.g. "http://127.0.0.1:8000/base", "https://h:443".
  std::string str() const;
};

// Parses "http[s]://host[:port][/base]" (port defaults to 80, 443 for https; a trailing '/' is
// dropped). On failure returns nullopt and, if error is given, sets it to one line: "bad URL
// '<text>': <reason>".
std::optional<Url> parse_url(std::string_view text, std::string* error = nullptr);

}  // namespace eta::http
