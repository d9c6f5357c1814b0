// Arrival processes: keep a workload's own times (optionally scaled to a target mean rate), or
// re-draw them (Poisson, gamma with a given CV, constant spacing), seeded. Plus truncation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "workload/workload.hpp"

namespace eta::workload {

enum class ArrivalKind {
  kTrace,     // keep the workload's times; with rate > 0, scale them so the mean rate is `rate`
  kPoisson,   // exponential gaps with mean 1/rate
  kGamma,     // gamma gaps with mean 1/rate and coefficient of variation `cv`
  kConstant,  // gaps of exactly 1/rate
};
const char* to_string(ArrivalKind kind);

struct ArrivalSpec {
  ArrivalKind kind = ArrivalKind::kTrace;
  // Mean rate in requests/s. kTrace: 0 keeps the times as they are. Other kinds: must be > 0;
  // +infinity sends everything at t = 0 (like `vllm bench serve --request-rate inf`).
  double rate = 0;
  double cv = 1.0;  // kGamma only: shape = 1/cv^2 (vllm bench serve's burstiness = 1/cv^2)
  uint64_t seed = 0;
};

// Parses "trace", "poisson", "gamma", "constant", each optionally followed by ":cv=2" (gamma)
// or ":seed=N"; e.g. "gamma:cv=2". The rate comes separately (--rate).
bool parse_arrival_spec(std::string_view text, ArrivalSpec& out, std::string& error);

// `n` arrival times starting at 0 (the first request is sent at once, as vllm bench serve does)
// for kPoisson / kGamma / kConstant. Returns empty for kTrace.
std::vector<double> draw_arrivals(std::size_t n, const ArrivalSpec& spec);

// Applies the process to `w` in request order (re-drawn times keep the requests' order, so
// the turns of a multi-turn conversation stay in order). kTrace with rate > 0 multiplies every
// time by (mean gap)/(1/rate), where mean gap = (last - first)/(n-1). Returns false with an
// error for a bad spec (non-positive rate for a drawn process, cv <= 0).
bool apply_arrivals(Workload& w, const ArrivalSpec& spec, std::string& error);

// Keeps the first `max_requests` requests (if set, > 0) and those arriving before
// `max_duration_s` (if set, > 0).
void truncate(Workload& w, std::optional<int64_t> max_requests,
              std::optional<double> max_duration_s);

}  // namespace eta::workload
