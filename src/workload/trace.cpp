#include "workload/trace.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "workload/random.hpp"

namespace eta::workload {

namespace {

constexpr uint64_t kAzureTextDomain = 0x417a757265ull;      // "Azure"
constexpr uint64_t kMooncakeBlockDomain = 0x4d6f6f6e63ull;  // "Moonc"
constexpr uint64_t kMooncakeTailDomain = 0x4d6f6f6e54ull;   // "MoonT"

bool read_file(const std::string& path, std::string& out, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = fmt::format("{}: cannot open: {}", path, std::strerror(errno));
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    error = fmt::format("{}: read error", path);
    return false;
  }
  out = std::move(ss).str();
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '"')) {
    s.remove_prefix(1);
  }
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '"')) {
    s.remove_suffix(1);
  }
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool parse_int(std::string_view s, int64_t& out) {
  s = trim(s);
  if (s.empty()) return false;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool parse_double(std::string_view s, double& out) {
  s = trim(s);
  if (s.empty()) return false;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool parse_fixed_int(std::string_view s, std::size_t pos, std::size_t len, int64_t& out) {
  if (pos + len > s.size()) return false;
  out = 0;
  for (std::size_t i = pos; i < pos + len; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

// A time as whole seconds + nanoseconds, so that differences keep the trace's 100 ns digits.
struct Instant {
  int64_t seconds = 0;
  int64_t nanos = 0;
};

double seconds_between(const Instant& from, const Instant& to) {
  return static_cast<double>(to.seconds - from.seconds) +
         static_cast<double>(to.nanos - from.nanos) * 1e-9;
}

bool parse_time_field(std::string_view s, Instant& out) {
  s = trim(s);
  if (parse_timestamp(s, out.seconds, out.nanos)) return true;
  double v = 0;
  if (!parse_double(s, v) || !std::isfinite(v)) return false;
  out.seconds = static_cast<int64_t>(std::floor(v));
  out.nanos = static_cast<int64_t>(std::llround((v - std::floor(v)) * 1e9));
  return true;
}

void split_csv(std::string_view line, std::vector<std::string_view>& fields) {
  fields.clear();
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = line.find(',', start);
    if (comma == std::string_view::npos) {
      fields.push_back(line.substr(start));
      return;
    }
    fields.push_back(line.substr(start, comma - start));
    start = comma + 1;
  }
}

struct Row {
  Instant time;
  int64_t input = 0;
  int64_t output = 0;
  std::vector<uint64_t> hash_ids;
};

void build_workload(std::vector<Row>& rows, const std::string& name, const TraceOptions& options,
                    bool mooncake, Workload& out) {
  Workload w;
  w.name = name;
  w.block_size = options.block_size;
  w.has_block_hashes = options.compute_block_hashes;
  w.requests.reserve(rows.size());
  Instant first = rows.empty() ? Instant{} : rows.front().time;
  for (const Row& row : rows) {
    if (row.time.seconds < first.seconds ||
        (row.time.seconds == first.seconds && row.time.nanos < first.nanos)) {
      first = row.time;
    }
  }
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Row& row = rows[i];
    WorkloadRequest r;
    r.index = static_cast<int64_t>(i);
    r.arrival_s = seconds_between(first, row.time);
    r.output_tokens = static_cast<int>(std::max<int64_t>(row.output, 1));
    const int input = static_cast<int>(std::max<int64_t>(row.input, 1));
    const uint64_t row_seed = derive_seed(mooncake ? kMooncakeTailDomain : kAzureTextDomain,
                                          derive_seed(options.seed, i));
    if (mooncake) {
      r.prompt = mooncake_prompt(row.hash_ids, input, row_seed);
    } else {
      r.prompt.push_back(TextSegment::words(row_seed, input));
    }
    r.output_seed = derive_seed(row_seed, 0x6f7574ull);
    finalize_request(r, options.compute_block_hashes, options.block_size);
    w.requests.push_back(std::move(r));
  }
  sort_by_arrival(w);
  out = std::move(w);
}

std::string base_name(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  const std::size_t dot = name.find_last_of('.');
  if (dot != std::string::npos && dot > 0) name.resize(dot);
  return name;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

bool parse_timestamp(std::string_view text, int64_t& seconds, int64_t& nanos) {
  const std::string_view s = trim(text);
  int64_t y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (s.size() < 19 || !parse_fixed_int(s, 0, 4, y) || s[4] != '-' ||
      !parse_fixed_int(s, 5, 2, mo) || s[7] != '-' || !parse_fixed_int(s, 8, 2, d) ||
      (s[10] != ' ' && s[10] != 'T') || !parse_fixed_int(s, 11, 2, h) || s[13] != ':' ||
      !parse_fixed_int(s, 14, 2, mi) || s[16] != ':' || !parse_fixed_int(s, 17, 2, sec)) {
    return false;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return false;
  int64_t frac = 0;
  std::size_t pos = 19;
  if (pos < s.size()) {
    if (s[pos] != '.') return false;
    ++pos;
    if (pos == s.size()) return false;
    int digits = 0;
    for (; pos < s.size(); ++pos) {
      if (s[pos] < '0' || s[pos] > '9') return false;
      if (digits < 9) {
        frac = frac * 10 + (s[pos] - '0');
        ++digits;
      }
    }
    for (; digits < 9; ++digits) frac *= 10;
  }
  seconds = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
  nanos = frac;
  return true;
}

uint64_t mooncake_block_seed(uint64_t hash_id) {
  return derive_seed(kMooncakeBlockDomain, hash_id);
}

std::vector<TextSegment> mooncake_prompt(const std::vector<uint64_t>& hash_ids, int input_length,
                                         uint64_t tail_seed) {
  std::vector<TextSegment> segments;
  segments.reserve(hash_ids.size() + 1);
  int remaining = input_length;
  for (uint64_t id : hash_ids) {
    if (remaining <= 0) break;
    const int take = std::min(remaining, kMooncakeBlockTokens);
    segments.push_back(TextSegment::words(mooncake_block_seed(id), take));
    remaining -= take;
  }
  if (remaining > 0) segments.push_back(TextSegment::words(tail_seed, remaining));
  return segments;
}

bool load_azure_csv(const std::string& path, const TraceOptions& options, Workload& out,
                    std::string& error) {
  std::string data;
  if (!read_file(path, data, error)) return false;
  std::vector<Row> rows;
  std::vector<std::string_view> fields;
  int time_col = 0, input_col = 1, output_col = 2;
  std::size_t needed = 3;
  std::size_t pos = 0;
  int64_t line_no = 0;
  bool first_line = true;
  while (pos < data.size()) {
    std::size_t end = data.find('\n', pos);
    if (end == std::string::npos) end = data.size();
    std::string_view line(data.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (trim(line).empty() || line.front() == '#') continue;
    split_csv(line, fields);
    if (first_line) {
      first_line = false;
      Instant probe;
      if (!parse_time_field(fields[0], probe)) {
        // A header: find the columns by name.
        time_col = input_col = output_col = -1;
        for (std::size_t i = 0; i < fields.size(); ++i) {
          const std::string name = lower(trim(fields[i]));
          const int col = static_cast<int>(i);
          if (name == "timestamp" || name == "time" || name == "arrival_s") time_col = col;
          if (name == "contexttokens" || name == "input_length" || name == "prompt_tokens" ||
              name == "input_tokens") {
            input_col = col;
          }
          if (name == "generatedtokens" || name == "output_length" || name == "output_tokens") {
            output_col = col;
          }
        }
        const char* missing = time_col < 0     ? "TIMESTAMP"
                              : input_col < 0  ? "ContextTokens"
                              : output_col < 0 ? "GeneratedTokens"
                                               : nullptr;
        if (missing != nullptr) {
          error = fmt::format(
              "{}:{}: header has no {} column (expected "
              "TIMESTAMP,ContextTokens,GeneratedTokens)",
              path, line_no, missing);
          return false;
        }
        needed = static_cast<std::size_t>(std::max({time_col, input_col, output_col}) + 1);
        continue;
      }
    }
    if (fields.size() < needed) {
      error = fmt::format("{}:{}: expected {} comma-separated fields, got {}", path, line_no,
                          needed, fields.size());
      return false;
    }
    Row row;
    if (!parse_time_field(fields[static_cast<std::size_t>(time_col)], row.time)) {
      error = fmt::format("{}:{}: bad timestamp '{}'", path, line_no,
                          trim(fields[static_cast<std::size_t>(time_col)]));
      return false;
    }
    if (!parse_int(fields[static_cast<std::size_t>(input_col)], row.input) || row.input < 0 ||
        row.input > (1 << 24)) {
      error = fmt::format("{}:{}: bad context token count '{}'", path, line_no,
                          trim(fields[static_cast<std::size_t>(input_col)]));
      return false;
    }
    if (!parse_int(fields[static_cast<std::size_t>(output_col)], row.output) || row.output < 0 ||
        row.output > (1 << 24)) {
      error = fmt::format("{}:{}: bad generated token count '{}'", path, line_no,
                          trim(fields[static_cast<std::size_t>(output_col)]));
      return false;
    }
    rows.push_back(std::move(row));
    if (options.max_requests > 0 && static_cast<int64_t>(rows.size()) >= options.max_requests) {
      break;
    }
  }
  if (rows.empty()) {
    error = fmt::format("{}: no requests", path);
    return false;
  }
  build_workload(rows, base_name(path), options, false, out);
  return true;
}

bool load_mooncake_jsonl(const std::string& path, const TraceOptions& options, Workload& out,
                         std::string& error) {
  simdjson::padded_string data;
  if (auto ec = simdjson::padded_string::load(path).get(data); ec) {
    error = fmt::format("{}: cannot read: {}", path, simdjson::error_message(ec));
    return false;
  }
  simdjson::dom::parser parser;
  std::vector<Row> rows;
  const char* base = data.data();
  const std::size_t size = data.size();
  std::size_t pos = 0;
  int64_t line_no = 0;
  while (pos < size) {
    const char* nl = static_cast<const char*>(std::memchr(base + pos, '\n', size - pos));
    const std::size_t end = nl ? static_cast<std::size_t>(nl - base) : size;
    const std::size_t len = end - pos;
    const std::size_t start = pos;
    pos = end + 1;
    ++line_no;
    if (trim(std::string_view(base + start, len)).empty()) continue;
    // The line lies inside the padded buffer, so the padding simdjson reads past it exists.
    simdjson::dom::element doc;
    if (auto ec = parser.parse(base + start, len, false).get(doc); ec) {
      error = fmt::format("{}:{}: malformed JSON: {}", path, line_no, simdjson::error_message(ec));
      return false;
    }
    Row row;
    double ts_ms = 0;
    if (doc["timestamp"].get_double().get(ts_ms) || !std::isfinite(ts_ms)) {
      error = fmt::format("{}:{}: missing or non-numeric \"timestamp\" (ms)", path, line_no);
      return false;
    }
    const double ts_s = ts_ms / 1000.0;
    row.time.seconds = static_cast<int64_t>(std::floor(ts_s));
    row.time.nanos = static_cast<int64_t>(std::llround((ts_s - std::floor(ts_s)) * 1e9));
    if (doc["input_length"].get_int64().get(row.input) || row.input < 0 || row.input > (1 << 24)) {
      error = fmt::format("{}:{}: missing or bad \"input_length\"", path, line_no);
      return false;
    }
    if (doc["output_length"].get_int64().get(row.output) || row.output < 0 ||
        row.output > (1 << 24)) {
      error = fmt::format("{}:{}: missing or bad \"output_length\"", path, line_no);
      return false;
    }
    simdjson::dom::element ids;
    if (doc["hash_ids"].get(ids) == simdjson::SUCCESS) {
      simdjson::dom::array arr;
      if (ids.get_array().get(arr)) {
        error = fmt::format("{}:{}: \"hash_ids\" is not an array", path, line_no);
        return false;
      }
      row.hash_ids.reserve(arr.size());
      for (simdjson::dom::element id : arr) {
        uint64_t v = 0;
        if (id.get_uint64().get(v)) {
          error = fmt::format("{}:{}: \"hash_ids\" holds a non-integer", path, line_no);
          return false;
        }
        row.hash_ids.push_back(v);
      }
    }
    rows.push_back(std::move(row));
    if (options.max_requests > 0 && static_cast<int64_t>(rows.size()) >= options.max_requests) {
      break;
    }
  }
  if (rows.empty()) {
    error = fmt::format("{}: no requests", path);
    return false;
  }
  build_workload(rows, base_name(path), options, true, out);
  return true;
}

bool load_trace_file(const std::string& path, const TraceOptions& options, Workload& out,
                     std::string& error) {
  const std::string lname = lower(path);
  if (ends_with(lname, ".csv")) return load_azure_csv(path, options, out, error);
  if (ends_with(lname, ".jsonl") || ends_with(lname, ".json")) {
    return load_mooncake_jsonl(path, options, out, error);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = fmt::format("{}: cannot open: {}", path, std::strerror(errno));
    return false;
  }
  char c = 0;
  while (in.get(c)) {
    if (!std::isspace(static_cast<unsigned char>(c))) break;
  }
  if (c == '{') return load_mooncake_jsonl(path, options, out, error);
  return load_azure_csv(path, options, out, error);
}

}  // namespace eta::workload
