#include "cluster_sim/study.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include <fmt/format.h>
#include <boost/json/array.hpp>

#include "stats/stats.hpp"

namespace eta::cluster_sim {
namespace {

RelativeError relative_error(std::vector<double>& values) {
  RelativeError e;
  e.count = static_cast<int64_t>(values.size());
  if (values.empty()) return e;
  std::sort(values.begin(), values.end());
  e.p50 = stats::percentile_sorted(values, 50);
  e.p90 = stats::percentile_sorted(values, 90);
  return e;
}

// The constant c with the least median |c - y| / y over `actual` (candidates: every distinct
// length when few, else 400 quantiles; the median relative error is piecewise smooth between
// them, and the optimum sits at or next to a data point).
void best_constant_floor(std::vector<double> actual, double& floor, double& tokens) {
  floor = 0;
  tokens = 0;
  if (actual.empty()) return;
  std::sort(actual.begin(), actual.end());
  std::vector<double> candidates;
  if (actual.size() <= 600) {
    candidates = actual;
    candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
  } else {
    for (int q = 0; q <= 400; ++q)
      candidates.push_back(actual[static_cast<size_t>(q * (actual.size() - 1) / 400)]);
  }
  std::vector<double> err(actual.size());
  floor = std::numeric_limits<double>::infinity();
  for (const double c : candidates) {
    for (size_t i = 0; i < actual.size(); ++i) err[i] = std::abs(c - actual[i]) / actual[i];
    std::sort(err.begin(), err.end());
    const double m = stats::percentile_sorted(err, 50);
    if (m < floor) {
      floor = m;
      tokens = c;
    }
  }
}

// What the best constant reaches online: each request (in order of sending) is guessed the best
// constant of the lengths that finished before it was sent (recomputed after every
// max(16, n / 32) further finishes, 100 quantiles as candidates; 256 before 8 have finished, the
// predictor's prior), and the median of its relative errors is returned. The hindsight floor
// above is chosen on the very requests it is judged on, so no online guess reaches it on a
// workload whose lengths depend on nothing the router sees; this one is what a predictor without
// features can reach.
struct Finished {
  double sent_s, done_s, tokens;
};
// The median of |c - y| / y over sorted `ys`: the least t with half of them in
// [c / (1 + t), c / (1 - t)] (bisection on t, each step two binary searches).
double median_relative_error_sorted(double c, const std::vector<double>& ys) {
  const auto half = static_cast<std::ptrdiff_t>((ys.size() + 1) / 2);
  double a = 0, b = 1;
  for (int k = 0; k < 30; ++k) {
    const double t = 0.5 * (a + b);
    const auto lo = std::lower_bound(ys.begin(), ys.end(), c / (1 + t));
    const auto hi = std::upper_bound(ys.begin(), ys.end(), c / (1 - t));
    (hi - lo >= half ? b : a) = t;
  }
  return b;
}
double online_constant_floor(std::vector<Finished> requests) {
  if (requests.empty()) return 0;
  std::vector<Finished> finished = requests;
  std::sort(requests.begin(), requests.end(),
            [](const Finished& a, const Finished& b) { return a.sent_s < b.sent_s; });
  std::sort(finished.begin(), finished.end(),
            [](const Finished& a, const Finished& b) { return a.done_s < b.done_s; });
  std::vector<double> seen, errors;  // seen: sorted
  errors.reserve(requests.size());
  size_t next = 0, computed_at = 0;
  double guess = 256;
  for (const Finished& r : requests) {
    while (next < finished.size() && finished[next].done_s <= r.sent_s) {
      const double y = finished[next++].tokens;
      seen.insert(std::upper_bound(seen.begin(), seen.end(), y), y);
    }
    if (seen.size() >= 8 &&
        (computed_at == 0 || seen.size() >= computed_at + std::max<size_t>(16, computed_at / 32))) {
      computed_at = seen.size();
      double best = std::numeric_limits<double>::infinity();
      for (int q = 0; q <= 100; ++q) {
        const double c = seen[static_cast<size_t>(q) * (seen.size() - 1) / 100];
        const double e = median_relative_error_sorted(c, seen);
        if (e < best) {
          best = e;
          guess = c;
        }
      }
    }
    errors.push_back(std::abs(guess - r.tokens) / r.tokens);
  }
  std::sort(errors.begin(), errors.end());
  return stats::percentile_sorted(errors, 50);
}

boost::json::object error_json(const RelativeError& e) {
  return {{"p50", e.p50}, {"p90", e.p90}, {"count", e.count}};
}

// The refusals admission can give in the simulator (refusal_answer's reasons).
constexpr const char* kShedReasons[] = {"shed_capacity", "shed_slo", "queue_full", "queue_timeout",
                                        "no_replica"};

std::string fmt_ms(double ms) {
  if (ms >= 100) return fmt::format("{:.0f}", ms);
  if (ms >= 10) return fmt::format("{:.1f}", ms);
  return fmt::format("{:.2f}", ms);
}

std::string fmt_ratio(double value, double reference) {
  if (!(reference > 0) || !std::isfinite(value)) return "-";
  return fmt::format("{:.2f}x", value / reference);
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace

RunSummary summarize_run(const std::string& policy, double load, double rate_rps,
                         double capacity_rps, const SimResult& result, const stats::Slo& slo) {
  RunSummary s;
  s.policy = policy;
  s.load = load;
  s.rate_rps = rate_rps;
  s.capacity_rps = capacity_rps;
  const double duration = std::max(result.last_done_s - result.first_send_s, 1e-9);
  s.report = stats::build_report(load > 0 ? fmt::format("{}@{:g}", policy, load) : policy,
                                 result.records, duration, slo);
  std::vector<double> ttft, e2e, out, out_expected, actual;
  std::vector<Finished> finished;
  for (size_t i = 0; i < result.records.size(); ++i) {
    const stats::RequestRecord& r = result.records[i];
    if (!r.ok()) continue;
    if (r.predicted_ttft_s && r.ttft_s > 0)
      ttft.push_back(std::abs(*r.predicted_ttft_s - r.ttft_s) / r.ttft_s);
    if (r.predicted_e2e_s && r.e2e_s > 0)
      e2e.push_back(std::abs(*r.predicted_e2e_s - r.e2e_s) / r.e2e_s);
    const int predicted = result.predicted_output_tokens[i];
    if (predicted > 0 && r.output_tokens > 0) {
      out.push_back(std::abs(predicted - r.output_tokens) / static_cast<double>(r.output_tokens));
      const int expected = i < result.predicted_output_expected.size()
                               ? result.predicted_output_expected[i]
                               : predicted;
      out_expected.push_back(std::abs(expected - r.output_tokens) /
                             static_cast<double>(r.output_tokens));
      actual.push_back(r.output_tokens);
      finished.push_back({r.start_s, r.start_s + r.e2e_s, static_cast<double>(r.output_tokens)});
    }
  }
  s.output_expected_error = relative_error(out_expected);
  best_constant_floor(actual, s.output_floor, s.output_floor_tokens);
  s.output_online_floor = online_constant_floor(std::move(finished));
  s.ttft_error = relative_error(ttft);
  s.e2e_error = relative_error(e2e);
  s.output_error = relative_error(out);
  int64_t served = 0;
  uint64_t queries = 0, hits = 0;
  for (const ReplicaOutcome& r : result.replicas) {
    served += r.served;
    queries += r.prefix_queries;
    hits += r.prefix_hits;
    s.preemptions += r.preemptions;
  }
  for (const ReplicaOutcome& r : result.replicas) {
    s.share.emplace_back(r.name, served > 0 ? static_cast<double>(r.served) / served : 0);
    s.replica_preemptions.emplace_back(r.name, r.preemptions);
    if (r.speed_learned)
      s.learned_speed.emplace_back(
          r.name, std::make_pair(r.learned_prefill_factor, r.learned_decode_factor));
  }
  s.prefix_hit_rate = queries > 0 ? static_cast<double>(hits) / static_cast<double>(queries) : 0;
  s.lost = result.lost;
  s.events = result.events;
  s.steps = result.steps;
  s.oracle_steps = result.oracle_steps;
  s.sim_duration_s = result.last_done_s;
  s.admission = result.admission;
  s.shed = result.shed;
  s.queued = result.queued;
  s.late_held = result.late_held;
  s.report.extra["preemptions"] = static_cast<double>(s.preemptions);
  s.report.extra["prefix_hit_rate"] = s.prefix_hit_rate;
  s.report.extra["ttft_abs_rel_error_p50"] = s.ttft_error.p50;
  s.report.extra["ttft_abs_rel_error_p90"] = s.ttft_error.p90;
  s.report.extra["e2e_abs_rel_error_p50"] = s.e2e_error.p50;
  s.report.extra["e2e_abs_rel_error_p90"] = s.e2e_error.p90;
  s.report.extra["output_tokens_abs_rel_error_p50"] = s.output_error.p50;
  s.report.extra["output_tokens_abs_rel_error_p90"] = s.output_error.p90;
  s.report.extra["output_tokens_best_constant_p50"] = s.output_floor;
  return s;
}

boost::json::object run_to_json(const RunSummary& run) {
  boost::json::object o = stats::to_json(run.report);
  o["policy"] = run.policy;
  o["load"] = run.load;
  o["rate_rps"] = run.rate_rps;
  o["capacity_rps"] = run.capacity_rps;
  o["preemptions"] = run.preemptions;
  o["prefix_hit_rate"] = run.prefix_hit_rate;
  o["lost"] = run.lost;
  boost::json::object share, preempt, speed;
  for (const auto& [name, f] : run.share) share[name] = f;
  for (const auto& [name, p] : run.replica_preemptions) preempt[name] = p;
  for (const auto& [name, f] : run.learned_speed)
    speed[name] = boost::json::object{{"prefill", f.first}, {"decode", f.second}};
  o["replica_share"] = std::move(share);
  o["replica_preemptions"] = std::move(preempt);
  o["learned_speed"] = std::move(speed);
  o["prediction"] = boost::json::object{
      {"ttft_abs_rel_error", error_json(run.ttft_error)},
      {"e2e_abs_rel_error", error_json(run.e2e_error)},
      {"output_tokens_abs_rel_error", error_json(run.output_error)},
      {"output_tokens_expected_abs_rel_error", error_json(run.output_expected_error)},
      {"output_tokens_best_constant",
       boost::json::object{{"p50", run.output_floor}, {"tokens", run.output_floor_tokens}}},
      {"output_tokens_online_constant", boost::json::object{{"p50", run.output_online_floor}}}};
  o["sim"] = boost::json::object{{"events", run.events},
                                 {"steps", run.steps},
                                 {"oracle_steps", run.oracle_steps},
                                 {"simulated_s", run.sim_duration_s}};
  if (run.admission) {
    boost::json::object shed;
    for (const char* reason : kShedReasons) shed[reason] = 0;
    for (const auto& [reason, n] : run.shed) shed[reason] = n;
    o["shed"] = std::move(shed);
    o["queued"] = run.queued;
    if (run.policy.ends_with("+late")) o["late_held"] = run.late_held;
  }
  return o;
}

std::string render_shed_table(const std::vector<const RunSummary*>& runs) {
  std::string t = "| policy | held | queued";
  for (const char* reason : kShedReasons) t += fmt::format(" | {}", reason);
  t += " |\n|---|---:|---:|";
  for (size_t k = 0; k < std::size(kShedReasons); ++k) t += "---:|";
  t += "\n";
  for (const RunSummary* r : runs) {
    t += fmt::format("| {} | {} | {}", r->policy, r->late_held, r->queued);
    for (const char* reason : kShedReasons) {
      const auto it = r->shed.find(reason);
      t += fmt::format(" | {}", it == r->shed.end() ? 0 : it->second);
    }
    t += " |\n";
  }
  return t;
}

std::string render_table(const std::vector<const RunSummary*>& runs) {
  const RunSummary* rr = nullptr;
  const RunSummary* oracle = nullptr;
  for (const RunSummary* r : runs) {
    if (r->policy == "round-robin") rr = r;
    if (r->policy == kOraclePolicy) oracle = r;
  }
  std::string t;
  // offered: the arrival rate; done: completed requests / (first send .. last completion).
  t += "| policy | offered/s | done/s | TTFT p50 | p90 | p99 | TPOT p50 | p90 | p99 | E2E p50 | "
       "p90 | p99 | goodput | errors | preempt | share % | p99 TTFT /rr | p99 E2E /rr | p99 TTFT "
       "/oracle | p99 E2E /oracle |\n";
  t += "|---|---:|---:|" + std::string("---:|") +
       "---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
       "---|---:|---:|---:|---:|\n";
  for (const RunSummary* r : runs) {
    const stats::Report& p = r->report;
    std::string share;
    for (const auto& [name, f] : r->share)
      share += (share.empty() ? "" : "/") + fmt::format("{:.0f}", 100 * f);
    const std::string goodput = p.goodput_rps ? fmt::format("{:.2f}", *p.goodput_rps) : "-";
    t += fmt::format(
        "| {} | {:.2f} | {:.2f} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | "
        "{} | {} | {} | {} |\n",
        r->policy, r->rate_rps, p.request_throughput_rps, fmt_ms(p.ttft_ms.p50),
        fmt_ms(p.ttft_ms.p90), fmt_ms(p.ttft_ms.p99), fmt_ms(p.tpot_ms.p50), fmt_ms(p.tpot_ms.p90),
        fmt_ms(p.tpot_ms.p99), fmt_ms(p.e2e_ms.p50), fmt_ms(p.e2e_ms.p90), fmt_ms(p.e2e_ms.p99),
        goodput, p.errors, r->preemptions, share,
        rr ? fmt_ratio(p.ttft_ms.p99, rr->report.ttft_ms.p99) : "-",
        rr ? fmt_ratio(p.e2e_ms.p99, rr->report.e2e_ms.p99) : "-",
        oracle ? fmt_ratio(p.ttft_ms.p99, oracle->report.ttft_ms.p99) : "-",
        oracle ? fmt_ratio(p.e2e_ms.p99, oracle->report.e2e_ms.p99) : "-");
  }
  return t;
}

std::string render_svg(const std::vector<RunSummary>& runs, const std::string& title) {
  // Series: policy -> (load, value) for both metrics, in first-seen order.
  std::vector<std::string> policies;
  std::set<double> loads;
  for (const RunSummary& r : runs) {
    if (std::find(policies.begin(), policies.end(), r.policy) == policies.end())
      policies.push_back(r.policy);
    loads.insert(r.load > 0 ? r.load : r.rate_rps);
  }
  const bool by_load =
      std::all_of(runs.begin(), runs.end(), [](const RunSummary& r) { return r.load > 0; });
  static const char* kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                                  "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#000000", "#aec7e8"};
  const int kPanelW = 420, kPanelH = 300, kLeft = 70, kTop = 50, kGap = 90, kLegendW = 170;
  const int width = kLeft + 2 * kPanelW + kGap + kLegendW;
  const int height = kTop + kPanelH + 60;
  const double x_lo = loads.empty() ? 0 : *loads.begin();
  const double x_hi = loads.empty() ? 1 : *loads.rbegin();
  const double x_pad = x_hi > x_lo ? 0.05 * (x_hi - x_lo) : std::max(0.1 * x_lo, 0.05);
  const double x0 = x_lo - x_pad, x1 = x_hi + x_pad;

  std::string svg = fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
      "width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" font-family=\"sans-serif\" "
      "font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{}\" y=\"22\" font-size=\"15\" text-anchor=\"middle\">{}</text>\n",
      width, height, width, height, (kLeft + 2 * kPanelW + kGap) / 2, xml_escape(title));

  for (int panel = 0; panel < 2; ++panel) {
    auto value = [panel](const RunSummary& r) {
      return panel == 0 ? r.report.ttft_ms.p99 : r.report.e2e_ms.p99;
    };
    double lo = 1e300, hi = 0;
    for (const RunSummary& r : runs) {
      const double v = value(r);
      if (v > 0) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
    }
    if (hi <= 0) lo = 1, hi = 10;
    double d0 = std::floor(std::log10(lo)), d1 = std::ceil(std::log10(hi));
    if (d1 <= d0) d1 = d0 + 1;
    const int px = kLeft + panel * (kPanelW + kGap);
    auto X = [&](double x) { return px + (x - x0) / (x1 - x0) * kPanelW; };
    auto Y = [&](double v) {
      const double l = std::log10(std::max(v, std::pow(10.0, d0)));
      return kTop + kPanelH - (l - d0) / (d1 - d0) * kPanelH;
    };
    const char* name = panel == 0 ? "p99 TTFT (ms)" : "p99 E2E (ms)";
    svg += fmt::format(
        "<g data-panel=\"{}\">\n<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" "
        "stroke=\"#333\"/>\n<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
        panel == 0 ? "ttft_p99" : "e2e_p99", px, kTop, kPanelW, kPanelH, px + kPanelW / 2, kTop - 8,
        name);
    // Decade grid lines and labels (log scale), with 2x and 5x minor lines.
    for (int d = static_cast<int>(d0); d <= static_cast<int>(d1); ++d) {
      for (int m : {1, 2, 5}) {
        const double v = m * std::pow(10.0, d);
        if (std::log10(v) > d1 + 1e-9) break;
        const double y = Y(v);
        svg +=
            fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"{}\"/>\n",
                        px, y, px + kPanelW, y, m == 1 ? "#ccc" : "#eee");
        if (m == 1 || d1 - d0 <= 2)
          svg += fmt::format(
              "<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\" dominant-baseline=\"middle\">{:g}"
              "</text>\n",
              px - 6, y, v);
      }
    }
    for (double x : loads) {
      svg += fmt::format(
          "<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"#eee\"/>\n"
          "<text x=\"{0:.1f}\" y=\"{3}\" text-anchor=\"middle\">{4:g}</text>\n",
          X(x), kTop, kTop + kPanelH, kTop + kPanelH + 16, x);
    }
    svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                       px + kPanelW / 2, kTop + kPanelH + 36,
                       by_load ? "load (fraction of capacity)" : "rate (requests/s)");
    for (size_t p = 0; p < policies.size(); ++p) {
      std::vector<std::pair<double, double>> pts;
      for (const RunSummary& r : runs)
        if (r.policy == policies[p]) pts.emplace_back(r.load > 0 ? r.load : r.rate_rps, value(r));
      std::sort(pts.begin(), pts.end());
      const char* color = kColors[p % std::size(kColors)];
      std::string d;
      for (const auto& [x, v] : pts)
        d += fmt::format("{}{:.1f} {:.1f}", d.empty() ? "M" : " L", X(x), Y(v));
      const bool dashed = policies[p] == kOraclePolicy;
      svg += fmt::format(
          "<path data-policy=\"{}\" data-metric=\"{}\" d=\"{}\" fill=\"none\" stroke=\"{}\" "
          "stroke-width=\"2\"{}/>\n",
          xml_escape(policies[p]), panel == 0 ? "ttft_p99" : "e2e_p99", d, color,
          dashed ? " stroke-dasharray=\"6 3\"" : "");
      for (const auto& [x, v] : pts)
        svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>\n", X(x),
                           Y(v), color);
    }
    svg += "</g>\n";
  }
  const int lx = kLeft + 2 * kPanelW + kGap + 10;
  svg += fmt::format("<g data-legend=\"1\">\n");
  for (size_t p = 0; p < policies.size(); ++p) {
    const int y = kTop + 10 + static_cast<int>(p) * 20;
    const char* color = kColors[p % std::size(kColors)];
    svg += fmt::format(
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"2\"{}/>\n"
        "<text x=\"{}\" y=\"{}\" dominant-baseline=\"middle\">{}</text>\n",
        lx + 10, y, lx + 34, y, color,
        policies[p] == kOraclePolicy ? " stroke-dasharray=\"6 3\"" : "", lx + 40, y,
        xml_escape(policies[p]));
  }
  svg += "</g>\n</svg>\n";
  return svg;
}

}  // namespace eta::cluster_sim
