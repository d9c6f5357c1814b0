// bench/progress.hpp, bench/csv.hpp and bench/target.hpp: the progress line, the per-request CSV,
// and what bench reads from /v1/models.
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "bench/csv.hpp"
#include "bench/progress.hpp"
#include "bench/target.hpp"
#include "openai/response.hpp"

namespace eta::bench {
namespace {

// ---- progress --------------------------------------------------------------------------------

ProgressCounts counts() {
  ProgressCounts c;
  c.total = 5000;
  c.sent = 1200;
  c.finished = 1180;
  c.errors = 3;
  c.in_flight = 20;
  c.elapsed_s = 12.34;
  c.lateness_max_s = 0.00041;
  return c;
}

TEST(ProgressTest, FormatsTheCounters) {
  const std::string line = format_progress(counts(), 1.0);
  EXPECT_NE(line.find("12.3 s"), std::string::npos) << line;
  EXPECT_NE(line.find("sent 1200/5000 (24%)"), std::string::npos) << line;
  EXPECT_NE(line.find("done 1180"), std::string::npos) << line;
  EXPECT_NE(line.find("in flight 20"), std::string::npos) << line;
  EXPECT_NE(line.find("errors 3"), std::string::npos) << line;
  EXPECT_NE(line.find("max send lateness 0.41 ms (wall)"), std::string::npos) << line;
  EXPECT_EQ(line.find("sim"), std::string::npos) << line;
  EXPECT_EQ(line.find('\n'), std::string::npos);
  // At another time scale the simulated elapsed time is shown too.
  EXPECT_NE(format_progress(counts(), 4.0).find("sim 49.4 s"), std::string::npos);
}

TEST(ProgressTest, EmptyPlanIsComplete) {
  ProgressCounts c;
  EXPECT_NE(format_progress(c, 1.0).find("sent 0/0 (100%)"), std::string::npos);
}

TEST(ProgressTest, Styles) {
  ProgressStyle tty = progress_style(ProgressMode::kAuto, true);
  EXPECT_TRUE(tty.enabled);
  EXPECT_TRUE(tty.carriage_return);
  EXPECT_LE(tty.interval_s, 1.0);
  ProgressStyle lines = progress_style(ProgressMode::kAuto, false);
  EXPECT_TRUE(lines.enabled);
  EXPECT_FALSE(lines.carriage_return);
  EXPECT_GE(lines.interval_s, 2.0);
  EXPECT_FALSE(progress_style(ProgressMode::kOff, true).enabled);
  EXPECT_TRUE(progress_style(ProgressMode::kTty, false).carriage_return);
  EXPECT_FALSE(progress_style(ProgressMode::kLines, true).carriage_return);

  const std::string in_place = progress_output(counts(), 1.0, tty, false);
  EXPECT_EQ(in_place.front(), '\r');
  EXPECT_NE(in_place.find("\x1b[K"), std::string::npos);
  EXPECT_EQ(in_place.find('\n'), std::string::npos);
  EXPECT_EQ(progress_output(counts(), 1.0, tty, true).back(), '\n');
  const std::string line = progress_output(counts(), 1.0, lines, false);
  EXPECT_NE(line.front(), '\r');
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\r'), std::string::npos);
}

TEST(ProgressTest, ParsesModes) {
  ProgressMode m;
  ASSERT_TRUE(parse_progress_mode("off", m));
  EXPECT_EQ(m, ProgressMode::kOff);
  ASSERT_TRUE(parse_progress_mode("lines", m));
  EXPECT_EQ(m, ProgressMode::kLines);
  EXPECT_FALSE(parse_progress_mode("loud", m));
}

// ---- CSV -------------------------------------------------------------------------------------

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> fields;
  std::string cur;
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        cur += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cur += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  fields.push_back(cur);
  return fields;
}

TEST(CsvTest, Escape) {
  EXPECT_EQ(csv_escape("plain"), "plain");
  EXPECT_EQ(csv_escape("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_escape("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_escape("two\nlines"), "\"two\nlines\"");
}

TEST(CsvTest, RowsMatchTheHeader) {
  const std::string header = csv_header();
  ASSERT_EQ(header.back(), '\n');
  const auto names = split_csv_line(header.substr(0, header.size() - 1));
  ASSERT_EQ(names.size(), 22u);
  EXPECT_EQ(names.front(), "index");
  EXPECT_EQ(names.back(), "error_detail");

  stats::RequestRecord ok;
  ok.index = 7;
  ok.http_status = 200;
  ok.start_s = 1.5;
  ok.ttft_s = 0.120;
  ok.e2e_s = 1.120;
  ok.itls_s = {0.25, 0.5, 0.25};
  ok.prompt_tokens = 100;
  ok.output_tokens = 5;
  ok.replica = "r1";
  ok.predicted_ttft_s = 0.1;
  ok.send_lateness_s = 0.0002;
  CsvRow row;
  row.record = &ok;
  row.scheduled_s = 1.4998;
  row.expected_output_tokens = 5;
  row.tag = "short";
  row.session = "conv-1";
  row.turn = 2;
  std::string out;
  append_csv_row(out, row);
  ASSERT_EQ(out.back(), '\n');
  auto f = split_csv_line(out.substr(0, out.size() - 1));
  ASSERT_EQ(f.size(), names.size()) << out;
  std::map<std::string, std::string> by_name;
  for (size_t i = 0; i < names.size(); ++i) by_name[names[i]] = f[i];
  EXPECT_EQ(by_name["index"], "7");
  EXPECT_EQ(by_name["status"], "200");
  EXPECT_EQ(by_name["error"], "");
  EXPECT_EQ(by_name["ttft_ms"], "120.000");
  EXPECT_EQ(by_name["tpot_ms"], "250.000");  // (1.12 - 0.12) / 4
  EXPECT_EQ(by_name["e2e_ms"], "1120.000");
  EXPECT_EQ(by_name["itl_count"], "3");
  EXPECT_EQ(by_name["itl_mean_ms"], "333.333");
  EXPECT_EQ(by_name["itl_max_ms"], "500.000");
  EXPECT_EQ(by_name["send_lateness_ms"], "0.200");
  EXPECT_EQ(by_name["replica"], "r1");
  EXPECT_EQ(by_name["predicted_ttft_ms"], "100.000");
  EXPECT_EQ(by_name["predicted_e2e_ms"], "");
  EXPECT_EQ(by_name["tag"], "short");
  EXPECT_EQ(by_name["session"], "conv-1");
  EXPECT_EQ(by_name["turn"], "2");

  stats::RequestRecord bad;
  bad.index = 8;
  bad.http_status = 500;
  bad.error_kind = "http_500";
  bad.e2e_s = 0.01;
  row.record = &bad;
  row.error_detail = "engine said \"no\", twice";
  out.clear();
  append_csv_row(out, row);
  f = split_csv_line(out.substr(0, out.size() - 1));
  ASSERT_EQ(f.size(), names.size()) << out;
  for (size_t i = 0; i < names.size(); ++i) by_name[names[i]] = f[i];
  EXPECT_EQ(by_name["error"], "http_500");
  EXPECT_EQ(by_name["ttft_ms"], "");
  EXPECT_EQ(by_name["tpot_ms"], "");
  EXPECT_EQ(by_name["e2e_ms"], "");
  EXPECT_EQ(by_name["itl_count"], "0");
  EXPECT_EQ(by_name["itl_mean_ms"], "");
  EXPECT_EQ(by_name["error_detail"], "engine said \"no\", twice");
}

// ---- /v1/models ------------------------------------------------------------------------------

TEST(TargetTest, ReadsTheSimulatorsCard) {
  openai::ModelCard card;
  card.id = "sim-model";
  card.root = "sim-model";
  card.max_model_len = 4096;
  card.eta_time_scale = 0.25;
  std::vector<ModelCardInfo> cards;
  std::string error;
  ASSERT_TRUE(parse_models_body(openai::models_body({&card, 1}), cards, error)) << error;
  ASSERT_EQ(cards.size(), 1u);
  EXPECT_EQ(cards[0].id, "sim-model");
  EXPECT_EQ(cards[0].max_model_len, 4096);
  ASSERT_TRUE(cards[0].time_scale);
  EXPECT_DOUBLE_EQ(*cards[0].time_scale, 0.25);
  // An integral scale is written as a JSON integer.
  card.eta_time_scale = 20;
  ASSERT_TRUE(parse_models_body(openai::models_body({&card, 1}), cards, error)) << error;
  ASSERT_TRUE(cards[0].time_scale);
  EXPECT_DOUBLE_EQ(*cards[0].time_scale, 20.0);
}

TEST(TargetTest, RealVllmCardHasNoScale) {
  std::vector<ModelCardInfo> cards;
  std::string error;
  ASSERT_TRUE(parse_models_body(
      R"({"object":"list","data":[{"id":"meta-llama/Llama-3.1-8B","object":"model",
          "max_model_len":131072},{"id":"lora-a","parent":"meta-llama/Llama-3.1-8B"}]})",
      cards, error));
  ASSERT_EQ(cards.size(), 2u);
  EXPECT_FALSE(cards[0].time_scale);
  EXPECT_EQ(cards[0].max_model_len, 131072);
  EXPECT_EQ(cards[1].max_model_len, 0);
  EXPECT_EQ(find_model(cards, "")->id, "meta-llama/Llama-3.1-8B");
  EXPECT_EQ(find_model(cards, "lora-a")->id, "lora-a");
  EXPECT_EQ(find_model(cards, "other"), nullptr);
}

TEST(TargetTest, RejectsOtherShapes) {
  std::vector<ModelCardInfo> cards;
  std::string error;
  EXPECT_FALSE(parse_models_body("<html>", cards, error));
  EXPECT_NE(error.find("not JSON"), std::string::npos);
  EXPECT_FALSE(parse_models_body(R"({"object":"list"})", cards, error));
  EXPECT_FALSE(parse_models_body(R"({"object":"list","data":[]})", cards, error));
  EXPECT_NE(error.find("no model"), std::string::npos);
}

}  // namespace
}  // namespace eta::bench
