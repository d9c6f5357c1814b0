// Exact prompt tokens for KV-event matching (core/tokenize.hpp), in virtual time: a long prompt
// is tokenized by a replica before it is routed (and a short one is not), the exact block hashes
// match what a replica's events stored, a timeout or an error falls back to the estimate within
// the bound, a failing replica is skipped for a while, repeated prompts come from the cache.
#include <gtest/gtest.h>

#include "engine/engine.hpp"
#include "engine/tokenizer.hpp"
#include "fake_env.hpp"
#include "predict/token_estimate.hpp"
#include "router/core/tokenize.hpp"

namespace eta::router::testing {
namespace {

const char* kOk =
    R"({"id":"c1","object":"text_completion","model":"m","choices":[{"index":0,"text":"ok","finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}})";

// What each routing decision saw.
struct Seen {
  int chosen = -1;
  int prompt_tokens = 0;
  int cached_tokens = 0;
  TokenSource source = TokenSource::kEstimate;
  double tokenize_s = 0;
};

struct DecisionObserver final : CallObserver, ReplicaObserver {
  std::vector<Seen> seen;
  std::vector<int> statuses;
  void decided(const Call& c, const cluster::Decision&, int chosen) override {
    seen.push_back(Seen{chosen, c.prepared.features.prompt_tokens,
                        chosen >= 0 ? c.prepared.features.cached_tokens_on(chosen) : 0,
                        c.tokens_source, c.tokenize_s});
  }
  void finished(const Call&, int status) override { statuses.push_back(status); }
};

// ~`words` toy tokens of text ("w0 w1 ...": each " wN" one token).
std::string words(int n, const char* tag = "w") {
  std::string s;
  for (int i = 0; i < n; ++i) s += (i ? " " : "") + std::string(tag) + std::to_string(i);
  return s;
}

// The model's "real" tokens for a prompt: ids no toy tokenizer gives.
std::vector<uint32_t> model_tokens(int n, uint32_t base = 50000) {
  std::vector<uint32_t> t;
  for (int i = 0; i < n; ++i) t.push_back(base + static_cast<uint32_t>(i));
  return t;
}

std::string tokenize_answer(const std::vector<uint32_t>& t) {
  std::string s = R"({"count":)" + std::to_string(t.size()) + R"(,"max_model_len":4096,"tokens":[)";
  for (size_t i = 0; i < t.size(); ++i) s += (i ? "," : "") + std::to_string(t[i]);
  return s + R"(],"token_strs":null})";
}

// A BlockStored batch of `tokens`' full blocks (a chain from the root).
kv_events::EventBatch stored(const std::vector<uint32_t>& tokens) {
  kv_events::Event e;
  e.type = kv_events::EventType::kBlockStored;
  e.block_size = kHashBlockSize;
  const size_t blocks = tokens.size() / kHashBlockSize;
  for (size_t b = 0; b < blocks; ++b) e.block_hashes.push_back(0xabc000 + b);  // opaque
  e.token_ids.assign(tokens.begin(), tokens.begin() + static_cast<long>(blocks * kHashBlockSize));
  kv_events::EventBatch batch;
  batch.events.push_back(e);
  return batch;
}

struct TokenizeFixture {
  FakeEnv env;
  RouterMetrics metrics{"cache-aware"};
  DecisionObserver observer;
  std::unique_ptr<RouterCore> core;

  static RouterConfig config(int min_tokens = 64, double timeout_s = 0.002) {
    RouterConfig c;
    c.policy.name = "cache-aware";
    c.kv_events_tokenize.min_prompt_tokens = min_tokens;
    c.kv_events_tokenize.timeout_s = timeout_s;
    return c;
  }
  // `n` healthy replicas serving "m"; `events`: the first ones whose KV events are live.
  TokenizeFixture(int n, int events, RouterConfig c = config()) {
    core = std::make_unique<RouterCore>(c, RouterCore::Ports{&env, &metrics, &observer, &observer});
    add_serving_replicas(*core, n);
    prefix::KvEventIndex& kv = core->state().kv_events();
    for (int i = 0; i < events; ++i) {
      kv.set_active(i, true);
      kv.apply(i, kv_events::EventBatch{}, env.now());  // a first batch: live
    }
  }
  std::shared_ptr<FakeExchange> send(const std::string& body,
                                     const std::string& path = "/v1/completions") {
    http::Request r;
    r.method = "POST";
    r.target = path;
    r.headers.emplace_back("content-type", "application/json");
    r.body = body;
    auto e = std::make_shared<FakeExchange>(std::move(r));
    const RouteMatch m = match_route("POST", e->request().path());
    core->proxy(e, *m.spec, m.id);
    env.run_posted();
    return e;
  }
  static std::string completion(const std::string& prompt) {
    return R"({"model":"m","prompt":")" + prompt + R"(","max_tokens":4})";
  }
  double metric(const std::string& series) {
    const std::string text = "\n" + metrics.registry.render();
    const size_t pos = text.find("\n" + series + " ");
    if (pos == std::string::npos) return 0;
    return std::stod(text.substr(pos + series.size() + 2));
  }
};

TEST(Tokenize, LongPromptIsTokenizedFirstAndItsExactBlocksMatchTheEvents) {
  TokenizeFixture f(2, 2);
  const std::vector<uint32_t> exact = model_tokens(160);  // 10 blocks
  f.core->state().kv_events().apply(1, stored(exact), f.env.now());
  const std::string prompt = words(200);
  // The toy tokenizer's blocks of this prompt are not what replica 1 stored.
  predict::PromptEstimate toy;
  predict::estimate_prompt(prompt, kHashBlockSize, toy);
  EXPECT_EQ(f.core->state().kv_events().match(1, toy.block_hashes), 0u);

  auto e = f.send(TokenizeFixture::completion(prompt));
  ASSERT_EQ(f.env.sent.size(), 1u);  // only /tokenize so far: the request waits for it
  const UpstreamRequest& t = *f.env.sent[0];
  EXPECT_EQ(t.request.target, "/tokenize");
  EXPECT_EQ(t.request.method, "POST");
  EXPECT_EQ(t.replica, 0);  // both live, both idle: the first
  EXPECT_EQ(t.request.body_storage, R"({"model":"m","prompt":")" + prompt + R"("})");
  EXPECT_TRUE(f.observer.seen.empty());
  f.env.advance(0.0005);
  f.env.sent[0]->answer(200, tokenize_answer(exact));
  f.env.run_posted();
  ASSERT_EQ(f.env.sent.size(), 2u);
  EXPECT_EQ(f.env.sent[1]->request.target, "/v1/completions");
  EXPECT_EQ(f.env.sent[1]->replica, 1);  // where the events say the prefix is
  ASSERT_EQ(f.observer.seen.size(), 1u);
  const Seen& s = f.observer.seen[0];
  EXPECT_EQ(s.source, TokenSource::kTokenize);
  EXPECT_EQ(s.prompt_tokens, 160);  // the model's count, not the estimate (200)
  EXPECT_EQ(s.cached_tokens, 159);  // every block (vLLM recomputes the last token)
  EXPECT_NEAR(s.tokenize_s, 0.0005, 1e-9);
  f.env.sent[1]->answer(200, kOk);
  EXPECT_EQ(e->status(), 200);
  EXPECT_EQ(f.metric(R"(eta_prompt_tokens_source_total{source="tokenize"})"), 1);
}

TEST(Tokenize, ShortPromptIsNotTokenized) {
  TokenizeFixture f(2, 2);
  auto e = f.send(TokenizeFixture::completion(words(40)));  // under 64
  ASSERT_EQ(f.env.sent.size(), 1u);
  EXPECT_EQ(f.env.sent[0]->request.target, "/v1/completions");
  EXPECT_EQ(f.observer.seen.at(0).source, TokenSource::kEstimate);
  EXPECT_EQ(f.metric(R"(eta_prompt_tokens_source_total{source="estimate"})"), 1);
}

TEST(Tokenize, NotWithoutLiveEventsNorWhenOffNorForTokenIdsBatchesMediaOrOtherApis) {
  {
    TokenizeFixture f(2, 0);  // nobody publishes: the router's own index, no call
    f.send(TokenizeFixture::completion(words(200)));
    ASSERT_EQ(f.env.sent.size(), 1u);
    EXPECT_EQ(f.env.sent[0]->request.target, "/v1/completions");
  }
  {
    TokenizeFixture f(2, 2, TokenizeFixture::config(0));  // off
    f.send(TokenizeFixture::completion(words(200)));
    EXPECT_EQ(f.env.sent.at(0)->request.target, "/v1/completions");
  }
  {
    TokenizeFixture f(2, 2);
    std::string ids;
    for (int i = 0; i < 200; ++i) ids += (i ? "," : "") + std::to_string(i);
    f.send(R"({"model":"m","prompt":[)" + ids + R"(],"max_tokens":4})");
    EXPECT_EQ(f.env.sent.at(0)->request.target, "/v1/completions");  // exact already
  }
  {
    TokenizeFixture f(2, 2);
    const std::string p = words(200);
    f.send(R"({"model":"m","prompt":[")" + p + R"(",")" + p + R"("],"max_tokens":4})");  // batch
    f.send(
        R"({"model":"m","max_tokens":4,"messages":[{"role":"user","content":[{"type":"text","text":")" +
            p + R"("},{"type":"image_url","image_url":{"url":"http://x/i.png"}}]}]})",
        "/v1/chat/completions");                                         // a media part
    f.send(R"({"model":"m","input":")" + p + R"("})", "/v1/responses");  // another API
    ASSERT_EQ(f.env.sent.size(), 3u);
    for (const auto& u : f.env.sent) EXPECT_NE(u->request.target, "/tokenize");
  }
}

TEST(Tokenize, TimeoutFallsBackToTheEstimateWithinTheBound) {
  TokenizeFixture f(2, 2, TokenizeFixture::config(64, 0.002));
  auto e = f.send(TokenizeFixture::completion(words(200)));
  ASSERT_EQ(f.env.sent.size(), 1u);
  f.env.advance(0.0019);
  EXPECT_EQ(f.env.sent.size(), 1u);  // still waiting
  f.env.advance(0.0002);             // past the bound
  ASSERT_EQ(f.env.sent.size(), 2u);
  EXPECT_TRUE(f.env.sent[0]->canceled);
  EXPECT_EQ(f.env.sent[1]->request.target, "/v1/completions");
  const Seen& s = f.observer.seen.at(0);
  EXPECT_EQ(s.source, TokenSource::kTimeout);
  EXPECT_EQ(s.prompt_tokens, 200);  // the estimate
  EXPECT_NEAR(s.tokenize_s, 0.002, 1e-9);
  // A late answer changes nothing.
  f.env.sent[0]->answer(200, tokenize_answer(model_tokens(160)));
  EXPECT_EQ(f.env.sent.size(), 2u);
  f.env.sent[1]->answer(200, kOk);
  EXPECT_EQ(e->status(), 200);
  EXPECT_EQ(f.metric(R"(eta_prompt_tokens_source_total{source="timeout"})"), 1);
}

TEST(Tokenize, ErrorsFallBackAtOnceAndAFailingReplicaIsSkippedForAWhile) {
  TokenizeFixture f(1, 1);
  for (int i = 0; i < TokenizeHealth::kFailuresBeforeBackoff; ++i) {
    f.send(TokenizeFixture::completion(words(200, i % 2 ? "a" : "b")));
    auto t = f.env.pending().back();
    ASSERT_EQ(t->request.target, "/tokenize");
    if (i == 0) {
      t->answer(500, R"({"error":"boom"})");
    } else if (i == 1) {
      t->complete(http::ClientError::kConnectFailed, false);
    } else {
      t->answer(200, R"({"count":1,"tokens":["x"]})");  // unreadable: an error too
    }
    f.env.run_posted();
    EXPECT_EQ(f.env.sent.back()->request.target, "/v1/completions");
    EXPECT_EQ(f.observer.seen.back().source, TokenSource::kError);
    EXPECT_EQ(f.observer.seen.back().tokenize_s, 0);
  }
  // The third in a row was a bad answer with status 200: it counts. Now the replica is skipped.
  f.send(TokenizeFixture::completion(words(200, "c")));
  EXPECT_EQ(f.env.sent.back()->request.target, "/v1/completions");
  EXPECT_EQ(f.observer.seen.back().source, TokenSource::kEstimate);
  f.env.advance(TokenizeHealth::kBackoffS);
  f.send(TokenizeFixture::completion(words(200, "d")));
  EXPECT_EQ(f.env.sent.back()->request.target, "/tokenize");  // asked again
}

TEST(Tokenize, ABadRequestDoesNotMakeTheReplicaSkipped) {
  TokenizeFixture f(1, 1);
  for (int i = 0; i < 4; ++i) {
    f.send(TokenizeFixture::completion(words(200, i % 2 ? "a" : "b")));
    auto t = f.env.sent.back();
    ASSERT_EQ(t->request.target, "/tokenize") << i;
    t->answer(400, R"({"error":"bad"})");
    f.env.run_posted();
  }
}

TEST(Tokenize, ARepeatedPromptComesFromTheCache) {
  TokenizeFixture f(1, 1);
  const std::string body = TokenizeFixture::completion(words(200));
  f.send(body);
  f.env.sent[0]->answer(200, tokenize_answer(model_tokens(170)));
  f.env.run_posted();
  ASSERT_EQ(f.env.sent.size(), 2u);
  f.env.sent[1]->answer(200, kOk);
  f.send(body);
  ASSERT_EQ(f.env.sent.size(), 3u);
  EXPECT_EQ(f.env.sent[2]->request.target, "/v1/completions");  // no second /tokenize
  EXPECT_EQ(f.observer.seen.back().source, TokenSource::kCache);
  EXPECT_EQ(f.observer.seen.back().prompt_tokens, 170);
  // No cache: asked again.
  RouterConfig c = TokenizeFixture::config();
  c.kv_events_tokenize.cache_tokens = 0;
  TokenizeFixture g(1, 1, c);
  g.send(body);
  g.env.sent[0]->answer(200, tokenize_answer(model_tokens(170)));
  g.env.run_posted();
  g.env.sent[1]->answer(200, kOk);
  g.send(body);
  EXPECT_EQ(g.env.sent.back()->request.target, "/tokenize");
}

TEST(Tokenize, ChatSendsTheMessagesAndWhatChangesTheTemplate) {
  TokenizeFixture f(2, 1);  // replica 0 publishes; replica 1 does not
  const std::string messages =
      R"([{"role":"system","content":")" + words(120) + R"("},{"role":"user","content":"hi"}])";
  f.send(
      R"({"model":"m","messages":)" + messages +
          R"(,"add_generation_prompt":true,"chat_template_kwargs":{"enable_thinking":false},"temperature":0.5,"max_tokens":4})",
      "/v1/chat/completions");
  ASSERT_EQ(f.env.sent.size(), 1u);
  EXPECT_EQ(f.env.sent[0]->replica, 0);  // the one whose events are matched
  EXPECT_EQ(
      f.env.sent[0]->request.body_storage,
      R"({"model":"m","messages":)" + messages +
          R"(,"add_generation_prompt":true,"chat_template_kwargs":{"enable_thinking":false}})");
  f.env.sent[0]->answer(200, tokenize_answer(model_tokens(140)));
  f.env.run_posted();
  EXPECT_EQ(f.observer.seen.at(0).source, TokenSource::kTokenize);
  EXPECT_EQ(f.observer.seen.at(0).prompt_tokens, 140);
}

TEST(Tokenize, ClientGoneWhileTokenizingCancelsItAndNothingIsDispatched) {
  TokenizeFixture f(1, 1);
  auto e = f.send(TokenizeFixture::completion(words(200)));
  ASSERT_EQ(f.env.pending().size(), 1u);
  e->disconnect();
  EXPECT_TRUE(f.env.sent[0]->canceled);
  EXPECT_EQ(f.observer.statuses, std::vector<int>{499});
  f.env.advance(1);
  EXPECT_EQ(f.env.sent.size(), 1u);
  EXPECT_EQ(f.core->open_calls(), 0u);
}

TEST(Tokenize, ParsesTheTokensOfAnAnswer) {
  std::vector<uint32_t> t;
  EXPECT_TRUE(parse_tokenize_tokens(
      R"({"count":3,"max_model_len":8,"tokens":[1, 22 ,4294967295],"token_strs":null})", t));
  EXPECT_EQ(t, (std::vector<uint32_t>{1, 22, 4294967295u}));
  EXPECT_TRUE(parse_tokenize_tokens(R"({"tokens":[]})", t));
  EXPECT_TRUE(t.empty());
  for (const char* bad :
       {R"({"count":3})", R"({"tokens":[1,-2]})", R"({"tokens":[4294967296]})",
        R"({"tokens":[1,]})", R"({"tokens":"1,2"})", R"({"tokens":[1.5]})", R"([1,2])"})
    EXPECT_FALSE(parse_tokenize_tokens(bad, t)) << bad;
}

TEST(Tokenize, CompletionBodyEscapesThePromptAndKeepsAddSpecialTokens) {
  const std::string body = R"({"model":"pub","prompt":["a \"q\"\n"],"add_special_tokens":false})";
  EXPECT_EQ(tokenize_request_body(openai::Api::kCompletions, body, "a \"q\"\n", "served"),
            R"({"model":"served","prompt":"a \"q\"\u000a","add_special_tokens":false})");
  EXPECT_EQ(tokenize_request_body(openai::Api::kChat, R"({"model":"m","prompt":"x"})", "x", "m"),
            "");
}

TEST(Tokenize, CacheDropsTheLeastRecentlyUsedBeyondItsTokens) {
  TokenCache c(10);
  c.put(1, {1, 2, 3, 4});
  c.put(2, {5, 6, 7, 8});
  ASSERT_NE(c.find(1), nullptr);  // 1 is now the most recent
  c.put(3, {9, 10, 11});          // 11 tokens: 2 goes
  EXPECT_EQ(c.find(2), nullptr);
  EXPECT_NE(c.find(1), nullptr);
  EXPECT_NE(c.find(3), nullptr);
  EXPECT_EQ(c.tokens(), 7u);
  c.put(4, std::vector<uint32_t>(11, 1));  // larger than the whole cache: not kept
  EXPECT_EQ(c.find(4), nullptr);
  c.set_max_tokens(0);
  EXPECT_EQ(c.size(), 0u);
}

}  // namespace
}  // namespace eta::router::testing
