#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "engine/engine.hpp"
#include "engine/tokenizer.hpp"
#include "workload/catalog.hpp"
#include "workload/synthetic.hpp"

namespace eta::workload {
namespace {

bool starts_with(const std::vector<uint64_t>& a, const std::vector<uint64_t>& prefix) {
  return a.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), a.begin());
}

double mean_of(const Workload& w, int WorkloadRequest::*field) {
  double sum = 0;
  for (const auto& r : w.requests) sum += r.*field;
  return sum / w.requests.size();
}

TEST(WorkloadSynthetic, LengthDistributions) {
  Rng rng(3);
  const LengthDist fixed = LengthDist::fixed(77);
  const LengthDist uni = LengthDist::uniform(10, 20);
  const LengthDist logn = LengthDist::lognormal(500, 1.0, 1, 1 << 20);
  double sum = 0, sq = 0;
  std::set<int> seen;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(fixed.draw(rng), 77);
    const int u = uni.draw(rng);
    ASSERT_GE(u, 10);
    ASSERT_LE(u, 20);
    seen.insert(u);
    const double v = logn.draw(rng);
    sum += v;
    sq += v * v;
  }
  EXPECT_EQ(seen.size(), 11u);
  const double mean = sum / n;
  const double cv = std::sqrt(sq / n - mean * mean) / mean;
  EXPECT_NEAR(mean, 500, 500 * 0.04);
  EXPECT_NEAR(cv, 1.0, 0.15);
  const LengthDist clamped = LengthDist::lognormal(500, 2.0, 100, 600);
  for (int i = 0; i < 1000; ++i) {
    const int v = clamped.draw(rng);
    ASSERT_GE(v, 100);
    ASSERT_LE(v, 600);
  }
}

TEST(WorkloadSynthetic, SyntheticLengthsRateAndDeterminism) {
  SyntheticParams p;
  p.n = 4000;
  p.rate = 20;
  p.input = LengthDist::fixed(300);
  p.output = LengthDist::uniform(5, 15);
  p.seed = 5;
  const Workload w = generate_synthetic(p);
  ASSERT_EQ(w.requests.size(), 4000u);
  for (const auto& r : w.requests) {
    ASSERT_EQ(r.prompt_tokens, 300);
    ASSERT_GE(r.output_tokens, 5);
    ASSERT_LE(r.output_tokens, 15);
    ASSERT_EQ(r.block_hashes.size(), 300u / 16);
  }
  EXPECT_NEAR(mean_of(w, &WorkloadRequest::output_tokens), 10, 0.2);
  EXPECT_NEAR(3999 / w.requests.back().arrival_s, 20, 1.0);
  // Unique prompts: no first block repeats.
  std::set<uint64_t> first;
  for (const auto& r : w.requests) first.insert(r.block_hashes.front());
  EXPECT_EQ(first.size(), w.requests.size());
  const Workload again = generate_synthetic(p);
  for (std::size_t i = 0; i < w.requests.size(); i += 97) {
    EXPECT_EQ(again.requests[i].arrival_s, w.requests[i].arrival_s);
    EXPECT_EQ(again.requests[i].block_hashes, w.requests[i].block_hashes);
  }
  p.seed = 6;
  EXPECT_NE(generate_synthetic(p).requests[1].block_hashes, w.requests[1].block_hashes);
}

TEST(WorkloadSynthetic, SharedPrefixShares) {
  SharedPrefixParams p;
  p.n = 4000;
  p.k = 5;
  p.prefix_tokens = 256;
  p.shared_fraction = 0.7;
  p.suffix = LengthDist::fixed(40);
  p.seed = 9;
  const Workload w = generate_shared_prefix(p);
  std::map<std::string, std::vector<uint64_t>> prefix_of;
  int shared = 0;
  std::set<uint64_t> unique_first;
  for (const auto& r : w.requests) {
    ASSERT_EQ(r.prompt_tokens, 296);
    if (r.tag == "unique") {
      unique_first.insert(r.block_hashes.front());
      continue;
    }
    ++shared;
    const std::vector<uint64_t> prefix(r.block_hashes.begin(), r.block_hashes.begin() + 16);
    auto [it, inserted] = prefix_of.emplace(r.tag, prefix);
    ASSERT_EQ(it->second, prefix) << r.tag;
  }
  EXPECT_EQ(prefix_of.size(), 5u);
  EXPECT_NEAR(static_cast<double>(shared) / w.requests.size(), 0.7, 0.03);
  EXPECT_EQ(unique_first.size(), w.requests.size() - shared);
  std::set<uint64_t> distinct_prefixes;
  for (const auto& [tag, prefix] : prefix_of) distinct_prefixes.insert(prefix.front());
  EXPECT_EQ(distinct_prefixes.size(), 5u);
}

TEST(WorkloadSynthetic, MultiTurnPromptsGrowByPreviousTurns) {
  MultiTurnParams p;
  p.conversations = 30;
  p.turns_min = 2;
  p.turns_max = 5;
  p.system_tokens = 64;
  p.seed = 4;
  const Workload w = generate_multi_turn(p);
  std::map<std::string, std::vector<const WorkloadRequest*>> by_session;
  for (const auto& r : w.requests) by_session[r.session_id].push_back(&r);
  EXPECT_EQ(by_session.size(), 30u);
  int checked = 0;
  for (const auto& [session, turns] : by_session) {
    ASSERT_GE(turns.size(), 2u) << session;
    ASSERT_LE(turns.size(), 5u) << session;
    for (std::size_t k = 0; k + 1 < turns.size(); ++k) {
      const WorkloadRequest& a = *turns[k];
      const WorkloadRequest& b = *turns[k + 1];
      ASSERT_EQ(a.turn, static_cast<int>(k));
      ASSERT_EQ(b.turn, static_cast<int>(k + 1));
      ASSERT_LT(a.arrival_s, b.arrival_s);
      const std::string ta = prompt_text(a);
      const std::string tb = prompt_text(b);
      // Turn k+1 = turn k's prompt + turn k's output (the simulator's text for its seed) + ...
      std::string answer;
      for (int i = 0; i < a.output_tokens; ++i)
        answer += engine::output_token_text(a.output_seed, i);
      ASSERT_EQ(tb.substr(0, ta.size()), ta);
      ASSERT_EQ(tb.substr(ta.size(), answer.size()), answer);
      ASSERT_GT(b.prompt_tokens, a.prompt_tokens + a.output_tokens);
      ASSERT_TRUE(starts_with(b.block_hashes, a.block_hashes));
      if (checked++ < 6) {
        ASSERT_EQ(engine::count_tokens(tb), b.prompt_tokens);
        ASSERT_EQ(b.block_hashes, engine::chain_block_hashes(engine::tokenize(tb), 16));
      }
    }
  }
  // Every conversation starts with the shared system prompt (4 blocks).
  const auto& first = w.requests.front().block_hashes;
  for (const auto& r : w.requests) {
    ASSERT_TRUE(std::equal(first.begin(), first.begin() + 4, r.block_hashes.begin()));
  }
}

TEST(WorkloadSynthetic, MultiTurnChatKeepsTheConversationPrefix) {
  WorkloadContext context;
  Workload w;
  std::string error;
  ASSERT_TRUE(make_workload("multi-turn:conversations=5,api=chat", context, w, error)) << error;
  std::map<std::string, const WorkloadRequest*> last;
  for (const auto& r : w.requests) {
    auto it = last.find(r.session_id);
    if (it != last.end()) {
      const std::string prev = server_prompt_text(*it->second);
      const std::string cur = server_prompt_text(r);
      // Everything up to the previous turn's trimmed content is shared.
      const std::size_t shared = prev.size() - std::string("\n<|assistant|>\n").size();
      ASSERT_EQ(cur.substr(0, shared), prev.substr(0, shared));
    }
    ASSERT_EQ(engine::count_tokens(server_prompt_text(r)), r.prompt_tokens);
    last[r.session_id] = &r;
  }
}

TEST(WorkloadSynthetic, BurstyMixHasBurstsOfSharedDocuments) {
  BurstyMixParams p;
  p.duration_s = 60;
  p.rate = 5;
  p.docs = 2;
  p.doc_tokens = 1024;
  p.burst_every_s = 20;
  p.first_burst_s = 5;
  p.burst_size = 10;
  p.burst_span_s = 2;
  p.seed = 12;
  const Workload w = generate_bursty_mix(p);
  int docs = 0, shorts = 0;
  std::map<std::string, uint64_t> doc_hash;
  for (const auto& r : w.requests) {
    if (r.tag == "short") {
      ++shorts;
      ASSERT_LT(r.arrival_s, 60);
      continue;
    }
    ++docs;
    ASSERT_GT(r.prompt_tokens, 1024);
    const double offset = std::fmod(r.arrival_s - 5, 20);
    ASSERT_GE(offset, 0);
    ASSERT_LT(offset, 2);
    auto [it, inserted] = doc_hash.emplace(r.tag, r.block_hashes[63]);
    ASSERT_EQ(it->second, r.block_hashes[63]) << r.tag;
  }
  EXPECT_EQ(docs, 30);  // bursts at 5, 25, 45
  EXPECT_NEAR(shorts, 300, 60);
  EXPECT_EQ(doc_hash.size(), 2u);
  for (std::size_t i = 1; i < w.requests.size(); ++i) {
    ASSERT_LE(w.requests[i - 1].arrival_s, w.requests[i].arrival_s);
    ASSERT_EQ(w.requests[i].index, static_cast<int64_t>(i));
  }
}

TEST(WorkloadCatalog, SpecsAndOverrides) {
  WorkloadSpec spec;
  std::string error;
  ASSERT_TRUE(parse_workload_spec("shared-prefix:k=8,L=2048,f=0.8", spec, error));
  EXPECT_EQ(spec.name, "shared-prefix");
  EXPECT_EQ(spec.params.at("L"), "2048");
  EXPECT_FALSE(parse_workload_spec("x:k", spec, error));
  EXPECT_FALSE(parse_workload_spec("x:k=1,k=2", spec, error));
  EXPECT_FALSE(parse_workload_spec(":k=1", spec, error));

  WorkloadContext context;
  context.seed = 1;
  Workload w;
  ASSERT_TRUE(make_workload("shared-prefix:k=8,L=2048,f=0.8,n=300,suffix_dist=fixed,suffix=10",
                            context, w, error))
      << error;
  EXPECT_EQ(w.name, "shared-prefix");
  ASSERT_EQ(w.requests.size(), 300u);
  std::set<std::string> tags;
  for (const auto& r : w.requests) {
    EXPECT_EQ(r.prompt_tokens, 2058);
    tags.insert(r.tag);
  }
  EXPECT_EQ(tags.size(), 9u);  // shared-0..7 and unique

  ASSERT_TRUE(
      make_workload("synthetic:n=50,in_dist=uniform,in_min=5,in_max=9,out=3,"
                    "out_dist=fixed,rate=inf",
                    context, w, error))
      << error;
  ASSERT_EQ(w.requests.size(), 50u);
  for (const auto& r : w.requests) {
    EXPECT_GE(r.prompt_tokens, 5);
    EXPECT_LE(r.prompt_tokens, 9);
    EXPECT_EQ(r.output_tokens, 3);
    EXPECT_EQ(r.arrival_s, 0.0);
  }
  ASSERT_TRUE(make_workload("bursty-mix:duration=30,n=40", context, w, error)) << error;
  EXPECT_EQ(w.requests.size(), 40u);
  ASSERT_TRUE(
      make_workload("multi-turn:conversations=3,turns_min=2,turns_max=2", context, w, error))
      << error;
  EXPECT_EQ(w.requests.size(), 6u);

  EXPECT_FALSE(make_workload("nope", context, w, error));
  EXPECT_NE(error.find("unknown workload 'nope'"), std::string::npos) << error;
  EXPECT_FALSE(make_workload("synthetic:bogus=1", context, w, error));
  EXPECT_NE(error.find("unknown key 'bogus'"), std::string::npos) << error;
  EXPECT_FALSE(make_workload("shared-prefix:f=1.5", context, w, error));
  EXPECT_NE(error.find("f='1.5'"), std::string::npos) << error;
  EXPECT_FALSE(make_workload("synthetic:api=grpc", context, w, error));
  EXPECT_FALSE(make_workload("multi-turn:turns_min=5,turns_max=2", context, w, error));
  EXPECT_FALSE(workload_help().empty());
  EXPECT_EQ(workload_names().size(), 6u);
}

TEST(WorkloadCatalog, SeedChangesTheWorkload) {
  WorkloadContext context;
  Workload a, b, c;
  std::string error;
  ASSERT_TRUE(make_workload("synthetic:n=20", context, a, error));
  ASSERT_TRUE(make_workload("synthetic:n=20", context, b, error));
  ASSERT_TRUE(make_workload("synthetic:n=20,seed=99", context, c, error));
  EXPECT_EQ(a.requests[3].block_hashes, b.requests[3].block_hashes);
  EXPECT_EQ(a.requests[3].arrival_s, b.requests[3].arrival_s);
  EXPECT_NE(a.requests[3].block_hashes, c.requests[3].block_hashes);
}

}  // namespace
}  // namespace eta::workload
