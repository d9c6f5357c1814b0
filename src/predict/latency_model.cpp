#include "predict/latency_model.hpp"

#include <algorithm>
#include <cmath>

namespace eta::predict {
namespace {

constexpr int kMax = BayesianRidge::kMaxFeatures;
// The statistics' weight is decayed: min_samples fresh samples weigh a little less than that.
constexpr double kMinWeightShare = 0.95;

// Eigen-decomposition of the symmetric n x n matrix `a` (row-major, kMax stride) by cyclic
// Jacobi rotations: eigenvalues in `e`, eigenvectors in the columns of `v`.
void jacobi_eigen(int n, std::array<double, kMax * kMax> a, std::array<double, kMax>& e,
                  std::array<double, kMax * kMax>& v) {
  v.fill(0);
  for (int i = 0; i < n; ++i) v[static_cast<size_t>(i * kMax + i)] = 1;
  auto at = [](std::array<double, kMax * kMax>& m, int r, int c) -> double& {
    return m[static_cast<size_t>(r * kMax + c)];
  };
  for (int sweep = 0; sweep < 64; ++sweep) {
    double off = 0;
    for (int p = 0; p < n; ++p)
      for (int q = p + 1; q < n; ++q) off += at(a, p, q) * at(a, p, q);
    if (off < 1e-22) break;
    for (int p = 0; p < n; ++p) {
      for (int q = p + 1; q < n; ++q) {
        const double apq = at(a, p, q);
        if (std::abs(apq) < 1e-300) continue;
        const double theta = (at(a, q, q) - at(a, p, p)) / (2 * apq);
        const double t =
            (theta >= 0 ? 1.0 : -1.0) / (std::abs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int k = 0; k < n; ++k) {  // columns p, q
          const double akp = at(a, k, p), akq = at(a, k, q);
          at(a, k, p) = c * akp - s * akq;
          at(a, k, q) = s * akp + c * akq;
        }
        for (int k = 0; k < n; ++k) {  // rows p, q
          const double apk = at(a, p, k), aqk = at(a, q, k);
          at(a, p, k) = c * apk - s * aqk;
          at(a, q, k) = s * apk + c * aqk;
        }
        for (int k = 0; k < n; ++k) {
          const double vkp = at(v, k, p), vkq = at(v, k, q);
          at(v, k, p) = c * vkp - s * vkq;
          at(v, k, q) = s * vkp + c * vkq;
        }
      }
    }
  }
  for (int i = 0; i < n; ++i) e[static_cast<size_t>(i)] = std::max(0.0, at(a, i, i));
}

}  // namespace

void BayesianRidge::add(const double* x, double y) {
  const double keep = 1.0 - decay_;
  weight_ = weight_ * keep + 1;
  sy_ = sy_ * keep + y;
  syy_ = syy_ * keep + y * y;
  for (int i = 0; i < d_; ++i) {
    sx_[static_cast<size_t>(i)] = sx_[static_cast<size_t>(i)] * keep + x[i];
    sxy_[static_cast<size_t>(i)] = sxy_[static_cast<size_t>(i)] * keep + x[i] * y;
    for (int j = 0; j < d_; ++j) {
      double& s = sxx_[static_cast<size_t>(i * kMax + j)];
      s = s * keep + x[i] * x[j];
    }
  }
}

bool BayesianRidge::fit() {
  if (weight_ < 2) return false;
  const double n = weight_;
  std::array<double, kMax> mean{}, scale{};
  for (int i = 0; i < d_; ++i) {
    mean[static_cast<size_t>(i)] = sx_[static_cast<size_t>(i)] / n;
    const double var = sxx_[static_cast<size_t>(i * kMax + i)] / n -
                       mean[static_cast<size_t>(i)] * mean[static_cast<size_t>(i)];
    scale[static_cast<size_t>(i)] = var > 1e-12 ? std::sqrt(var) : 1.0;  // StandardScaler
  }
  const double ymean = sy_ / n;
  const double yy = std::max(0.0, syy_ - n * ymean * ymean);  // centred sum of squares
  // Centred, standardised Gram matrix G = Z'Z and Z'y.
  std::array<double, kMax * kMax> g{};
  std::array<double, kMax> b{};
  for (int i = 0; i < d_; ++i) {
    const size_t si = static_cast<size_t>(i);
    b[si] = (sxy_[si] - n * mean[si] * ymean) / scale[si];
    for (int j = 0; j < d_; ++j) {
      const size_t sj = static_cast<size_t>(j);
      g[si * kMax + sj] =
          (sxx_[si * kMax + sj] - n * mean[si] * mean[sj]) / (scale[si] * scale[sj]);
    }
  }
  std::array<double, kMax> eig{};
  std::array<double, kMax * kMax> vec{};
  jacobi_eigen(d_, g, eig, vec);
  // V'b: the target's projection on each eigenvector.
  std::array<double, kMax> vb{};
  for (int k = 0; k < d_; ++k) {
    double s = 0;
    for (int i = 0; i < d_; ++i)
      s += vec[static_cast<size_t>(i * kMax + k)] * b[static_cast<size_t>(i)];
    vb[static_cast<size_t>(k)] = s;
  }
  // Evidence maximisation (MacKay; scikit-learn's BayesianRidge.fit).
  constexpr double kA1 = 1e-6, kA2 = 1e-6, kL1 = 1e-6, kL2 = 1e-6;
  const double var_y = yy / n;
  double alpha = 1.0 / (var_y + 1e-12);  // noise precision
  double lambda = 1.0;                   // weight precision
  std::array<double, kMax> w{}, prev{};
  for (int iter = 0; iter < 300; ++iter) {
    // w = V diag(1 / (e + lambda / alpha)) V'b
    std::array<double, kMax> t{};
    for (int k = 0; k < d_; ++k)
      t[static_cast<size_t>(k)] =
          vb[static_cast<size_t>(k)] / (eig[static_cast<size_t>(k)] + lambda / alpha);
    double wnorm = 0;
    for (int i = 0; i < d_; ++i) {
      double s = 0;
      for (int k = 0; k < d_; ++k)
        s += vec[static_cast<size_t>(i * kMax + k)] * t[static_cast<size_t>(k)];
      w[static_cast<size_t>(i)] = s;
      wnorm += s * s;
    }
    // Residual sum of squares: yy - 2 w'b + w'Gw.
    double wb = 0, wgw = 0;
    for (int i = 0; i < d_; ++i) {
      wb += w[static_cast<size_t>(i)] * b[static_cast<size_t>(i)];
      for (int j = 0; j < d_; ++j)
        wgw += w[static_cast<size_t>(i)] * g[static_cast<size_t>(i * kMax + j)] *
               w[static_cast<size_t>(j)];
    }
    const double rss = std::max(0.0, yy - 2 * wb + wgw);
    double gamma = 0;
    for (int k = 0; k < d_; ++k) {
      const double ae = alpha * eig[static_cast<size_t>(k)];
      gamma += ae / (lambda + ae);
    }
    lambda = (gamma + 2 * kL1) / (wnorm + 2 * kL2);
    alpha = (n - gamma + 2 * kA1) / (rss + 2 * kA2);
    double change = 0;
    for (int i = 0; i < d_; ++i)
      change += std::abs(w[static_cast<size_t>(i)] - prev[static_cast<size_t>(i)]);
    prev = w;
    if (iter > 0 && change < 1e-3) break;
  }
  intercept_ = ymean;
  for (int i = 0; i < d_; ++i) {
    const size_t si = static_cast<size_t>(i);
    coef_[si] = w[si] / scale[si];
    intercept_ -= coef_[si] * mean[si];
  }
  fitted_ = std::isfinite(intercept_);
  return fitted_;
}

double BayesianRidge::predict(const double* x) const {
  double y = intercept_;
  for (int i = 0; i < d_; ++i) y += coef_[static_cast<size_t>(i)] * x[i];
  return y;
}

LatencyFeatures latency_features(const cluster::ReplicaView& r, const cluster::ClusterView& view,
                                 int prompt_tokens, double prefix_score) {
  LatencyFeatures f;
  const cluster::LedgerSummary& l = r.ledger_or_empty();
  if (r.scrape.fresh(view.now, view.stale_after_s)) {
    f.kv_usage = r.scrape.kv_usage;
    f.waiting = r.scrape.waiting;
    f.running = r.scrape.running;
  } else {
    const double blocks =
        r.limits.num_gpu_blocks > 0 ? r.limits.num_gpu_blocks : r.scrape.num_gpu_blocks;
    const double bs = r.limits.block_size > 0   ? r.limits.block_size
                      : r.scrape.block_size > 0 ? r.scrape.block_size
                                                : 16;
    f.kv_usage = blocks > 0 ? std::min(1.0, static_cast<double>(l.kv_tokens) / (blocks * bs)) : 0;
    f.waiting = l.prefilling;
    f.running = l.decoding;
  }
  f.input_tokens = prompt_tokens;
  f.prefix_score = std::clamp(prefix_score, 0.0, 1.0);
  f.prefill_tokens = static_cast<double>(l.pending_prefill_tokens);
  f.decode_tokens = static_cast<double>(l.context_tokens);
  f.tokens_generated = 1;
  return f;
}

LatencyModel::LatencyModel(LatencyModelOptions options)
    : options_(options), ttft_(kTtftFeatures, options.decay), tpot_(kTpotFeatures, options.decay) {}

void LatencyModel::ttft_row(const LatencyFeatures& f, double* x) {
  x[0] = f.kv_usage;
  x[1] = f.input_tokens;
  x[2] = f.waiting;
  x[3] = f.running;
  x[4] = f.prefix_score;
  x[5] = (1 - f.prefix_score) * f.input_tokens;  // effective_input_tokens
  x[6] = f.prefill_tokens;
  x[7] = f.decode_tokens;
}

void LatencyModel::tpot_row(const LatencyFeatures& f, double* x) {
  x[0] = f.kv_usage;
  x[1] = f.input_tokens;
  x[2] = f.waiting;
  x[3] = f.running;
  x[4] = f.tokens_generated;
  x[5] = f.prefill_tokens;
  x[6] = f.decode_tokens;
}

void LatencyModel::observe_ttft(const LatencyFeatures& f, double ttft_s) {
  if (!(ttft_s >= 0) || !std::isfinite(ttft_s)) return;
  double x[kTtftFeatures];
  ttft_row(f, x);
  ttft_.add(x, ttft_s * 1000);
  if (++ttft_new_ >= options_.refit_every &&
      ttft_.samples() >= kMinWeightShare * options_.min_samples) {
    ttft_.fit();
    ttft_new_ = 0;
  }
}

void LatencyModel::observe_tpot(const LatencyFeatures& f, double tpot_s) {
  if (!(tpot_s >= 0) || !std::isfinite(tpot_s)) return;
  double x[kTpotFeatures];
  tpot_row(f, x);
  tpot_.add(x, tpot_s * 1000);
  if (++tpot_new_ >= options_.refit_every &&
      tpot_.samples() >= kMinWeightShare * options_.min_samples) {
    tpot_.fit();
    tpot_new_ = 0;
  }
}

double LatencyModel::predict_ttft_s(const LatencyFeatures& f) const {
  double x[kTtftFeatures];
  ttft_row(f, x);
  return std::max(0.0, ttft_.predict(x)) / 1000;
}

double LatencyModel::predict_tpot_s(const LatencyFeatures& f) const {
  double x[kTpotFeatures];
  tpot_row(f, x);
  return std::max(0.0, tpot_.predict(x)) / 1000;
}

}  // namespace eta::predict
