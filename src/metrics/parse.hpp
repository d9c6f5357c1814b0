// A parser for the Prometheus text exposition format, bounded in what it accepts: used by the
// router's scraper (on text from replicas it does not trust) and by tests.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "metrics/registry.hpp"

namespace eta::metrics {

struct Sample {
  std::string name;  // full sample name, e.g. "vllm:prompt_tokens_total", "x_bucket"
  Labels labels;     // in text order
  double value = 0;

  const std::string* label(std::string_view key) const;
};

struct ParseLimits {
  size_t max_bytes = 8u << 20;  // text longer than this is rejected
  size_t max_samples = 200000;
  size_t max_line = 64u << 10;
  size_t max_labels = 64;
};

struct ParsedMetrics {
  std::vector<Sample> samples;
  std::map<std::string, std::string> types;  // family name -> "counter" | "gauge" | ...

  // First sample with this exact name whose labels include every (key, value) in `match`.
  const Sample* find(std::string_view name, const Labels& match = {}) const;
  std::optional<double> value(std::string_view name, const Labels& match = {}) const;
  // Sum of every sample with this exact name whose labels include `match`.
  double sum(std::string_view name, const Labels& match = {}) const;
};

// Returns false and sets `error` (one line with the line number) on malformed input or when a
// limit is exceeded. Comments other than # TYPE / # HELP are ignored; timestamps are accepted and
// dropped. `out` is cleared first, and left empty on failure. Never throws.
//
// Accepted grammar (text format 0.0.4, as Prometheus' own parser): blank lines; `# TYPE name
// type` (counter|gauge|histogram|summary|untyped, recorded in `types` under the name as written,
// so a counter's TYPE is under "x_total"); `# HELP name text` (checked, not kept); other `#`
// comments; samples `name[{label="value",...[,]}] value [timestamp]`, with blanks or tabs
// between tokens, label values escaped with \\, \" and \n, values as floats, NaN, +Inf, -Inf.
// Lines may end in \r\n. Duplicate label names in one sample are rejected.
bool parse_text(std::string_view text, ParsedMetrics& out, std::string& error,
                const ParseLimits& limits = {});

}  // namespace eta::metrics
