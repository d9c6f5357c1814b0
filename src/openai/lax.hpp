// pydantic's lax integer, shared by the simulator's strict request rules (src/openai/request.cpp,
// which adds vLLM's error text when it fails) and the router's lenient extractor
// (src/openai/extract.cpp). simdjson DOM only: no networking headers.
#pragma once

#include <simdjson.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string_view>

namespace eta::openai {

// 16, 16.0, "16", " +16 ", true (1) and false (0), as pydantic's lax int accepts them; nullopt
// for anything else (a fraction, a string that is not an integer, a value beyond int64).
inline std::optional<int64_t> lax_int(simdjson::dom::element v) {
  using simdjson::dom::element_type;
  switch (v.type()) {
    case element_type::INT64:
      return v.get_int64().value_unsafe();
    case element_type::DOUBLE: {
      const double d = v.get_double().value_unsafe();
      if (std::trunc(d) == d && std::fabs(d) < 9.2e18) return static_cast<int64_t>(d);
      return std::nullopt;
    }
    case element_type::BOOL:
      return v.get_bool().value_unsafe() ? 1 : 0;
    case element_type::STRING: {
      std::string_view s = v.get_string().value_unsafe();
      while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
      while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
      const char* b = s.data();
      const char* e = s.data() + s.size();
      if (!s.empty() && *b == '+') ++b;
      int64_t out = 0;
      const auto r = std::from_chars(b, e, out);
      if (!s.empty() && r.ec == std::errc() && r.ptr == e) return out;
      return std::nullopt;
    }
    default:  // UINT64 (beyond int64), null, arrays, objects
      return std::nullopt;
  }
}

}  // namespace eta::openai
