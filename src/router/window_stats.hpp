// What one replica did over the last minute, for the dashboard and GET /admin/replicas: the TTFT
// of the requests it completed (p50/p99 over 60 s), and requests and output tokens per second
// (over the last 10 s). Pure; single-threaded like the rest of the router.
//
// Sixty one-second slots, each with a log-scale histogram of TTFT (8 bins per octave from
// 0.1 ms, so a quantile is within ±4.5 % of the exact value), and a running total of the slots
// in the window: recording is O(1), expiring a slot O(bins), a quantile O(bins). Memory is fixed
// (about 55 KB per replica) whatever the request rate.
#pragma once

#include <array>
#include <cstdint>

namespace eta::router {

class ReplicaWindow {
 public:
  static constexpr int kSlots = 60;                  // seconds of TTFT history
  static constexpr int kRateSlots = 10;              // seconds the rates average over
  static constexpr int kBinsPerOctave = 8;           //
  static constexpr double kMinTtftS = 1e-4;          // bin 0 holds everything below
  static constexpr int kBins = 27 * kBinsPerOctave;  // up to about 3.7 hours

  // `start`: when counting began (the rates are not diluted by time before it).
  explicit ReplicaWindow(double start = 0) : start_(start) {}

  // A request completed at time `t` (seconds, the owner's clock, non-decreasing) with
  // `output_tokens`; `ttft_s` is its time to first token, or NaN / negative if unknown (then it
  // counts for the rates only).
  void record(double t, double ttft_s, int output_tokens);
  // Moves the window to `t` (drops what is older than kSlots seconds). Queries below read the
  // window as of the last advance/record.
  void advance(double t);

  // q in [0, 1]: the TTFT quantile over the window (nearest rank, the bin's geometric middle);
  // NaN when no TTFT was recorded in the window.
  double ttft_quantile(double q) const;
  uint64_t ttft_samples() const { return total_ttft_; }
  // Completions and output tokens per second over the last kRateSlots seconds (or since start).
  double requests_per_s(double t) const;
  double tokens_per_s(double t) const;

  // The histogram bin of a TTFT and the value a bin reports (exposed for tests).
  static int bin_of(double ttft_s);
  static double bin_value(int bin);

 private:
  struct Slot {
    int64_t second = -1;  // which second it holds; -1: empty
    uint32_t requests = 0;
    uint64_t tokens = 0;
    uint32_t ttft_count = 0;
    std::array<uint32_t, kBins> ttft{};
  };
  void clear(Slot& s);
  double rate(double t, bool tokens) const;

  double start_;
  int64_t head_ = -1;  // newest second seen
  std::array<Slot, kSlots> slots_{};
  std::array<uint64_t, kBins> total_{};
  uint64_t total_ttft_ = 0;
};

}  // namespace eta::router
