#include "router/window_stats.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace eta::router {

int ReplicaWindow::bin_of(double ttft_s) {
  if (!(ttft_s > kMinTtftS)) return 0;
  const double b = std::floor(std::log2(ttft_s / kMinTtftS) * kBinsPerOctave);
  if (!(b < kBins - 1)) return kBins - 1;
  return static_cast<int>(b);
}

double ReplicaWindow::bin_value(int bin) {
  return kMinTtftS * std::exp2((bin + 0.5) / kBinsPerOctave);
}

void ReplicaWindow::clear(Slot& s) {
  if (s.ttft_count > 0) {
    for (int i = 0; i < kBins; ++i) total_[i] -= s.ttft[i];
    total_ttft_ -= s.ttft_count;
    s.ttft.fill(0);
  }
  s.second = -1;
  s.requests = 0;
  s.tokens = 0;
  s.ttft_count = 0;
}

void ReplicaWindow::advance(double t) {
  const int64_t sec = static_cast<int64_t>(std::floor(t));
  if (sec <= head_) return;
  // The slots of the seconds from head_+1 to sec (at most all kSlots of them) are reused: what
  // they held is older than the window.
  const int64_t from = std::max(head_ + 1, sec - kSlots + 1);
  for (int64_t s = from; s <= sec; ++s) {
    Slot& slot = slots_[static_cast<size_t>(s % kSlots)];
    if (slot.second != -1) clear(slot);
    slot.second = s;
  }
  head_ = sec;
}

void ReplicaWindow::record(double t, double ttft_s, int output_tokens) {
  advance(t);
  if (head_ < 0) return;  // t < 0: before the clock started
  const int64_t sec = std::max<int64_t>(static_cast<int64_t>(std::floor(t)), head_ - kSlots + 1);
  Slot& slot = slots_[static_cast<size_t>(sec % kSlots)];
  slot.requests += 1;
  if (output_tokens > 0) slot.tokens += static_cast<uint64_t>(output_tokens);
  if (std::isfinite(ttft_s) && ttft_s >= 0) {
    const int b = bin_of(ttft_s);
    slot.ttft[static_cast<size_t>(b)] += 1;
    slot.ttft_count += 1;
    total_[static_cast<size_t>(b)] += 1;
    total_ttft_ += 1;
  }
}

double ReplicaWindow::ttft_quantile(double q) const {
  if (total_ttft_ == 0) return std::numeric_limits<double>::quiet_NaN();
  q = std::clamp(q, 0.0, 1.0);
  // Nearest rank: the smallest value with at least ceil(q * n) samples at or below it.
  const uint64_t rank =
      std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(total_ttft_))));
  uint64_t seen = 0;
  for (int i = 0; i < kBins; ++i) {
    seen += total_[static_cast<size_t>(i)];
    if (seen >= rank) return bin_value(i);
  }
  return bin_value(kBins - 1);
}

double ReplicaWindow::rate(double t, bool tokens) const {
  if (head_ < 0) return 0;
  uint64_t sum = 0;
  for (int64_t s = head_ - kRateSlots + 1; s <= head_; ++s) {
    if (s < 0) continue;
    const Slot& slot = slots_[static_cast<size_t>(s % kSlots)];
    if (slot.second != s) continue;
    sum += tokens ? slot.tokens : slot.requests;
  }
  // The slots cover [head - 9, t): between 9 and 10 s, less right after the start.
  double span = static_cast<double>(kRateSlots - 1) + (t - static_cast<double>(head_));
  span = std::min(span, t - start_);
  if (!(span > 0)) return 0;
  return static_cast<double>(sum) / std::max(span, 1.0);
}

double ReplicaWindow::requests_per_s(double t) const {
  return rate(t, false);
}

double ReplicaWindow::tokens_per_s(double t) const {
  return rate(t, true);
}

}  // namespace eta::router
