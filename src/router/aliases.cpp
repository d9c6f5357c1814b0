#include "router/aliases.hpp"

#include <set>

namespace eta::router {

bool validate_aliases(const std::vector<ModelAlias>& aliases, std::string& error) {
  std::set<std::string_view> names;
  std::set<std::string_view> served;
  for (size_t i = 0; i < aliases.size(); ++i) {
    const ModelAlias& a = aliases[i];
    const std::string where = "models[" + std::to_string(i) + "]";
    if (a.name.empty()) {
      error = where + " needs a name";
      return false;
    }
    if (a.served_names.empty()) {
      error = "model " + a.name + ": served_names must list at least one name";
      return false;
    }
    if (!names.insert(a.name).second) {
      error = "model " + a.name + " is listed twice in models";
      return false;
    }
    for (const std::string& s : a.served_names) {
      if (s.empty()) {
        error = "model " + a.name + ": a served name must not be empty";
        return false;
      }
      if (!served.insert(s).second) {
        error = "served name " + s +
                " appears twice in models (a replica's name belongs to one "
                "public name)";
        return false;
      }
    }
  }
  for (const ModelAlias& a : aliases) {
    for (const ModelAlias& b : aliases) {
      if (&a == &b) continue;
      for (const std::string& s : b.served_names) {
        if (s == a.name) {
          error = "model " + a.name + " is also a served name of model " + b.name;
          return false;
        }
      }
    }
  }
  return true;
}

const ModelAlias* find_alias(const std::vector<ModelAlias>& aliases, std::string_view model) {
  for (const ModelAlias& a : aliases)
    if (a.name == model) return &a;
  return nullptr;
}

const std::string* served_name_for(const std::vector<ModelAlias>& aliases, std::string_view model,
                                   const std::vector<std::string>& ids) {
  for (const std::string& id : ids)
    if (id == model) return &id;
  const ModelAlias* a = find_alias(aliases, model);
  if (a == nullptr) return nullptr;
  for (const std::string& s : a->served_names)
    for (const std::string& id : ids)
      if (id == s) return &s;
  return nullptr;
}

const std::string* public_name_of(const std::vector<ModelAlias>& aliases, std::string_view served) {
  for (const ModelAlias& a : aliases)
    for (const std::string& s : a.served_names)
      if (s == served) return &a.name;
  return nullptr;
}

void append_json_string(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (c < 0x20) {
      out += "\\u00";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    } else {
      out.push_back(ch);
    }
  }
  out.push_back('"');
}

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool read_hex4(std::string_view s, size_t at, unsigned& out) {
  if (at + 4 > s.size()) return false;
  out = 0;
  for (size_t i = 0; i < 4; ++i) {
    const int v = hex_value(s[at + i]);
    if (v < 0) return false;
    out = out * 16 + static_cast<unsigned>(v);
  }
  return true;
}

void append_utf8(std::string& out, unsigned cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool is_ws(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

}  // namespace

bool decode_json_string(std::string_view raw, std::string& out) {
  out.clear();
  for (size_t i = 0; i < raw.size(); ++i) {
    const char c = raw[i];
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    if (++i >= raw.size()) return false;
    switch (raw[i]) {
      case '"':
      case '\\':
      case '/':
        out.push_back(raw[i]);
        break;
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'u': {
        unsigned cp = 0;
        if (!read_hex4(raw, i + 1, cp)) return false;
        i += 4;
        if (cp >= 0xD800 && cp < 0xDC00) {  // a high surrogate: its low half must follow
          unsigned lo = 0;
          if (i + 2 >= raw.size() || raw[i + 1] != '\\' || raw[i + 2] != 'u' ||
              !read_hex4(raw, i + 3, lo) || lo < 0xDC00 || lo >= 0xE000)
            return false;
          i += 6;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp < 0xE000) {
          return false;
        }
        append_utf8(out, cp);
        break;
      }
      default:
        return false;
    }
  }
  return true;
}

void FieldRewriter::reset(std::string_view key, std::string_view from, std::string_view to,
                          bool top_level_only) {
  active_ = true;
  top_level_only_ = top_level_only;
  key_ = std::string(key);
  from_ = std::string(from);
  to_literal_.clear();
  append_json_string(to_literal_, to);
  // The longest raw spelling of a decoded byte is \uXXXX.
  max_key_raw_ = key_.size() * 6;
  max_value_raw_ = from_.size() * 6;
  state_ = State::kOut;
  escape_ = false;
  depth_ = 0;
  held_.clear();
  raw_start_ = 0;
  value_quote_ = 0;
  rewritten_ = 0;
}

void FieldRewriter::flush(std::string& out) {
  out += held_;
  held_.clear();
}

namespace {

// Bytes that end a run of pass-through bytes outside strings, and inside a string.
struct ByteClasses {
  bool out[256] = {};
  bool in_string[256] = {};
  constexpr ByteClasses() {
    for (const char c : {'"', '{', '[', '}', ']'}) out[static_cast<unsigned char>(c)] = true;
    for (const char c : {'"', '\\', '\n'}) in_string[static_cast<unsigned char>(c)] = true;
  }
};
constexpr ByteClasses kClasses;

}  // namespace

// Bytes not being matched are passed on in runs: data[pass, i) is appended when a run ends
// (a candidate string starts being held, or the input ends). While a candidate is held, every
// byte before i is in `out` or in held_, and pass == i.
void FieldRewriter::feed(std::string_view data, std::string& out) {
  if (!active_) {
    out.append(data);
    return;
  }
  const char* p = data.data();
  const size_t n = data.size();
  size_t pass = 0;
  size_t i = 0;
  auto uc = [](char c) { return static_cast<unsigned char>(c); };
  while (i < n) {
    switch (state_) {
      case State::kOut: {
        while (i < n && !kClasses.out[uc(p[i])]) ++i;
        if (i == n) break;
        const char ch = p[i];
        if (ch == '"') {
          escape_ = false;
          if (!top_level_only_ || depth_ == 1) {
            out.append(p + pass, i - pass);
            held_.assign(1, '"');
            raw_start_ = 1;
            plain_ = true;
            state_ = State::kKey;
            pass = ++i;
          } else {
            state_ = State::kString;
            ++i;
          }
          continue;
        }
        if (ch == '{' || ch == '[') {
          ++depth_;
        } else if (depth_ > 0) {
          --depth_;
        }
        ++i;
        continue;
      }
      case State::kString: {
        if (escape_) {
          escape_ = false;
          if (p[i] == '\n') state_ = State::kOut;
          ++i;
          continue;
        }
        while (i < n && !kClasses.in_string[uc(p[i])]) ++i;
        if (i == n) break;
        if (p[i] == '\\') {
          escape_ = true;
        } else {  // the closing quote, or a newline (not JSON: the string ends there)
          state_ = State::kOut;
        }
        ++i;
        continue;
      }
      case State::kKey:
      case State::kValue: {
        const char ch = p[i];
        if (ch == '\n') {  // not JSON: give up on this string; the newline passes
          flush(out);
          state_ = State::kOut;
          escape_ = false;
          continue;
        }
        const std::string& target = state_ == State::kKey ? key_ : from_;
        if (plain_ && !escape_ && ch != '\\' && ch != '"') {
          // No escape so far: the raw bytes must spell the target; stop holding at the first one
          // that does not (most strings are decided by their first byte).
          const size_t at = held_.size() - raw_start_;
          if (at >= target.size() || target[at] != ch) {
            flush(out);
            state_ = State::kString;  // ch passes from there
            continue;
          }
        }
        held_.push_back(ch);
        pass = ++i;
        if (escape_) {
          escape_ = false;
        } else if (ch == '\\') {
          escape_ = true;
          plain_ = false;
        } else if (ch == '"') {
          const std::string_view raw(held_.data() + raw_start_, held_.size() - raw_start_ - 1);
          bool match = false;
          if (plain_) {
            match = raw == target;
          } else {
            std::string decoded;
            match = decode_json_string(raw, decoded) && decoded == target;
          }
          if (match && state_ == State::kKey) {
            state_ = State::kAfterKey;
            continue;
          }
          if (match) {
            out.append(held_, 0, value_quote_);
            out += to_literal_;
            held_.clear();
            ++rewritten_;
          } else {
            flush(out);
          }
          state_ = State::kOut;
          continue;
        }
        const size_t limit = state_ == State::kKey ? max_key_raw_ : max_value_raw_;
        if (held_.size() - raw_start_ > limit) {  // too long to match: an ordinary string
          flush(out);
          state_ = State::kString;
        }
        continue;
      }
      case State::kAfterKey:
      case State::kAfterColon: {
        const char ch = p[i];
        if (is_ws(ch)) {
          held_.push_back(ch);
        } else if (ch == ':' && state_ == State::kAfterKey) {
          held_.push_back(ch);
          state_ = State::kAfterColon;
        } else if (ch == '"' && state_ == State::kAfterColon) {
          value_quote_ = held_.size();
          held_.push_back(ch);
          raw_start_ = held_.size();
          escape_ = false;
          plain_ = true;
          state_ = State::kValue;
        } else {  // the string was a value, or the member's value is not a string
          flush(out);
          state_ = State::kOut;  // ch is looked at again from there
          continue;
        }
        pass = ++i;
        continue;
      }
    }
  }
  if (state_ == State::kOut || state_ == State::kString) out.append(p + pass, n - pass);
}

void FieldRewriter::finish(std::string& out) {
  flush(out);
  state_ = State::kOut;
  escape_ = false;
}

std::string rewrite_field(std::string_view json, std::string_view key, std::string_view from,
                          std::string_view to, bool top_level_only) {
  FieldRewriter r;
  r.reset(key, from, to, top_level_only);
  std::string out;
  out.reserve(json.size() + to.size() + 8);
  r.feed(json, out);
  r.finish(out);
  return out;
}

}  // namespace eta::router
