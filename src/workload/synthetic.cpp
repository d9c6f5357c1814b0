#include "workload/synthetic.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace eta::workload {

namespace {

// Independent streams of one generator.
enum Stream : uint64_t {
  kArrivals = 1,
  kLengths = 2,
  kText = 3,
  kChoice = 4,
  kOutputSeeds = 5,
  kBursts = 6,
};

Rng stream(uint64_t seed, Stream s) {
  return Rng(derive_seed(seed, s));
}
uint64_t text_seed(uint64_t seed, uint64_t a, uint64_t b = 0) {
  return derive_seed(derive_seed(derive_seed(seed, kText), a), b);
}

double next_gap(Rng& rng, double rate) {
  if (std::isinf(rate)) return 0;
  return rng.exponential(1.0 / rate);
}

void finish(Workload& w, const GenerateOptions& options) {
  w.block_size = options.block_size;
  w.has_block_hashes = options.compute_block_hashes;
  for (WorkloadRequest& r : w.requests) {
    finalize_request(r, options.compute_block_hashes, options.block_size);
  }
  sort_by_arrival(w);
}

}  // namespace

LengthDist LengthDist::fixed(int value) {
  LengthDist d;
  d.kind = Kind::kFixed;
  d.mean = value;
  d.cv = 0;
  return d;
}

LengthDist LengthDist::uniform(int lo, int hi) {
  LengthDist d;
  d.kind = Kind::kUniform;
  d.min = lo;
  d.max = hi;
  d.mean = 0.5 * (lo + hi);
  return d;
}

LengthDist LengthDist::lognormal(double mean, double cv, int lo, int hi) {
  LengthDist d;
  d.kind = Kind::kLognormal;
  d.mean = mean;
  d.cv = cv;
  d.min = lo;
  d.max = hi;
  return d;
}

int LengthDist::draw(Rng& rng) const {
  const int lo = std::max(min, 1);
  const int hi = std::max(max, lo);
  double v = 0;
  switch (kind) {
    case Kind::kFixed:
      v = mean;
      break;
    case Kind::kUniform:
      v = static_cast<double>(rng.uniform_int(lo, hi));
      break;
    case Kind::kLognormal:
      v = rng.lognormal_mean_cv(mean, cv);
      break;
  }
  if (!(v == v)) v = lo;
  return static_cast<int>(
      std::clamp(std::llround(v), static_cast<long long>(lo), static_cast<long long>(hi)));
}

const char* to_string(LengthDist::Kind kind) {
  switch (kind) {
    case LengthDist::Kind::kFixed:
      return "fixed";
    case LengthDist::Kind::kUniform:
      return "uniform";
    case LengthDist::Kind::kLognormal:
      return "lognormal";
  }
  return "?";
}

bool parse_length_kind(std::string_view text, LengthDist::Kind& out) {
  if (text == "fixed") {
    out = LengthDist::Kind::kFixed;
  } else if (text == "uniform") {
    out = LengthDist::Kind::kUniform;
  } else if (text == "lognormal") {
    out = LengthDist::Kind::kLognormal;
  } else {
    return false;
  }
  return true;
}

Workload generate_synthetic(const SyntheticParams& p, const GenerateOptions& options) {
  Workload w;
  w.name = "synthetic";
  Rng arrivals = stream(p.seed, kArrivals);
  Rng lengths = stream(p.seed, kLengths);
  double t = 0;
  for (int64_t i = 0; i < p.n; ++i) {
    if (i > 0) t += next_gap(arrivals, p.rate);
    WorkloadRequest r;
    r.arrival_s = t;
    const int input = p.input.draw(lengths);
    r.output_tokens = p.output.draw(lengths);
    r.prompt.push_back(TextSegment::words(text_seed(p.seed, static_cast<uint64_t>(i)), input));
    r.output_seed = derive_seed(derive_seed(p.seed, kOutputSeeds), static_cast<uint64_t>(i));
    w.requests.push_back(std::move(r));
  }
  finish(w, options);
  return w;
}

Workload generate_shared_prefix(const SharedPrefixParams& p, const GenerateOptions& options) {
  Workload w;
  w.name = "shared-prefix";
  Rng arrivals = stream(p.seed, kArrivals);
  Rng lengths = stream(p.seed, kLengths);
  Rng choice = stream(p.seed, kChoice);
  const int k = std::max(p.k, 1);
  double t = 0;
  for (int64_t i = 0; i < p.n; ++i) {
    if (i > 0) t += next_gap(arrivals, p.rate);
    WorkloadRequest r;
    r.arrival_s = t;
    const int suffix = p.suffix.draw(lengths);
    r.output_tokens = p.output.draw(lengths);
    const bool shared = choice.bernoulli(p.shared_fraction);
    const int which = static_cast<int>(choice.uniform_int(0, k - 1));
    const uint64_t unique = text_seed(p.seed, 1, static_cast<uint64_t>(i));
    if (shared && p.prefix_tokens > 0) {
      r.prompt.push_back(
          TextSegment::words(text_seed(p.seed, 0, static_cast<uint64_t>(which)), p.prefix_tokens));
      r.prompt.push_back(TextSegment::words(unique, suffix));
      r.tag = fmt::format("shared-{}", which);
    } else {
      r.prompt.push_back(TextSegment::words(unique, std::max(p.prefix_tokens, 0) + suffix));
      r.tag = "unique";
    }
    r.output_seed = derive_seed(derive_seed(p.seed, kOutputSeeds), static_cast<uint64_t>(i));
    w.requests.push_back(std::move(r));
  }
  finish(w, options);
  return w;
}

Workload generate_multi_turn(const MultiTurnParams& p, const GenerateOptions& options) {
  Workload w;
  w.name = "multi-turn";
  Rng arrivals = stream(p.seed, kArrivals);
  Rng lengths = stream(p.seed, kLengths);
  Rng choice = stream(p.seed, kChoice);
  const int turns_min = std::max(p.turns_min, 1);
  const int turns_max = std::max(p.turns_max, turns_min);
  const TextSegment system = TextSegment::words(text_seed(p.seed, 0, 0), p.system_tokens);
  double start = 0;
  for (int64_t c = 0; c < p.conversations; ++c) {
    if (c > 0) start += next_gap(arrivals, p.rate);
    const int turns = static_cast<int>(choice.uniform_int(turns_min, turns_max));
    std::vector<TextSegment> prompt;
    int prompt_tokens = 0;
    if (p.system_tokens > 0) {
      prompt.push_back(system);
      prompt_tokens += system.tokens;
    }
    double t = start;
    for (int k = 0; k < turns; ++k) {
      const int user = (k == 0 ? p.first_user : p.user).draw(lengths);
      const int output = p.output.draw(lengths);
      if (k > 0) t += p.gap_s > 0 ? arrivals.exponential(p.gap_s) : 0.0;
      if (prompt_tokens + user > p.max_prompt_tokens && k > 0) break;
      prompt.push_back(
          TextSegment::words(text_seed(p.seed, 1 + static_cast<uint64_t>(c), k), user));
      prompt_tokens += user;
      WorkloadRequest r;
      r.arrival_s = t;
      r.prompt = prompt;
      r.output_tokens = output;
      r.session_id = fmt::format("conv-{}", c);
      r.turn = k;
      r.tag = k == 0 ? "turn-0" : "turn-n";
      r.output_seed =
          derive_seed(derive_seed(derive_seed(p.seed, kOutputSeeds), c), static_cast<uint64_t>(k));
      // The next turn's prompt continues with this turn's answer.
      prompt.push_back(TextSegment::output(r.output_seed, output));
      prompt_tokens += output;
      w.requests.push_back(std::move(r));
    }
  }
  finish(w, options);
  return w;
}

Workload generate_bursty_mix(const BurstyMixParams& p, const GenerateOptions& options) {
  Workload w;
  w.name = "bursty-mix";
  Rng arrivals = stream(p.seed, kArrivals);
  Rng lengths = stream(p.seed, kLengths);
  Rng bursts = stream(p.seed, kBursts);
  uint64_t counter = 0;
  const uint64_t out_base = derive_seed(p.seed, kOutputSeeds);
  if (p.rate > 0 && !std::isinf(p.rate)) {
    for (double t = 0; t < p.duration_s; t += arrivals.exponential(1.0 / p.rate)) {
      WorkloadRequest r;
      r.arrival_s = t;
      const int input = p.short_input.draw(lengths);
      r.output_tokens = p.short_output.draw(lengths);
      r.prompt.push_back(TextSegment::words(text_seed(p.seed, 1, counter), input));
      r.output_seed = derive_seed(out_base, counter++);
      r.tag = "short";
      w.requests.push_back(std::move(r));
    }
  }
  const int docs = std::max(p.docs, 1);
  if (p.burst_every_s > 0 && p.burst_size > 0) {
    for (double b = p.first_burst_s; b < p.duration_s; b += p.burst_every_s) {
      for (int j = 0; j < p.burst_size; ++j) {
        WorkloadRequest r;
        r.arrival_s = b + bursts.uniform() * std::max(p.burst_span_s, 0.0);
        const int d = static_cast<int>(bursts.uniform_int(0, docs - 1));
        const int question = p.question.draw(lengths);
        r.output_tokens = p.doc_output.draw(lengths);
        r.prompt.push_back(
            TextSegment::words(text_seed(p.seed, 0, static_cast<uint64_t>(d)), p.doc_tokens));
        r.prompt.push_back(TextSegment::words(text_seed(p.seed, 2, counter), question));
        r.output_seed = derive_seed(out_base, counter++);
        r.tag = fmt::format("doc-{}", d);
        w.requests.push_back(std::move(r));
      }
    }
  }
  finish(w, options);
  return w;
}

}  // namespace eta::workload
