// Seeded synthetic workload generators (parameters and defaults in docs/workloads.md).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "workload/random.hpp"
#include "workload/workload.hpp"

namespace eta::workload {

// A distribution of token counts, always clamped to [min, max] and at least 1.
struct LengthDist {
  enum class Kind { kFixed, kUniform, kLognormal };
  Kind kind = Kind::kLognormal;
  double mean = 256;  // kFixed: the value; kLognormal: the mean
  double cv = 0.5;    // kLognormal: std/mean
  int min = 1;        // kUniform: the range [min, max]; all kinds: the clamp
  int max = 1 << 20;

  static LengthDist fixed(int value);
  static LengthDist uniform(int lo, int hi);
  static LengthDist lognormal(double mean, double cv, int lo = 1, int hi = 1 << 20);
  int draw(Rng& rng) const;
};
const char* to_string(LengthDist::Kind kind);
bool parse_length_kind(std::string_view text, LengthDist::Kind& out);  // fixed|uniform|lognormal

struct GenerateOptions {
  bool compute_block_hashes = true;
  int block_size = kDefaultBlockSize;
};

// `synthetic`: independent requests with unique prompts; Poisson arrivals at `rate`.
struct SyntheticParams {
  int64_t n = 1000;
  double rate = 10;  // requests/s (Poisson); +inf: all at t = 0
  LengthDist input = LengthDist::lognormal(1024, 0.5, 1, 32768);
  LengthDist output = LengthDist::lognormal(256, 0.5, 1, 8192);
  uint64_t seed = 0;
};
Workload generate_synthetic(const SyntheticParams& p, const GenerateOptions& options = {});

// `shared-prefix`: k system prompts of L tokens; a fraction f of the requests starts with one of
// them (uniformly chosen) followed by a unique suffix; the others have a unique prompt of
// L + suffix tokens. Poisson arrivals at `rate`. Tags: "shared-<j>" / "unique".
struct SharedPrefixParams {
  int64_t n = 1000;
  double rate = 10;
  int k = 4;
  int prefix_tokens = 1024;      // L
  double shared_fraction = 0.8;  // f
  LengthDist suffix = LengthDist::lognormal(256, 0.5, 1, 32768);
  LengthDist output = LengthDist::lognormal(256, 0.5, 1, 8192);
  uint64_t seed = 0;
};
Workload generate_shared_prefix(const SharedPrefixParams& p, const GenerateOptions& options = {});

// `multi-turn`: conversations start as a Poisson process at `rate` conversations/s; each has
// turns in [turns_min, turns_max]; turn 0's prompt = system prompt (shared by every
// conversation, `system_tokens`, may be 0) + first user message; turn k+1's prompt = turn k's
// prompt + turn k's output text (engine::output_token_text(turn k's output_seed, i) for
// i < output_tokens) + a new user message. Turn k+1 arrives an exponential `gap_s` (mean) after
// turn k. A conversation ends early when the next prompt would exceed max_prompt_tokens.
// session_id "conv-<c>", turn = k, tag "turn-0" / "turn-n".
struct MultiTurnParams {
  int64_t conversations = 100;
  int turns_min = 3;
  int turns_max = 8;
  double rate = 1.0;  // conversations/s
  double gap_s = 8.0;
  int system_tokens = 256;
  LengthDist first_user = LengthDist::lognormal(512, 0.5, 1, 8192);
  LengthDist user = LengthDist::lognormal(128, 0.5, 1, 4096);
  LengthDist output = LengthDist::lognormal(256, 0.5, 1, 2048);
  int max_prompt_tokens = 32768;
  uint64_t seed = 0;
};
Workload generate_multi_turn(const MultiTurnParams& p, const GenerateOptions& options = {});

// `bursty-mix`: short requests (unique prompts) as a Poisson process at `rate` for `duration_s`,
// plus every `burst_every_s` (from `first_burst_s`) a burst of `burst_size` long-document
// requests spread uniformly over `burst_span_s`; each starts with one of `docs` documents of
// `doc_tokens` (uniformly chosen) followed by a short unique question. Output lengths vary
// widely (cv 1 by default), so queue length alone predicts finish times badly.
// Tags: "short" / "doc-<d>".
struct BurstyMixParams {
  double duration_s = 120;
  double rate = 8;  // short requests/s
  LengthDist short_input = LengthDist::lognormal(256, 0.5, 1, 4096);
  LengthDist short_output = LengthDist::lognormal(128, 1.0, 1, 2048);
  int docs = 3;
  int doc_tokens = 8192;
  LengthDist question = LengthDist::lognormal(64, 0.5, 1, 1024);
  LengthDist doc_output = LengthDist::lognormal(256, 1.0, 1, 2048);
  double burst_every_s = 20;
  double first_burst_s = 10;
  int burst_size = 12;
  double burst_span_s = 1.0;
  uint64_t seed = 0;
};
Workload generate_bursty_mix(const BurstyMixParams& p, const GenerateOptions& options = {});

}  // namespace eta::workload
