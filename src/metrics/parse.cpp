#include "metrics/parse.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <system_error>

namespace eta::metrics {

namespace {

// Character classes by table lookup: the scanning loops below are the parser's hot path.
constexpr uint8_t kNameStart = 1;  // [a-zA-Z_]
constexpr uint8_t kNameChar = 2;   // [a-zA-Z0-9_]
constexpr uint8_t kColon = 4;      // ':' (metric names only)

constexpr std::array<uint8_t, 256> make_char_classes() {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    t[c] = static_cast<uint8_t>((alpha ? kNameStart : 0) | (alpha || digit ? kNameChar : 0) |
                                (c == ':' ? kColon : 0));
  }
  return t;
}
constexpr std::array<uint8_t, 256> kCharClasses = make_char_classes();

bool has_class(char c, uint8_t cls) {
  return kCharClasses[static_cast<unsigned char>(c)] & cls;
}
bool is_blank(char c) {
  return c == ' ' || c == '\t';
}
bool is_name_start(char c) {
  return has_class(c, kNameStart);
}
bool is_name_char(char c) {
  return has_class(c, kNameChar);
}

// A printable, bounded excerpt of untrusted text for error messages.
std::string excerpt(std::string_view s) {
  constexpr size_t kMaxExcerpt = 40;
  std::string out;
  const size_t n = s.size() < kMaxExcerpt ? s.size() : kMaxExcerpt;
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  }
  if (s.size() > kMaxExcerpt) out += "...";
  return out;
}

// Parses a sample value: a float, NaN, +Inf, -Inf (any case, as Go's ParseFloat).
bool parse_value(std::string_view tok, double& v) {
  if (tok.empty()) return false;
  const char* first = tok.data();
  const char* last = tok.data() + tok.size();
  if (*first == '+') {
    ++first;
    if (first == last || *first == '-' || *first == '+') return false;
  }
  auto [ptr, ec] = std::from_chars(first, last, v);
  if (ec == std::errc::result_out_of_range) {
    // Overflow or underflow (rare): let strtod pick ±HUGE_VAL or the nearest tiny value, as Go's
    // ParseFloat does.
    if (ptr != last) return false;
    const std::string copy(tok);
    v = std::strtod(copy.c_str(), nullptr);
    return true;
  }
  return ec == std::errc{} && ptr == last;
}

bool parse_timestamp(std::string_view tok) {
  int64_t ts = 0;
  auto [ptr, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), ts);
  return ec == std::errc{} && ptr == tok.data() + tok.size() && !tok.empty();
}

bool is_known_type(std::string_view t) {
  return t == "counter" || t == "gauge" || t == "histogram" || t == "summary" || t == "untyped";
}

class Parser {
 public:
  Parser(ParsedMetrics& out, std::string& error, const ParseLimits& limits)
      : out_(out), error_(error), limits_(limits) {}

  bool parse(std::string_view text) {
    if (text.size() > limits_.max_bytes) {
      error_ = "metrics text is " + std::to_string(text.size()) + " bytes, over the limit of " +
               std::to_string(limits_.max_bytes);
      return false;
    }
    if (out_.samples.empty()) out_.samples.reserve(text.size() / 64 + 1);
    size_t start = 0;
    while (start < text.size()) {
      ++line_no_;
      const void* nl = std::memchr(text.data() + start, '\n', text.size() - start);
      const size_t end =
          nl ? static_cast<size_t>(static_cast<const char*>(nl) - text.data()) : text.size();
      std::string_view line = text.substr(start, end - start);
      start = end + 1;
      if (line.size() > limits_.max_line) {
        return fail("line is " + std::to_string(line.size()) + " bytes, over the limit of " +
                    std::to_string(limits_.max_line));
      }
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (!parse_line(line)) return false;
    }
    finish();
    return true;
  }

 private:
  // `out_` is parsed into in place: samples, label pairs and their strings from a previous parse
  // are overwritten rather than freed and reallocated, so a scraper that reuses one
  // ParsedMetrics per replica does almost no allocation in steady state.
  Sample& next_sample() {
    if (num_samples_ < out_.samples.size()) return out_.samples[num_samples_++];
    ++num_samples_;
    return out_.samples.emplace_back();
  }

  // Drops what is left over from the previous parse.
  void finish() {
    out_.samples.resize(num_samples_);
    std::sort(seen_types_.begin(), seen_types_.end());
    seen_types_.erase(std::unique(seen_types_.begin(), seen_types_.end()), seen_types_.end());
    if (seen_types_.size() == out_.types.size()) return;
    for (auto it = out_.types.begin(); it != out_.types.end();) {
      if (std::binary_search(seen_types_.begin(), seen_types_.end(), &it->first)) {
        ++it;
      } else {
        it = out_.types.erase(it);
      }
    }
  }

  bool fail(std::string_view what) {
    error_ = "metrics text line " + std::to_string(line_no_) + ": ";
    error_ += what;
    return false;
  }

  static size_t skip_blanks(std::string_view s, size_t i) {
    while (i < s.size() && is_blank(s[i])) ++i;
    return i;
  }

  bool parse_line(std::string_view line) {
    size_t i = skip_blanks(line, 0);
    if (i == line.size()) return true;  // blank line
    if (line[i] == '#') return parse_comment(line.substr(i + 1));
    return parse_sample(line, i);
  }

  bool parse_comment(std::string_view c) {
    size_t i = skip_blanks(c, 0);
    size_t j = i;
    while (j < c.size() && !is_blank(c[j])) ++j;
    const std::string_view keyword = c.substr(i, j - i);
    const bool is_type = keyword == "TYPE";
    if (!is_type && keyword != "HELP") return true;  // a plain comment
    i = skip_blanks(c, j);
    j = i;
    while (j < c.size() && !is_blank(c[j])) ++j;
    const std::string_view name = c.substr(i, j - i);
    if (!is_valid_metric_name(name)) {
      return fail(std::string(keyword) + " line with an invalid metric name \"" + excerpt(name) +
                  "\"");
    }
    if (!is_type) return true;  // HELP text is not kept
    i = skip_blanks(c, j);
    j = i;
    while (j < c.size() && !is_blank(c[j])) ++j;
    const std::string_view type = c.substr(i, j - i);
    if (skip_blanks(c, j) != c.size() || !is_known_type(type)) {
      return fail("TYPE line for " + std::string(name) + " has an invalid type \"" +
                  excerpt(c.substr(i)) + "\"");
    }
    key_scratch_.assign(name);
    auto it = out_.types.find(key_scratch_);
    if (it == out_.types.end()) {
      it = out_.types.emplace(key_scratch_, type).first;
    } else if (it->second != type) {
      it->second.assign(type);
    }
    seen_types_.push_back(&it->first);
    return true;
  }

  bool parse_sample(std::string_view line, size_t i) {
    const size_t name_start = i;
    if (!has_class(line[i], kNameStart | kColon)) {
      return fail("expected a metric name, got \"" + excerpt(line.substr(i)) + "\"");
    }
    while (i < line.size() && has_class(line[i], kNameChar | kColon)) ++i;
    if (num_samples_ >= limits_.max_samples) {
      return fail("more than " + std::to_string(limits_.max_samples) + " samples");
    }
    Sample& s = next_sample();
    s.name.assign(line.data() + name_start, i - name_start);
    const size_t after_name = i;
    i = skip_blanks(line, i);
    if (i < line.size() && line[i] == '{') {
      if (!parse_labels(line, i, s)) return false;
      i = skip_blanks(line, i);
    } else {
      s.labels.clear();
      if (i == after_name) {
        if (i == line.size()) return fail("missing value after metric name " + excerpt(s.name));
        return fail("unexpected character '" + excerpt(line.substr(i, 1)) + "' in metric name " +
                    excerpt(s.name));
      }
    }
    size_t j = i;
    while (j < line.size() && !is_blank(line[j])) ++j;
    const std::string_view value = line.substr(i, j - i);
    if (value.empty()) return fail("missing value for " + excerpt(s.name));
    if (!parse_value(value, s.value)) {
      return fail("invalid value \"" + excerpt(value) + "\" for " + excerpt(s.name));
    }
    i = skip_blanks(line, j);
    if (i == line.size()) return true;
    j = i;
    while (j < line.size() && !is_blank(line[j])) ++j;
    const std::string_view ts = line.substr(i, j - i);
    if (!parse_timestamp(ts)) {
      return fail("invalid timestamp \"" + excerpt(ts) + "\" for " + excerpt(s.name));
    }
    if (skip_blanks(line, j) != line.size()) {
      return fail("unexpected text after the timestamp: \"" + excerpt(line.substr(j)) + "\"");
    }
    return true;
  }

  // `i` points at '{'; on success it points just past the matching '}'.
  bool parse_labels(std::string_view line, size_t& i, Sample& s) {
    ++i;
    size_t n = 0;  // labels parsed so far; s.labels may hold more from the previous parse
    for (;;) {
      i = skip_blanks(line, i);
      if (i == line.size()) return fail("unterminated label set for " + excerpt(s.name));
      if (line[i] == '}') {
        ++i;
        s.labels.resize(n);
        return true;
      }
      const size_t key_start = i;
      if (!is_name_start(line[i])) {
        return fail("invalid label name at \"" + excerpt(line.substr(i)) + "\"");
      }
      while (i < line.size() && is_name_char(line[i])) ++i;
      const std::string_view key = line.substr(key_start, i - key_start);
      i = skip_blanks(line, i);
      if (i == line.size() || line[i] != '=') {
        return fail("expected '=' after label name " + excerpt(key));
      }
      i = skip_blanks(line, i + 1);
      if (i == line.size() || line[i] != '"') {
        return fail("expected '\"' to open the value of label " + excerpt(key));
      }
      ++i;
      if (n >= limits_.max_labels) {
        return fail("more than " + std::to_string(limits_.max_labels) + " labels on " +
                    excerpt(s.name));
      }
      for (size_t p = 0; p < n; ++p) {
        if (s.labels[p].first == key) {
          return fail("duplicate label " + excerpt(key) + " on " + excerpt(s.name));
        }
      }
      auto& [k, v] = n < s.labels.size() ? s.labels[n] : s.labels.emplace_back();
      ++n;
      k.assign(key);
      if (!parse_label_value(line, i, v, key)) return false;
      i = skip_blanks(line, i);
      if (i == line.size()) return fail("unterminated label set for " + excerpt(s.name));
      if (line[i] == ',') {
        ++i;
      } else if (line[i] != '}') {
        return fail("expected ',' or '}' after the value of label " + excerpt(key));
      }
    }
  }

  // `i` points just past the opening quote; on success just past the closing one.
  bool parse_label_value(std::string_view line, size_t& i, std::string& v, std::string_view key) {
    // Fast path: no escapes before the first quote.
    const char* begin = line.data() + i;
    const char* quote = static_cast<const char*>(std::memchr(begin, '"', line.size() - i));
    const size_t scan = quote ? static_cast<size_t>(quote - begin) : line.size() - i;
    const char* backslash = static_cast<const char*>(std::memchr(begin, '\\', scan));
    if (!backslash) {
      if (!quote) return fail("unterminated value of label " + excerpt(key));
      v.assign(begin, scan);
      i += scan + 1;
      return true;
    }
    size_t j = i + static_cast<size_t>(backslash - begin);
    v.assign(begin, j - i);
    for (; j < line.size(); ++j) {
      const char c = line[j];
      if (c == '"') {
        i = j + 1;
        return true;
      }
      if (c != '\\') {
        v += c;
        continue;
      }
      if (++j == line.size()) break;
      switch (line[j]) {
        case '\\':
          v += '\\';
          break;
        case '"':
          v += '"';
          break;
        case 'n':
          v += '\n';
          break;
        default:
          return fail("invalid escape sequence '\\" + excerpt(line.substr(j, 1)) +
                      "' in the value of label " + excerpt(key));
      }
    }
    return fail("unterminated value of label " + excerpt(key));
  }

  ParsedMetrics& out_;
  std::string& error_;
  const ParseLimits& limits_;
  size_t line_no_ = 0;
  size_t num_samples_ = 0;
  std::string key_scratch_;
  std::vector<const std::string*> seen_types_;
};

bool labels_match(const Labels& labels, const Labels& match) {
  for (const auto& [mk, mv] : match) {
    bool found = false;
    for (const auto& [k, v] : labels) {
      if (k == mk) {
        found = v == mv;
        break;
      }
    }
    if (!found) return false;
  }
  return true;
}

}  // namespace

const std::string* Sample::label(std::string_view key) const {
  for (const auto& [k, v] : labels) {
    if (k == key) return &v;
  }
  return nullptr;
}

const Sample* ParsedMetrics::find(std::string_view name, const Labels& match) const {
  for (const auto& s : samples) {
    if (s.name == name && labels_match(s.labels, match)) return &s;
  }
  return nullptr;
}

std::optional<double> ParsedMetrics::value(std::string_view name, const Labels& match) const {
  const Sample* s = find(name, match);
  if (!s) return std::nullopt;
  return s->value;
}

double ParsedMetrics::sum(std::string_view name, const Labels& match) const {
  double total = 0;
  for (const auto& s : samples) {
    if (s.name == name && labels_match(s.labels, match)) total += s.value;
  }
  return total;
}

bool parse_text(std::string_view text, ParsedMetrics& out, std::string& error,
                const ParseLimits& limits) {
  error.clear();
  bool ok = false;
  try {
    ok = Parser(out, error, limits).parse(text);
  } catch (const std::bad_alloc&) {
    error = "out of memory while parsing metrics text";
    ok = false;
  }
  if (!ok) {
    out.samples.clear();
    out.types.clear();
  }
  return ok;
}

}  // namespace eta::metrics
