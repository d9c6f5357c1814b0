#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "engine/engine.hpp"
#include "engine/tokenizer.hpp"
#include "workload/catalog.hpp"
#include "workload/trace.hpp"

#ifndef ETA_SHARED_DIR
#error "ETA_SHARED_DIR must point at the shared directory holding data/"
#endif

namespace eta::workload {
namespace {

const std::string kDataDir = std::string(ETA_SHARED_DIR) + "/data";
const std::string kAzure = kDataDir + "/azure_llm_2023_conv.csv";
const std::string kMooncake = kDataDir + "/mooncake_conversation.jsonl";

std::string write_temp(const std::string& name, const std::string& content) {
  const auto dir = std::filesystem::temp_directory_path() / "eta_workload_trace_test";
  std::filesystem::create_directories(dir);
  const auto path = (dir / name).string();
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

void expect_consistent(const WorkloadRequest& r) {
  const std::string text = server_prompt_text(r);
  EXPECT_EQ(engine::count_tokens(text), r.prompt_tokens);
  EXPECT_EQ(r.block_hashes, engine::chain_block_hashes(engine::tokenize(text), 16));
}

TEST(WorkloadTrace, AzureConversationRowsAndArrivals) {
  TraceOptions options;
  options.compute_block_hashes = false;
  Workload w;
  std::string error;
  ASSERT_TRUE(load_azure_csv(kAzure, options, w, error)) << error;
  ASSERT_EQ(w.requests.size(), 19366u);
  EXPECT_EQ(w.requests[0].prompt_tokens, 374);
  EXPECT_EQ(w.requests[0].output_tokens, 44);
  EXPECT_EQ(w.requests[0].arrival_s, 0.0);
  EXPECT_EQ(w.requests[1].prompt_tokens, 396);
  EXPECT_EQ(w.requests[1].output_tokens, 109);
  EXPECT_NEAR(w.requests[1].arrival_s, 4.3145790, 1e-9);  // 18:15:50.9951690 - 18:15:46.6805900
  EXPECT_NEAR(w.requests[2].arrival_s, 4.5418770, 1e-9);
  EXPECT_NEAR(w.requests.back().arrival_s, 3501.721937, 1e-9);  // 19:14:08.4025270
  EXPECT_EQ(w.requests.back().prompt_tokens, 197);
  EXPECT_EQ(w.requests.back().output_tokens, 183);
  EXPECT_EQ(w.requests[5].index, 5);
  EXPECT_TRUE(w.requests[0].block_hashes.empty());
}

TEST(WorkloadTrace, AzurePromptsAreDistinctWithExactLengths) {
  TraceOptions options;
  options.max_requests = 20;
  Workload w;
  std::string error;
  ASSERT_TRUE(load_azure_csv(kAzure, options, w, error)) << error;
  ASSERT_EQ(w.requests.size(), 20u);
  for (const auto& r : w.requests) expect_consistent(r);
  for (std::size_t i = 1; i < w.requests.size(); ++i) {
    EXPECT_NE(w.requests[i].block_hashes.front(), w.requests[0].block_hashes.front());
  }
}

TEST(WorkloadTrace, MooncakeConversationRowsAndArrivals) {
  TraceOptions options;
  options.compute_block_hashes = false;
  Workload w;
  std::string error;
  ASSERT_TRUE(load_mooncake_jsonl(kMooncake, options, w, error)) << error;
  ASSERT_EQ(w.requests.size(), 12031u);
  EXPECT_EQ(w.requests[0].prompt_tokens, 6758);
  EXPECT_EQ(w.requests[0].output_tokens, 500);
  EXPECT_EQ(w.requests[0].prompt.size(), 14u);
  EXPECT_EQ(w.requests[1].prompt_tokens, 7322);
  EXPECT_EQ(w.requests[10].arrival_s, 3.0);  // timestamp 3000 ms
  EXPECT_EQ(w.requests[10].prompt_tokens, 13544);
  EXPECT_NEAR(w.requests.back().arrival_s, 3536.999, 1e-9);
  EXPECT_EQ(w.requests.back().prompt_tokens, 20774);
}

TEST(WorkloadTrace, MooncakeSharedIdsShareTextAndHashes) {
  TraceOptions options;
  options.max_requests = 230;
  Workload w;
  std::string error;
  ASSERT_TRUE(load_mooncake_jsonl(kMooncake, options, w, error)) << error;
  // Rows 0 and 1 share hash id 0 (one 512-token block, 32 KV blocks); rows 113 and 228 share
  // their first five ids.
  const auto& a = w.requests[0];
  const auto& b = w.requests[1];
  EXPECT_EQ(prompt_text(a).substr(0, 512 * 5), prompt_text(b).substr(0, 512 * 5));
  for (int i = 0; i < 32; ++i) ASSERT_EQ(a.block_hashes[i], b.block_hashes[i]);
  EXPECT_NE(a.block_hashes[32], b.block_hashes[32]);
  const auto& c = w.requests[113];
  const auto& d = w.requests[228];
  for (int i = 0; i < 5 * 32; ++i) ASSERT_EQ(c.block_hashes[i], d.block_hashes[i]) << i;
  EXPECT_NE(c.block_hashes[5 * 32], d.block_hashes[5 * 32]);
  for (int i : {0, 1, 113, 228}) expect_consistent(w.requests[i]);
  EXPECT_EQ(engine::count_tokens(prompt_text(w.requests[10])), 13544);
}

TEST(WorkloadTrace, NamedTracesAndOverrides) {
  WorkloadContext context;
  context.data_dir = kDataDir;
  context.compute_block_hashes = false;
  Workload w;
  std::string error;
  ASSERT_TRUE(make_workload("mooncake-conv:n=100,rate=2", context, w, error)) << error;
  EXPECT_EQ(w.name, "mooncake-conv");
  ASSERT_EQ(w.requests.size(), 100u);
  EXPECT_NEAR(99.0 / w.requests.back().arrival_s, 2.0, 1e-9);
  ASSERT_TRUE(make_workload("azure-conv:n=10,api=chat", context, w, error)) << error;
  ASSERT_EQ(w.requests.size(), 10u);
  EXPECT_EQ(w.requests[0].api, Api::kChat);
  EXPECT_EQ(w.requests[0].prompt_tokens, 374);
  context.data_dir = "/nonexistent";
  EXPECT_FALSE(make_workload("azure-conv", context, w, error));
  EXPECT_NE(error.find("/nonexistent/azure_llm_2023_conv.csv"), std::string::npos) << error;
}

TEST(WorkloadTrace, UserFilesInEitherFormat) {
  TraceOptions options;
  Workload w;
  std::string error;
  const auto csv = write_temp("mine.csv",
                              "time,prompt_tokens,output_tokens\n"
                              "10.5,100,20\n12.0,50,1\n");
  ASSERT_TRUE(load_trace_file(csv, options, w, error)) << error;
  ASSERT_EQ(w.requests.size(), 2u);
  EXPECT_EQ(w.requests[1].arrival_s, 1.5);
  EXPECT_EQ(w.requests[0].prompt_tokens, 100);
  const auto jsonl = write_temp("noext",
                                "\n{\"timestamp\": 500, \"input_length\": 40, "
                                "\"output_length\": 3}\n"
                                "{\"timestamp\": 1500.5, \"input_length\": 600, "
                                "\"output_length\": 9, \"hash_ids\": [7, 8]}\n");
  ASSERT_TRUE(load_trace_file(jsonl, options, w, error)) << error;
  ASSERT_EQ(w.requests.size(), 2u);
  EXPECT_NEAR(w.requests[1].arrival_s, 1.0005, 1e-12);
  EXPECT_EQ(w.requests[1].prompt_tokens, 600);
  expect_consistent(w.requests[0]);
  expect_consistent(w.requests[1]);
  // A .csv without a header is read positionally.
  const auto bare =
      write_temp("bare.csv", "2024-01-01 00:00:00,10,2\n2024-01-01 00:00:01.25,5,5\n");
  ASSERT_TRUE(load_trace_file(bare, options, w, error)) << error;
  EXPECT_EQ(w.requests[1].arrival_s, 1.25);
}

TEST(WorkloadTrace, BadInputsNameFileAndLine) {
  TraceOptions options;
  Workload w;
  std::string error;
  EXPECT_FALSE(load_trace_file("/nonexistent/trace.csv", options, w, error));
  EXPECT_NE(error.find("/nonexistent/trace.csv"), std::string::npos) << error;

  const auto bad_csv = write_temp("bad.csv",
                                  "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                                  "2023-11-16 18:15:46.6805900,374,44\n"
                                  "2023-11-16 18:15:47.0,abc,44\n");
  EXPECT_FALSE(load_azure_csv(bad_csv, options, w, error));
  EXPECT_NE(error.find(bad_csv + ":3:"), std::string::npos) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos);

  const auto bad_time = write_temp("bad_time.csv",
                                   "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                                   "2023-13-16 18:15:46,374,44\n");
  EXPECT_FALSE(load_azure_csv(bad_time, options, w, error));
  EXPECT_NE(error.find(bad_time + ":2:"), std::string::npos) << error;

  const auto short_row = write_temp("short.csv",
                                    "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                                    "2023-11-16 18:15:46,374\n");
  EXPECT_FALSE(load_azure_csv(short_row, options, w, error));
  EXPECT_NE(error.find(short_row + ":2:"), std::string::npos) << error;

  const auto bad_json = write_temp("bad.jsonl",
                                   "{\"timestamp\": 0, \"input_length\": 5, \"output_length\": 1}\n"
                                   "{\"timestamp\": 1, \"input_length\": 5, \n");
  EXPECT_FALSE(load_mooncake_jsonl(bad_json, options, w, error));
  EXPECT_NE(error.find(bad_json + ":2:"), std::string::npos) << error;

  const auto missing = write_temp("missing.jsonl", "{\"timestamp\": 0, \"output_length\": 1}\n");
  EXPECT_FALSE(load_mooncake_jsonl(missing, options, w, error));
  EXPECT_NE(error.find(missing + ":1:"), std::string::npos) << error;
  EXPECT_NE(error.find("input_length"), std::string::npos) << error;

  const auto bad_ids = write_temp("bad_ids.jsonl",
                                  "{\"timestamp\": 0, \"input_length\": 5, \"output_length\": 1, "
                                  "\"hash_ids\": [1, \"x\"]}\n");
  EXPECT_FALSE(load_mooncake_jsonl(bad_ids, options, w, error));
  EXPECT_NE(error.find(bad_ids + ":1:"), std::string::npos) << error;

  const auto empty = write_temp("empty.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n");
  EXPECT_FALSE(load_azure_csv(empty, options, w, error));
  EXPECT_NE(error.find("no requests"), std::string::npos) << error;
}

TEST(WorkloadTrace, ParsesTimestamps) {
  int64_t s = 0, ns = 0;
  ASSERT_TRUE(parse_timestamp("1970-01-02 00:00:01.5", s, ns));
  EXPECT_EQ(s, 86401);
  EXPECT_EQ(ns, 500000000);
  ASSERT_TRUE(parse_timestamp("2023-11-16T18:15:46.6805900", s, ns));
  EXPECT_EQ(s, 1700158546);
  EXPECT_EQ(ns, 680590000);
  EXPECT_FALSE(parse_timestamp("2023-11-16", s, ns));
  EXPECT_FALSE(parse_timestamp("2023-11-16 18:15:46.", s, ns));
  EXPECT_FALSE(parse_timestamp("2023-11-16 18:15:46x", s, ns));
}

}  // namespace
}  // namespace eta::workload
