#include "workload/arrivals.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <limits>

#include "workload/random.hpp"

namespace eta::workload {

const char* to_string(ArrivalKind kind) {
  switch (kind) {
    case ArrivalKind::kTrace:
      return "trace";
    case ArrivalKind::kPoisson:
      return "poisson";
    case ArrivalKind::kGamma:
      return "gamma";
    case ArrivalKind::kConstant:
      return "constant";
  }
  return "?";
}

bool parse_arrival_spec(std::string_view text, ArrivalSpec& out, std::string& error) {
  ArrivalSpec spec = out;
  const std::size_t colon = text.find(':');
  const std::string_view name = text.substr(0, colon);
  if (name == "trace") {
    spec.kind = ArrivalKind::kTrace;
  } else if (name == "poisson") {
    spec.kind = ArrivalKind::kPoisson;
  } else if (name == "gamma") {
    spec.kind = ArrivalKind::kGamma;
  } else if (name == "constant") {
    spec.kind = ArrivalKind::kConstant;
  } else {
    error = fmt::format("unknown arrival process '{}' (trace|poisson|gamma|constant)", name);
    return false;
  }
  std::string_view rest = colon == std::string_view::npos ? "" : text.substr(colon + 1);
  while (!rest.empty()) {
    const std::size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? "" : rest.substr(comma + 1);
    const std::size_t eq = item.find('=');
    const std::string_view key = item.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? "" : item.substr(eq + 1);
    if (key == "cv") {
      double v = 0;
      const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      if (ec != std::errc() || p != value.data() + value.size() || !(v > 0)) {
        error = fmt::format("arrival process '{}': cv must be a number > 0, got '{}'", text, value);
        return false;
      }
      spec.cv = v;
    } else if (key == "seed") {
      uint64_t v = 0;
      const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      if (ec != std::errc() || p != value.data() + value.size()) {
        error = fmt::format("arrival process '{}': bad seed '{}'", text, value);
        return false;
      }
      spec.seed = v;
    } else {
      error = fmt::format("arrival process '{}': unknown parameter '{}' (cv, seed)", text, key);
      return false;
    }
  }
  out = spec;
  return true;
}

std::vector<double> draw_arrivals(std::size_t n, const ArrivalSpec& spec) {
  std::vector<double> times;
  if (spec.kind == ArrivalKind::kTrace || n == 0) return times;
  times.reserve(n);
  if (std::isinf(spec.rate)) {
    times.assign(n, 0.0);
    return times;
  }
  const double mean_gap = 1.0 / spec.rate;
  Rng rng(derive_seed(0x417272697661ull, spec.seed));  // "Arriva"
  const double shape = 1.0 / (spec.cv * spec.cv);
  double t = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0) {
      switch (spec.kind) {
        case ArrivalKind::kPoisson:
          t += rng.exponential(mean_gap);
          break;
        case ArrivalKind::kGamma:
          t += rng.gamma(shape, mean_gap / shape);
          break;
        case ArrivalKind::kConstant:
          t = mean_gap * static_cast<double>(i);
          break;
        case ArrivalKind::kTrace:
          break;
      }
    }
    times.push_back(t);
  }
  return times;
}

bool apply_arrivals(Workload& w, const ArrivalSpec& spec, std::string& error) {
  if (spec.kind != ArrivalKind::kTrace && !(spec.rate > 0)) {
    error = fmt::format("arrival process '{}' needs a rate > 0 (got {})", to_string(spec.kind),
                        spec.rate);
    return false;
  }
  if (spec.kind == ArrivalKind::kGamma && !(spec.cv > 0)) {
    error = fmt::format("gamma arrivals need cv > 0 (got {})", spec.cv);
    return false;
  }
  if (spec.rate < 0 || std::isnan(spec.rate)) {
    error = fmt::format("rate must be >= 0 (got {})", spec.rate);
    return false;
  }
  auto& reqs = w.requests;
  if (reqs.empty()) return true;
  if (spec.kind == ArrivalKind::kTrace) {
    const double first = reqs.front().arrival_s;
    for (auto& r : reqs) r.arrival_s -= first;
    if (spec.rate > 0) {
      const double span = reqs.back().arrival_s;
      if (std::isinf(spec.rate)) {
        for (auto& r : reqs) r.arrival_s = 0;
      } else if (reqs.size() > 1 && span > 0) {
        const double mean_gap = span / static_cast<double>(reqs.size() - 1);
        const double factor = (1.0 / spec.rate) / mean_gap;
        for (auto& r : reqs) r.arrival_s *= factor;
      }
    }
    return true;
  }
  const std::vector<double> times = draw_arrivals(reqs.size(), spec);
  for (std::size_t i = 0; i < reqs.size(); ++i) reqs[i].arrival_s = times[i];
  return true;
}

void truncate(Workload& w, std::optional<int64_t> max_requests,
              std::optional<double> max_duration_s) {
  auto& reqs = w.requests;
  if (max_requests && *max_requests > 0 && static_cast<int64_t>(reqs.size()) > *max_requests) {
    reqs.resize(static_cast<std::size_t>(*max_requests));
  }
  if (max_duration_s && *max_duration_s > 0) {
    std::size_t keep = 0;
    while (keep < reqs.size() && reqs[keep].arrival_s < *max_duration_s) ++keep;
    reqs.resize(keep);
  }
}

}  // namespace eta::workload
