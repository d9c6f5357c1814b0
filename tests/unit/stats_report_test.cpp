#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json/parse.hpp>

#include "stats/report.hpp"

namespace eta::stats {
namespace {

RequestRecord ok_record(double start, double ttft, double e2e, int out, std::vector<double> itls,
                        std::string replica) {
  RequestRecord r;
  r.start_s = start;
  r.ttft_s = ttft;
  r.e2e_s = e2e;
  r.output_tokens = out;
  r.prompt_tokens = 100;
  r.itls_s = std::move(itls);
  r.replica = std::move(replica);
  return r;
}

RequestRecord failed(std::string kind, double start, double e2e) {
  RequestRecord r;
  r.error_kind = std::move(kind);
  r.start_s = start;
  r.e2e_s = e2e;
  return r;
}

std::vector<RequestRecord> sample() {
  std::vector<RequestRecord> v;
  v.push_back(ok_record(0.0, 0.1, 0.5, 5, {0.1, 0.1, 0.1, 0.1}, "a"));  // tpot 100 ms
  v.push_back(ok_record(0.5, 0.2, 0.2, 1, {}, "b"));                    // out 1: no tpot
  v.push_back(ok_record(1.0, 0.3, 1.1, 3, {0.5, 0.3}, "a"));            // tpot 400 ms
  v.push_back(failed("http_503", 1.5, 0.01));
  v.push_back(failed("timeout", 1.6, 2.0));
  v.push_back(failed("http_503", 1.7, 0.01));
  v[0].predicted_e2e_s = 0.6;
  v[2].predicted_e2e_s = 1.0;
  v[2].predicted_ttft_s = 0.25;
  v[1].send_lateness_s = 0.002;
  return v;
}

TEST(StatsReport, VllmDefinitions) {
  const Report r = build_report("test", sample(), 4.0);
  EXPECT_EQ(r.label, "test");
  EXPECT_EQ(r.requests, 3);
  EXPECT_EQ(r.errors, 3);
  EXPECT_EQ(r.errors_by_kind.at("http_503"), 2);
  EXPECT_EQ(r.errors_by_kind.at("timeout"), 1);
  EXPECT_EQ(r.replicas.at("a"), 2);
  EXPECT_EQ(r.replicas.at("b"), 1);
  EXPECT_EQ(r.total_output_tokens, 9);
  EXPECT_EQ(r.total_input_tokens, 300);
  EXPECT_EQ(r.request_throughput_rps, 0.75);
  EXPECT_EQ(r.output_tokens_per_s, 2.25);
  EXPECT_EQ(r.total_tokens_per_s, 77.25);
  EXPECT_FALSE(r.goodput_rps.has_value());
  // TTFT over successful requests only.
  EXPECT_EQ(r.ttft_ms.count, 3);
  EXPECT_NEAR(r.ttft_ms.mean, 200, 1e-9);
  // TPOT only for out > 1: (0.5-0.1)/4 and (1.1-0.3)/2.
  EXPECT_EQ(r.tpot_ms.count, 2);
  EXPECT_NEAR(r.tpot_ms.mean, 250, 1e-9);
  EXPECT_NEAR(r.tpot_ms.p50, 250, 1e-9);
  // ITL pooled: 0.1 x4, 0.5, 0.3.
  EXPECT_EQ(r.itl_ms.count, 6);
  EXPECT_NEAR(r.itl_ms.max, 500, 1e-9);
  EXPECT_NEAR(r.itl_ms.p50, 100, 1e-9);
  EXPECT_EQ(r.e2e_ms.count, 3);
  EXPECT_NEAR(r.e2e_ms.max, 1100, 1e-9);
  // Predictions: e2e errors +100 ms and -100 ms; one ttft error of -50 ms.
  EXPECT_EQ(r.e2e_prediction_error_ms.count, 2);
  EXPECT_NEAR(r.e2e_prediction_error_ms.mean, 0, 1e-9);
  EXPECT_NEAR(r.ttft_prediction_error_ms.mean, -50, 1e-9);
  EXPECT_EQ(r.send_lateness_ms.count, 6);
  EXPECT_NEAR(r.send_lateness_ms.max, 2, 1e-12);
  // In flight: [0,0.5) [0.5,0.7) [1,2.1) [1.5,1.51) [1.6,3.6) [1.7,1.71) -> 3 at t=1.7.
  EXPECT_EQ(r.peak_concurrency, 3);
  EXPECT_GT(r.peak_output_tokens_per_s, 0);
}

TEST(StatsReport, GoodputRules) {
  Slo slo;
  std::string error;
  ASSERT_TRUE(parse_slo("ttft:250,tpot:150", slo, error)) << error;
  EXPECT_EQ(*slo.ttft_ms, 250);
  EXPECT_EQ(*slo.tpot_ms, 150);
  EXPECT_FALSE(slo.e2e_ms);
  // Request 0: ttft 100, tpot 100 -> good. Request 1: ttft 200, out 1 -> tpot counts 0 -> good.
  // Request 2: ttft 300 -> bad.
  Report r = build_report("g", sample(), 4.0, slo);
  ASSERT_TRUE(r.goodput_rps.has_value());
  EXPECT_EQ(*r.goodput_rps, 0.5);
  ASSERT_TRUE(parse_slo("tpot:50", slo, error));
  r = build_report("g", sample(), 4.0, slo);
  EXPECT_EQ(*r.goodput_rps, 0.25);                         // only the out=1 request
  ASSERT_TRUE(parse_slo("e2e=500 ttft=100", slo, error));  // <= is inclusive
  r = build_report("g", sample(), 4.0, slo);
  EXPECT_EQ(*r.goodput_rps, 0.25);
  EXPECT_FALSE(parse_slo("ttft", slo, error));
  EXPECT_FALSE(parse_slo("latency:5", slo, error));
  EXPECT_FALSE(parse_slo("ttft:-1", slo, error));
}

TEST(StatsReport, JsonRoundTrip) {
  Slo slo;
  slo.ttft_ms = 250;
  Report r = build_report("policy \"eta\"", sample(), 3.3, slo);
  r.extra["prefix_hit_rate"] = 0.4321;
  const std::string text = to_json_string(r);
  const auto json = boost::json::parse(text).as_object();
  for (const char* key : {"label", "requests", "errors", "duration_s", "ttft_ms", "tpot_ms",
                          "itl_ms", "e2e_ms", "goodput_rps", "output_tokens_per_s",
                          "request_throughput_rps", "replicas", "errors_by_kind"}) {
    EXPECT_TRUE(json.contains(key)) << key;
  }
  for (const char* key : {"mean", "p50", "p90", "p99", "p999"}) {
    EXPECT_TRUE(json.at("ttft_ms").as_object().contains(key)) << key;
  }
  EXPECT_EQ(json.at("replicas").at("a").as_int64(), 2);

  Report back;
  std::string error;
  ASSERT_TRUE(parse_report(text, back, error)) << error;
  EXPECT_EQ(back.label, r.label);
  EXPECT_EQ(back.requests, r.requests);
  EXPECT_EQ(back.errors, r.errors);
  EXPECT_EQ(back.duration_s, r.duration_s);
  EXPECT_EQ(back.goodput_rps, r.goodput_rps);
  EXPECT_EQ(back.slo.ttft_ms, r.slo.ttft_ms);
  EXPECT_FALSE(back.slo.tpot_ms);
  EXPECT_EQ(back.ttft_ms.p99, r.ttft_ms.p99);
  EXPECT_EQ(back.tpot_ms.mean, r.tpot_ms.mean);
  EXPECT_EQ(back.itl_ms.p999, r.itl_ms.p999);
  EXPECT_EQ(back.e2e_ms.std, r.e2e_ms.std);
  EXPECT_EQ(back.e2e_ms.count, r.e2e_ms.count);
  EXPECT_EQ(back.replicas, r.replicas);
  EXPECT_EQ(back.errors_by_kind, r.errors_by_kind);
  EXPECT_EQ(back.extra, r.extra);
  EXPECT_EQ(back.peak_concurrency, r.peak_concurrency);
  EXPECT_EQ(to_json_string(back), text);
  // Compact form parses the same; a wrapper {"report": {...}} is accepted.
  ASSERT_TRUE(parse_report("{\"report\":" + to_json_string(r, false) + "}", back, error)) << error;
  EXPECT_EQ(back.e2e_ms.p90, r.e2e_ms.p90);
}

TEST(StatsReport, ParseErrorsNameTheKey) {
  Report r;
  std::string error;
  EXPECT_FALSE(parse_report("{not json", r, error));
  EXPECT_NE(error.find("malformed"), std::string::npos);
  EXPECT_FALSE(parse_report("{\"duration_s\": 1}", r, error));
  EXPECT_NE(error.find("\"requests\""), std::string::npos) << error;
  EXPECT_FALSE(parse_report("{\"requests\": 1, \"duration_s\": 1, \"ttft_ms\": {\"p99\": \"x\"}}",
                            r, error));
  EXPECT_NE(error.find("ttft_ms.p99"), std::string::npos) << error;
  EXPECT_FALSE(parse_report("[1]", r, error));
  EXPECT_FALSE(load_report_file("/nonexistent/report.json", r, error));
  EXPECT_NE(error.find("/nonexistent/report.json"), std::string::npos);
  // Minimal reports parse, with defaults.
  ASSERT_TRUE(parse_report("{\"requests\": 4, \"duration_s\": 2}", r, error)) << error;
  EXPECT_EQ(r.requests, 4);
  EXPECT_FALSE(r.goodput_rps);
}

TEST(StatsReport, ComparisonTable) {
  Report a = build_report("round-robin", sample(), 4.0);
  Report b = a;
  b.label = "eta";
  b.ttft_ms.p99 = a.ttft_ms.p99 / 2;
  b.request_throughput_rps = a.request_throughput_rps * 1.5;
  b.replicas = {{"a", 1}, {"b", 2}};
  const std::string md = render_comparison({a, b});
  EXPECT_NE(md.find("| metric"), std::string::npos) << md;
  EXPECT_NE(md.find("round-robin"), std::string::npos);
  EXPECT_NE(md.find("| eta"), std::string::npos);
  EXPECT_NE(md.find("---:|"), std::string::npos);
  // Find the ttft p99 row and check its ratio.
  const std::size_t row = md.find("ttft_ms p99");
  ASSERT_NE(row, std::string::npos);
  const std::string line = md.substr(row, md.find('\n', row) - row);
  EXPECT_NE(line.find("(0.50x)"), std::string::npos) << line;
  const std::size_t tput = md.find("request_throughput_rps");
  const std::string tline = md.substr(tput, md.find('\n', tput) - tput);
  EXPECT_NE(tline.find("(1.50x)"), std::string::npos) << tline;
  EXPECT_NE(md.find("a=2 b=1"), std::string::npos);
  EXPECT_NE(md.find("a=1 b=2"), std::string::npos);
  const std::string goodput = md.substr(md.find("goodput_rps"));
  EXPECT_EQ(goodput.substr(0, goodput.find('\n')).find("x)"), std::string::npos);  // no SLO: "-"
  const std::string plain = render_comparison({a, b}, TableFormat::kPlain);
  EXPECT_EQ(plain.find('|'), std::string::npos);
  EXPECT_NE(plain.find("(0.50x)"), std::string::npos);
  // Every line of the Markdown table has the same number of cells.
  std::size_t pos = 0;
  int lines = 0;
  while (pos < md.size()) {
    const std::size_t end = md.find('\n', pos);
    const std::string l = md.substr(pos, end - pos);
    EXPECT_EQ(std::count(l.begin(), l.end(), '|'), 4) << l;
    pos = end + 1;
    ++lines;
  }
  EXPECT_GT(lines, 20);
}

TEST(StatsReport, SteadyReportLeavesTheWarmUpOut) {
  // Ten requests sent once a second, 0.5 s each (a 5 s one sent at 1 s), and one failure.
  std::vector<RequestRecord> v;
  for (int i = 0; i < 10; ++i) v.push_back(ok_record(i, 0.1, i == 1 ? 5.0 : 0.5, 2, {0.4}, "a"));
  v.push_back(failed("http_503", 8.5, 0.01));
  Slo slo;
  slo.e2e_ms = 1000;
  const Report r = steady_report("steady", v, 0.2, slo);
  // The span is 0..9 s: the window starts at 1.8 s, so the requests sent at 2..9 s and 8.5 s.
  EXPECT_EQ(r.label, "steady");
  EXPECT_EQ(r.requests, 8);
  EXPECT_EQ(r.errors, 1);
  EXPECT_DOUBLE_EQ(r.duration_s, 7.2);
  EXPECT_DOUBLE_EQ(r.extra.at("warmup_s"), 1.8);
  EXPECT_DOUBLE_EQ(r.extra.at("window_s"), 7.2);
  EXPECT_DOUBLE_EQ(r.extra.at("offered_rps"), 9 / 7.2);
  // Completed within (1.8, 9]: those sent at 2..8 s (done at 2.5..8.5 s) and the long one sent
  // in the warm-up (done at 6 s); not the one sent at 9 s (done at 9.5 s).
  EXPECT_DOUBLE_EQ(r.extra.at("completed_rps"), 8 / 7.2);
  EXPECT_DOUBLE_EQ(r.request_throughput_rps, 8 / 7.2);
  EXPECT_DOUBLE_EQ(*r.goodput_rps, 8 / 7.2);
  EXPECT_DOUBLE_EQ(r.e2e_ms.max, 500);  // the 5 s request was sent in the warm-up
  // Fraction 0: every request, the whole span.
  const Report all = steady_report("all", v, 0.0);
  EXPECT_EQ(all.requests, 10);
  EXPECT_DOUBLE_EQ(all.duration_s, 9);
  EXPECT_DOUBLE_EQ(all.extra.at("warmup_s"), 0);
  EXPECT_TRUE(steady_report("none", {}, 0.2).extra.empty());
}

TEST(StatsReport, ComparisonByReport) {
  Report a = build_report("nginx", sample(), 4.0);
  a.extra["offered_rps"] = 2;
  Report b = a;
  b.label = "eta";
  b.ttft_ms.p99 = a.ttft_ms.p99 / 4;
  b.extra["offered_rps"] = 3;
  Report c = a;
  c.label = "round-robin";
  c.extra.clear();
  CompareOptions o;
  o.by_report = true;
  o.first_column = "router";
  o.metrics = {"extra.offered_rps=offered req/s", "ttft_ms.p99=p99 TTFT ms", "errors"};
  o.ratios = {"ttft_ms p99=p99 TTFT"};
  o.baseline = "nginx";
  std::string out, error;
  ASSERT_TRUE(render_comparison({b, a, c}, o, out, error)) << error;
  std::vector<std::string> lines;
  for (std::size_t pos = 0; pos < out.size();) {
    const std::size_t end = out.find('\n', pos);
    std::string l = out.substr(pos, end - pos);
    l.erase(std::remove(l.begin(), l.end(), ' '), l.end());
    lines.push_back(l);
    pos = end + 1;
  }
  ASSERT_EQ(lines.size(), 5u) << out;
  EXPECT_EQ(lines[0], "|router|offeredreq/s|p99TTFTms|errors|p99TTFT/nginx|") << out;
  EXPECT_EQ(std::count(lines[1].begin(), lines[1].end(), ':'), 4) << out;  // numbers right
  EXPECT_NEAR(a.ttft_ms.p99, 298, 1e-9);                                   // 100, 200 and 300 ms
  EXPECT_EQ(lines[2], "|eta|3.000|74.50|3|0.25x|") << out;
  EXPECT_EQ(lines[3], "|nginx|2.000|298.00|3|1.00x|") << out;
  EXPECT_EQ(lines[4], "|round-robin|-|298.00|3|1.00x|") << out;  // no such extra: "-"
  // Ratios to a baseline in the default layout too; unknown names fail with one line.
  CompareOptions d;
  d.baseline = "nginx";
  ASSERT_TRUE(render_comparison({b, a}, d, out, error)) << error;
  const std::size_t row = out.find("ttft_ms p99");
  const std::string line = out.substr(row, out.find('\n', row) - row);
  EXPECT_NE(line.find("(0.25x)"), std::string::npos) << line;
  d.metrics = {"ttft_ms.p42"};
  EXPECT_FALSE(render_comparison({a}, d, out, error));
  EXPECT_NE(error.find("ttft_ms.p42"), std::string::npos) << error;
  d.metrics = {};
  d.baseline = "haproxy";
  EXPECT_FALSE(render_comparison({a}, d, out, error));
  EXPECT_NE(error.find("haproxy"), std::string::npos) << error;
}

}  // namespace
}  // namespace eta::stats
