// Readers for request traces (docs/workloads.md):
//   - Azure LLM inference trace CSV: TIMESTAMP,ContextTokens,GeneratedTokens
//     (TIMESTAMP "2023-11-16 18:15:46.6805900" or plain seconds); prompts are distinct text.
//   - Mooncake JSONL: {"timestamp": ms, "input_length", "output_length", "hash_ids": [...]};
//     each hash id maps to a fixed block of 512 toy tokens, so equal ids give identical text.
// Arrivals are seconds relative to the first row. Errors are one line naming the file and line.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "workload/workload.hpp"

namespace eta::workload {

struct TraceOptions {
  bool compute_block_hashes = true;
  int block_size = kDefaultBlockSize;
  // Salt for the text of prompts that the trace does not describe (Azure rows, and the tail of
  // a Mooncake row whose input is longer than its hash ids cover). Mooncake hash-id blocks do
  // not depend on it: the same id always gives the same text.
  uint64_t seed = 0;
  int64_t max_requests = 0;  // 0: all rows
};

enum class TraceFormat { kAzureCsv, kMooncakeJsonl };

bool load_azure_csv(const std::string& path, const TraceOptions& options, Workload& out,
                    std::string& error);
bool load_mooncake_jsonl(const std::string& path, const TraceOptions& options, Workload& out,
                         std::string& error);
// Picks the format by extension (.csv / .jsonl / .json), else by the first non-blank byte
// ('{' -> JSONL, otherwise CSV).
bool load_trace_file(const std::string& path, const TraceOptions& options, Workload& out,
                     std::string& error);

// Seed of the 512-token text block for Mooncake hash id `hash_id`.
uint64_t mooncake_block_seed(uint64_t hash_id);
// The prompt segments for a Mooncake row: one 512-token block per hash id (the last one
// truncated so that the prompt has exactly input_length tokens), plus unique words seeded by
// `tail_seed` if input_length exceeds 512 * hash_ids.size().
std::vector<TextSegment> mooncake_prompt(const std::vector<uint64_t>& hash_ids, int input_length,
                                         uint64_t tail_seed);

// Parses "YYYY-MM-DD HH:MM:SS[.fraction]" (also 'T' for the space) into seconds since
// 1970-01-01 as whole seconds + nanoseconds; false if malformed.
bool parse_timestamp(std::string_view text, int64_t& seconds, int64_t& nanos);

}  // namespace eta::workload
