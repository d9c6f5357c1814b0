#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "metrics/registry.hpp"
#include "router/access_log.hpp"
#include "router/router_metrics.hpp"

namespace eta::router {
namespace {

TEST(AccessLog, FormatsEveryKeyWithNullsForUnknowns) {
  AccessRecord r;
  r.unix_time_s = 1764071523.25;  // 2025-11-25T11:52:03.250Z
  r.request_id = 42;
  r.policy = "eta";
  r.status = 401;
  r.error = "unauthorized";
  std::string line;
  format_access_record(r, line);
  EXPECT_EQ(line,
            "{\"time\":\"2025-11-25T11:52:03.250Z\",\"request_id\":42,\"replica\":null,"
            "\"policy\":\"eta\",\"model\":null,\"prompt_tokens\":0,\"output_tokens\":null,"
            "\"predicted_ttft_ms\":null,\"ttft_ms\":null,\"predicted_e2e_ms\":null,"
            "\"e2e_ms\":null,\"dispatch_ms\":null,\"status\":401,\"retries\":0,"
            "\"stream\":false,\"error\":\"unauthorized\"}");
}

TEST(AccessLog, FormatsNumbersAndEscapesStrings) {
  AccessRecord r;
  r.unix_time_s = 0.999;
  r.request_id = 7;
  r.replica = "http://127.0.0.1:8001";
  r.policy = "eta";
  r.model = "m\"o\\d\ne\x01";
  r.prompt_tokens = 12;
  r.output_tokens = 30;
  r.predicted_ttft_ms = 41.25;
  r.ttft_ms = 44.0;
  r.predicted_e2e_ms = 300.5;
  r.e2e_ms = 310.0004;
  r.dispatch_ms = 0.0125;
  r.status = 200;
  r.retries = 1;
  r.stream = true;
  std::string line;
  format_access_record(r, line);
  EXPECT_EQ(line,
            "{\"time\":\"1970-01-01T00:00:00.999Z\",\"request_id\":7,"
            "\"replica\":\"http://127.0.0.1:8001\",\"policy\":\"eta\","
            "\"model\":\"m\\\"o\\\\d\\ne\\u0001\",\"prompt_tokens\":12,\"output_tokens\":30,"
            "\"predicted_ttft_ms\":41.250,\"ttft_ms\":44.000,\"predicted_e2e_ms\":300.500,"
            "\"e2e_ms\":310.000,\"dispatch_ms\":0.013,\"status\":200,\"retries\":1,"
            "\"stream\":true,\"error\":null}");
}

TEST(AccessLog, OpenRejectsBadTargetsAndOffIsNoLog) {
  std::string error;
  EXPECT_EQ(AccessLog::open("off", error), nullptr);
  EXPECT_EQ(error, "");
  EXPECT_EQ(AccessLog::open("/nonexistent-eta-dir/sub/access.log", error), nullptr);
  EXPECT_NE(error.find("cannot open access log"), std::string::npos) << error;
  EXPECT_FALSE(std::filesystem::exists("/nonexistent-eta-dir"));
  error.clear();
  EXPECT_EQ(AccessLog::open("", error), nullptr);
  EXPECT_NE(error.find("'-' (stdout) or 'off'"), std::string::npos) << error;
}

TEST(AccessLog, WritesEveryLineBeforeItIsDestroyed) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("eta-access-log-test-" + std::to_string(::getpid()) + ".log");
  std::filesystem::remove(path);
  {
    std::string error;
    auto log = AccessLog::open(path.string(), error);
    ASSERT_NE(log, nullptr) << error;
    AccessRecord r;
    r.policy = "eta";
    for (int i = 0; i < 20000; ++i) {  // more than the queue holds: the writer must keep up
      r.request_id = static_cast<uint64_t>(i);
      log->write(r);
    }
  }
  std::ifstream in(path);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ASSERT_NE(line.find("\"request_id\":" + std::to_string(n) + ","), std::string::npos) << line;
    ++n;
  }
  EXPECT_EQ(n, 20000);
  std::filesystem::remove(path);
}

TEST(Logging, RejectsUnknownLevelAndFormat) {
  std::string error;
  EXPECT_FALSE(setup_logging("loud", "text", error));
  EXPECT_NE(error.find("log level must be one of"), std::string::npos) << error;
  EXPECT_FALSE(setup_logging("info", "xml", error));
  EXPECT_EQ(error, "log format must be text or json; got 'xml'");
  EXPECT_TRUE(setup_logging("info", "json", error));
  EXPECT_TRUE(setup_logging("warn", "text", error));
}

TEST(RouterMetrics, NamesLabelsAndBuckets) {
  RouterMetrics m("eta");
  m.count_request("http://a:1", 200);
  m.ttft_prediction_error.observe(-0.2);
  m.ttft_prediction_error.observe(0.04);
  m.e2e_prediction_error.observe(3.0);
  m.rejections.with({"shed_slo"}).inc();
  m.failovers.with({"http://a:1"}).inc();
  const std::string text = m.registry.render();
  EXPECT_NE(text.find("eta_requests_total{replica=\"http://a:1\",policy=\"eta\",status=\"200\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE eta_ttft_prediction_error_ratio histogram"), std::string::npos);
  EXPECT_NE(text.find("eta_ttft_prediction_error_ratio_bucket{policy=\"eta\",le=\"-0.2\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("eta_ttft_prediction_error_ratio_bucket{policy=\"eta\",le=\"0.05\"} 2"),
            std::string::npos);
  EXPECT_NE(text.find("eta_e2e_prediction_error_ratio_bucket{policy=\"eta\",le=\"2\"} 0"),
            std::string::npos);
  EXPECT_NE(text.find("eta_e2e_prediction_error_ratio_bucket{policy=\"eta\",le=\"5\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("eta_admission_rejections_total{reason=\"shed_slo\"} 1"), std::string::npos);
  EXPECT_NE(text.find("eta_failovers_total{replica=\"http://a:1\"} 1"), std::string::npos);
  // Base units and spans: latency 1 ms .. 60 s, decision time in the microseconds.
  EXPECT_DOUBLE_EQ(latency_buckets().front(), 0.001);
  EXPECT_DOUBLE_EQ(latency_buckets().back(), 60.0);
  EXPECT_DOUBLE_EQ(decision_buckets().front(), 1e-6);
  EXPECT_DOUBLE_EQ(prediction_error_buckets().front(), -0.9);
  EXPECT_DOUBLE_EQ(prediction_error_buckets().back(), 10.0);
}

}  // namespace
}  // namespace eta::router
