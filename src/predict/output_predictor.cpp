#include "predict/output_predictor.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace eta::predict {
namespace {

constexpr double kErrorClip = 2.0;  // a guess's relative error counts at most this much

uint64_t mix(uint64_t x) {  // splitmix64's finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t combine(uint64_t a, uint64_t b) {
  return mix(a ^ mix(b));
}

uint64_t hash_text(std::string_view s) {  // FNV-1a
  uint64_t h = 1469598103934665603ull;
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

int octave(int64_t v) {
  if (v < 2) return 0;
  return 63 - __builtin_clzll(static_cast<uint64_t>(v));
}

uint64_t nonzero(uint64_t k) {
  return k == 0 ? 1 : k;
}

// For t = i / kTSteps: -log2(1 - t) (up) and log2(1 + t) (down), the log2 offsets of
// [c / (1 + t), c / (1 - t)] from c.
constexpr int kTSteps = 4096;
struct TOffsets {
  std::array<double, kTSteps + 1> up, down;
};
const TOffsets& t_offsets() {
  static const TOffsets table = [] {
    TOffsets o;
    for (int i = 0; i <= kTSteps; ++i) {
      const double t = static_cast<double>(i) / kTSteps;
      o.up[static_cast<size_t>(i)] = i == kTSteps ? 1e9 : -std::log2(1 - t);
      o.down[static_cast<size_t>(i)] = std::log2(1 + t);
    }
    return o;
  }();
  return table;
}

}  // namespace

void OutputLengthPredictor::Histogram::add(int output_tokens, double decay) {
  const auto keep = static_cast<float>(1.0 - decay);
  for (int i = 0; i < kBins; ++i) {
    weight[static_cast<size_t>(i)] *= keep;
    sum[static_cast<size_t>(i)] *= keep;
  }
  total = total * (1.0 - decay) + 1;
  const double y = std::max(1, output_tokens);
  const int b = std::clamp(static_cast<int>(std::floor(4 * std::log2(y))), 0, kBins - 1);
  weight[static_cast<size_t>(b)] += 1;
  sum[static_cast<size_t>(b)] += static_cast<float>(y);
  ++stale;
}

// The constant c with the least median of |c - y| / y over the histogram. A bin's lengths are
// taken as spread evenly in log2 over the widest interval around their mean that fits in the bin
// (a bin of equal lengths is a point; one spread over the bin, about the bin), so the median
// error is a continuous function of c and its minimum does not jump between bin means as
// samples arrive. For a given c it is the least t with at least half the mass in
// [c / (1 + t), c / (1 - t)]; c is searched among the bins' means and on a grid of 1/8 octave,
// then of 1/64 around the best.
double OutputLengthPredictor::Histogram::best_constant() const {
  if (point > 0 && stale < std::clamp(static_cast<int>(total / 8), 1, 16)) return point;
  std::array<double, kBins + 1> below{};      // mass below bin i
  std::array<double, kBins> from{}, width{};  // bin i's mass: uniform on [from, from + width]
  int lo = -1, hi = -1;
  for (int i = 0; i < kBins; ++i) {
    const auto u = static_cast<size_t>(i);
    const double w = weight[u] > 1e-9 ? weight[u] : 0;
    below[u + 1] = below[u] + w;
    if (w == 0) continue;
    if (lo < 0) lo = i;
    hi = i;
    const double edge = i / 4.0;
    const double m = std::clamp(std::log2(std::max(sum[u] / w, 1.0)), edge, edge + 0.25);
    const double half = std::min(m - edge, edge + 0.25 - m);
    from[u] = m - half;
    width[u] = 2 * half;
  }
  stale = 0;
  if (lo < 0) return point = 1;
  const double mass = below[kBins];
  const auto cdf = [&](double log2_y) {  // mass below y
    const double pos = 4 * log2_y;
    if (pos < 0) return 0.0;
    if (pos >= kBins) return mass;
    const auto i = static_cast<size_t>(pos);
    const double x = log2_y - from[i];
    const double part = x <= 0 ? 0 : x >= width[i] ? 1 : x / width[i];
    return below[i] + weight[i] * part;
  };
  // The least t on a grid of 1/4096 (bisection over a table of the log2 offsets: no log here).
  const auto median_error = [&](double log2_c) {
    const TOffsets& o = t_offsets();
    int a = 0, b = kTSteps;  // inside(b) holds half the mass (t = 1 holds all)
    while (b - a > 1) {
      const int m = (a + b) / 2;
      const auto u = static_cast<size_t>(m);
      const double inside = cdf(log2_c + o.up[u]) - cdf(log2_c - o.down[u]);
      (inside >= 0.5 * mass ? b : a) = m;
    }
    return static_cast<double>(b) / kTSteps;
  };
  double best = lo / 4.0, best_err = std::numeric_limits<double>::infinity();
  const auto consider = [&](double log2_c) {
    const double e = median_error(log2_c);
    if (e < best_err) {
      best_err = e;
      best = log2_c;
    }
  };
  for (int i = lo; i <= hi; ++i)
    if (weight[static_cast<size_t>(i)] > 1e-9)
      consider(from[static_cast<size_t>(i)] + 0.5 * width[static_cast<size_t>(i)]);
  for (double l = lo / 4.0; l <= (hi + 1) / 4.0; l += 1.0 / 8) consider(l);
  const double coarse = best;
  for (double l = coarse - 1.0 / 8; l <= coarse + 1.0 / 8; l += 1.0 / 64) consider(l);
  return point = std::max(1.0, std::exp2(best));
}

void OutputLengthPredictor::Histogram::moments_capped(double cap, double& mean, double& sd) const {
  double m1 = 0, m2 = 0, mass = 0;
  for (int i = 0; i < kBins; ++i) {
    const double w = weight[static_cast<size_t>(i)];
    if (!(w > 1e-9)) continue;
    const double v = std::min(static_cast<double>(sum[static_cast<size_t>(i)]) / w, cap);
    m1 += w * v;
    m2 += w * v * v;
    mass += w;
  }
  mean = mass > 0 ? m1 / mass : 0;
  sd = mass > 0 ? std::sqrt(std::max(0.0, m2 / mass - mean * mean)) : 0;
}

OutputLengthPredictor::Keys OutputLengthPredictor::keys(const OutputQuery& q) const {
  Keys k{};
  const uint64_t m = hash_text(q.model);
  if (!q.block_hashes.empty()) {
    const size_t n =
        std::min(q.block_hashes.size(), static_cast<size_t>(std::max(options_.template_blocks, 1)));
    k[kTemplate] = nonzero(combine(combine(m, 0x7e), q.block_hashes[n - 1]));
  }
  if (q.session_hash) k[kSession] = nonzero(combine(combine(m, 0x5e), *q.session_hash));
  const int cap_octave = q.max_tokens && *q.max_tokens > 0 ? 1 + octave(*q.max_tokens) : 0;
  k[kShape] = nonzero(
      combine(combine(combine(combine(m, 0x54), q.shape), cap_octave), octave(q.prompt_tokens)));
  k[kPrompt] = nonzero(combine(combine(m, 0x50), octave(q.prompt_tokens)));
  k[kModel] = nonzero(combine(m, 0x4d));
  k[kGlobal] = 0x676c6f62616cull;
  return k;
}

const OutputLengthPredictor::Histogram* OutputLengthPredictor::find(uint64_t key) const {
  if (key == 0) return nullptr;
  auto it = table_.find(key);
  return it == table_.end() ? nullptr : &it->second;
}

OutputLengthPredictor::Histogram& OutputLengthPredictor::slot(uint64_t key) {
  auto it = table_.find(key);
  if (it != table_.end()) return it->second;
  if (table_.size() >= options_.max_contexts) {  // drop the lightest half
    std::vector<double> totals;
    totals.reserve(table_.size());
    for (const auto& [k, h] : table_) totals.push_back(h.total);
    std::nth_element(totals.begin(),
                     totals.begin() + static_cast<std::ptrdiff_t>(totals.size() / 2), totals.end());
    const double median = totals[totals.size() / 2];
    for (auto i = table_.begin(); i != table_.end();) {
      if (i->second.total <= median && i->first != 0x676c6f62616cull)
        i = table_.erase(i);
      else
        ++i;
    }
  }
  return table_[key];
}

double OutputLengthPredictor::cap_of(const OutputQuery& q) const {
  double cap = std::numeric_limits<double>::infinity();
  if (q.max_tokens && *q.max_tokens > 0) cap = *q.max_tokens;
  if (q.max_model_len > 0)
    cap = std::min(cap, static_cast<double>(q.max_model_len - q.prompt_tokens));
  return std::max(cap, 1.0);
}

OutputPrediction OutputLengthPredictor::answer(const Keys& keys, double cap) const {
  OutputPrediction out;
  const Histogram* chosen = nullptr;
  const Histogram* fallback = nullptr;  // the most specific with enough samples
  const Histogram* global = find(keys[kGlobal]);
  if (global && global->total >= options_.min_weight) {
    chosen = global;
    out.context = kGlobal;
  }
  double best_bound = 0;
  for (int c = 0; c < kGlobal; ++c) {
    const Histogram* h = find(keys[static_cast<size_t>(c)]);
    if (!h || h->total < options_.min_weight) continue;
    if (!fallback && !chosen) {
      fallback = h;
      out.context = c;
    }
    if (!chosen || h->judged < options_.min_judged) continue;
    const double var = std::max(0.0, h->advantage_sq - h->advantage * h->advantage);
    const double bound = h->advantage - options_.confidence_z * std::sqrt(var / h->judged);
    if (bound > best_bound) {
      best_bound = bound;
      chosen = h;
      out.context = c;
    }
  }
  if (!chosen) chosen = fallback;
  if (!chosen) {
    out.context = -1;
    const double v = std::min(options_.prior_output_tokens, cap);
    out.expected = out.point = std::max(1, static_cast<int>(std::lround(v)));
    return out;
  }
  double mean = 0, sd = 0;
  chosen->moments_capped(cap, mean, sd);
  out.expected = std::max(1, static_cast<int>(std::lround(mean)));
  out.point = std::max(1, static_cast<int>(std::lround(std::min(chosen->best_constant(), cap))));
  out.sd = sd;
  return out;
}

OutputPrediction OutputLengthPredictor::predict(const OutputQuery& q) const {
  const double cap = cap_of(q);
  if (q.ignore_eos && q.max_tokens && *q.max_tokens > 0) {  // exact: it runs to the cap
    OutputPrediction out;
    out.expected = out.point = std::max(1, static_cast<int>(std::lround(cap)));
    return out;
  }
  return answer(keys(q), cap);
}

void OutputLengthPredictor::observe(const Keys& keys, int output_tokens) {
  if (output_tokens <= 0) return;
  const double y = output_tokens;
  const auto error_of = [y](const Histogram& h) {
    return std::min(std::abs(h.best_constant() - y) / y, kErrorClip);
  };
  // Prequential: every guess is judged before the length is learned.
  const Histogram* global = find(keys[kGlobal]);
  const double global_error =
      global && global->total >= options_.min_weight ? error_of(*global) : -1;
  for (int c = 0; c < kContexts; ++c) {
    const uint64_t key = keys[static_cast<size_t>(c)];
    if (key == 0) continue;
    Histogram& h = slot(key);
    if (c != kGlobal && global_error >= 0 && h.total >= options_.min_weight) {
      const double d = global_error - error_of(h);
      const double w = h.judged * (1.0 - options_.decay);
      h.advantage = (h.advantage * w + d) / (w + 1);
      h.advantage_sq = (h.advantage_sq * w + d * d) / (w + 1);
      h.judged = w + 1;
    }
    h.add(output_tokens, options_.decay);
  }
}

int OutputLengthPredictor::predict(std::string_view model, int prompt_tokens,
                                   std::optional<int> max_tokens, bool ignore_eos,
                                   int max_model_len) const {
  OutputQuery q;
  q.model = model;
  q.prompt_tokens = prompt_tokens;
  q.max_tokens = max_tokens;
  q.ignore_eos = ignore_eos;
  q.max_model_len = max_model_len;
  return predict(q).expected;
}

void OutputLengthPredictor::observe(std::string_view model, int prompt_tokens, int output_tokens) {
  OutputQuery q;
  q.model = model;
  q.prompt_tokens = prompt_tokens;
  Keys k = keys(q);
  k[kShape] = 0;  // unknown for this request
  observe(k, output_tokens);
}

double OutputLengthPredictor::mean(std::string_view model, int prompt_tokens) const {
  OutputQuery q;
  q.model = model;
  q.prompt_tokens = prompt_tokens;
  Keys k = keys(q);
  k[kShape] = 0;
  const OutputPrediction p = answer(k, std::numeric_limits<double>::infinity());
  if (p.context < 0) return options_.prior_output_tokens;
  double m = 0, sd = 0;
  for (int c = 0; c < kContexts; ++c) {
    if (c != p.context) continue;
    if (const Histogram* h = find(k[static_cast<size_t>(c)])) h->moments_capped(1e300, m, sd);
  }
  return m;
}

}  // namespace eta::predict
