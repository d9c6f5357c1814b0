// The router's behaviour, specified in virtual time (tests/core/fake_env.hpp): RouterCore with
// a fake clock, fake replicas answered by hand and fake clients. Every 429 reason, the held-back
// 5xx, no retry after a byte, failover of unanswered requests, the queue, drain and removal,
// shutdown grace, reload's replica changes.
#include <gtest/gtest.h>

#include "fake_env.hpp"

namespace eta::router::testing {
namespace {

const char* kOk =
    R"({"id":"c1","object":"text_completion","model":"m","choices":[{"index":0,"text":"ok","finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}})";

RouterConfig with_admission(AdmissionConfig a) {
  RouterConfig c = CoreFixture::round_robin();
  c.admission = a;
  return c;
}

TEST(RouterCore, DispatchesAndRelaysABufferedAnswer) {
  CoreFixture f(2);
  auto e = f.send();
  ASSERT_EQ(f.env.sent.size(), 1u);
  EXPECT_EQ(f.env.sent[0]->request.target, "/v1/completions");
  f.env.sent[0]->answer(200, kOk);
  EXPECT_TRUE(e->done());
  EXPECT_EQ(e->status(), 200);
  EXPECT_EQ(e->body(), kOk);
  EXPECT_EQ(e->header("x-eta-replica"), "http://10.0.0.1:8000");
  EXPECT_EQ(f.core->total_in_flight(), 0);
  EXPECT_EQ(f.metric(R"(eta_output_tokens_total{replica="http://10.0.0.1:8000"})"), 2);
}

TEST(RouterCore, InFlightBoundWithoutQueueIs429ShedCapacity) {
  AdmissionConfig a;
  a.max_in_flight = 1;
  a.retry_after_s = 3;
  CoreFixture f(2, with_admission(a));
  auto first = f.send();
  auto second = f.send();
  EXPECT_EQ(f.env.sent.size(), 1u);
  EXPECT_EQ(second->status(), 429);
  EXPECT_EQ(second->header("retry-after"), "3");
  EXPECT_EQ(f.observer.errors.back(), "shed_capacity");
  EXPECT_EQ(f.metric(R"(eta_admission_rejections_total{reason="shed_capacity"})"), 1);
  EXPECT_FALSE(first->done());
}

TEST(RouterCore, PerReplicaBoundCountsEachReplica) {
  AdmissionConfig a;
  a.max_in_flight_per_replica = 1;
  CoreFixture f(2, with_admission(a));
  f.send();
  f.send();
  auto third = f.send();
  ASSERT_EQ(f.env.sent.size(), 2u);
  EXPECT_NE(f.env.sent[0]->replica, f.env.sent[1]->replica);
  EXPECT_EQ(third->status(), 429);
}

TEST(RouterCore, QueuedRequestIsDispatchedWhenOneFinishes) {
  AdmissionConfig a;
  a.max_in_flight = 1;
  a.queue_size = 2;
  CoreFixture f(1, with_admission(a));
  auto first = f.send();
  auto second = f.send();
  EXPECT_FALSE(second->done());
  EXPECT_EQ(f.core->queue_length(), 1u);
  ASSERT_EQ(f.env.sent.size(), 1u);
  f.env.advance(0.2);
  f.env.sent[0]->answer(200, kOk);
  ASSERT_EQ(f.env.sent.size(), 2u);  // pumped by the finish
  f.env.sent[1]->answer(200, kOk);
  EXPECT_EQ(second->status(), 200);
  EXPECT_EQ(f.core->queue_length(), 0u);
}

TEST(RouterCore, FullQueueIs429QueueFullAndWaitingOnesTimeOut) {
  AdmissionConfig a;
  a.max_in_flight = 1;
  a.queue_size = 1;
  a.queue_timeout_s = 0.5;
  CoreFixture f(1, with_admission(a));
  f.send();
  auto queued = f.send();
  auto third = f.send();
  EXPECT_EQ(third->status(), 429);
  EXPECT_EQ(f.observer.errors.back(), "queue_full");
  f.env.advance(0.4);
  EXPECT_FALSE(queued->done());
  f.env.advance(0.2);  // the queue timer fires at the deadline
  EXPECT_EQ(queued->status(), 429);
  EXPECT_EQ(f.observer.errors.back(), "queue_timeout");
  EXPECT_NE(queued->body().find("waited 0.5 s"), std::string::npos);
  EXPECT_EQ(f.env.sent.size(), 1u);
}

TEST(RouterCore, NewcomersQueueBehindWaitingRequests) {
  AdmissionConfig a;
  a.max_in_flight = 1;
  a.queue_size = 4;
  CoreFixture f(1, with_admission(a));
  f.send();
  auto second = f.send();
  auto third = f.send();
  f.env.sent[0]->answer(200, kOk);
  ASSERT_EQ(f.env.sent.size(), 2u);
  // The second (first in line) was dispatched, not the third.
  f.env.sent[1]->answer(200, kOk);
  EXPECT_EQ(second->status(), 200);
  EXPECT_FALSE(third->done() && third->status() != 200);
  ASSERT_EQ(f.env.sent.size(), 3u);
}

TEST(RouterCore, TtftObjectiveShedsWhenEveryReplicaIsPredictedOverIt) {
  AdmissionConfig a;
  a.ttft_slo_s = 1e-6;  // nothing is that fast
  CoreFixture f(2, with_admission(a));
  auto e = f.send();
  EXPECT_EQ(e->status(), 429);
  EXPECT_EQ(f.observer.errors.back(), "shed_slo");
  EXPECT_EQ(f.observer.sheds, 1);
  EXPECT_TRUE(f.env.sent.empty());
  // With a queue it waits, and its shed decision is logged once, not at every re-check.
  a.queue_size = 2;
  a.queue_timeout_s = 1;
  CoreFixture g(2, with_admission(a));
  auto w = g.send();
  g.env.advance(0.5);
  EXPECT_FALSE(w->done());
  EXPECT_EQ(g.observer.sheds, 1);
  g.env.advance(0.6);
  EXPECT_EQ(w->status(), 429);
  EXPECT_EQ(g.observer.errors.back(), "queue_timeout");
}

TEST(RouterCore, KeyRateLimitIs429RateLimited) {
  RouterConfig c = CoreFixture::round_robin();
  c.api_keys = {"k1"};
  c.rate_limit.requests_per_minute = 1;
  CoreFixture f(1, c);
  const http::Headers auth{{"authorization", "Bearer k1"}};
  f.send(R"({"model":"m","prompt":"hi","max_tokens":4})", "/v1/completions", auth);
  auto second = f.send(R"({"model":"m","prompt":"hi","max_tokens":4})", "/v1/completions", auth);
  EXPECT_EQ(second->status(), 429);
  EXPECT_EQ(f.observer.errors.back(), "rate_limited");
  EXPECT_FALSE(second->header("retry-after").empty());
  EXPECT_EQ(f.metric(R"(eta_admission_rejections_total{reason="rate_limited"})"), 0);
  auto anonymous = f.send();
  EXPECT_EQ(anonymous->status(), 401);
}

TEST(RouterCore, UnknownModelIs404AndNoRoutableReplica503) {
  CoreFixture f(1);
  auto e = f.send(R"({"model":"other","prompt":"hi"})");
  EXPECT_EQ(e->status(), 404);
  EXPECT_NE(e->body().find("\"param\":\"model\""), std::string::npos);
  f.core->drain(0, true);
  auto d = f.send();
  EXPECT_EQ(d->status(), 503);
  EXPECT_EQ(f.observer.errors.back(), "no_replica");
}

TEST(RouterCore, A5xxIsHeldBackAndRetriedElsewhere) {
  CoreFixture f(2);
  auto e = f.send();
  f.env.sent[0]->answer(500, R"({"error":{"message":"boom"}})");
  EXPECT_FALSE(e->done());
  ASSERT_EQ(f.env.sent.size(), 2u);
  EXPECT_NE(f.env.sent[1]->replica, f.env.sent[0]->replica);
  // Eligibility for the retry did not touch the shared state: the first replica is routable.
  EXPECT_TRUE(f.core->state().replica(f.env.sent[0]->replica).routable);
  f.env.sent[1]->answer(200, kOk);
  EXPECT_EQ(e->status(), 200);
  EXPECT_EQ(f.observer.errors.back(), "");  // the client saw no error
  EXPECT_EQ(f.metric(R"(eta_retries_total{replica="http://10.0.0.1:8000"})"), 1);
}

TEST(RouterCore, OutOfRetriesTheLastHeld5xxIsRelayed) {
  CoreFixture f(2);
  auto e = f.send();
  f.env.sent[0]->answer(503, R"({"error":{"message":"queue full 1"}})");
  ASSERT_EQ(f.env.sent.size(), 2u);
  // No other replica is left: this 5xx is relayed as it came, not held.
  f.env.sent[1]->answer(502, R"({"error":{"message":"second"}})");
  EXPECT_EQ(e->status(), 502);
  EXPECT_NE(e->body().find("second"), std::string::npos);
}

TEST(RouterCore, NoRetryOnceBytesReachedTheClient) {
  CoreFixture f(2);
  auto e = f.send(R"({"model":"m","prompt":"hi","max_tokens":4,"stream":true})");
  ASSERT_EQ(f.env.sent.size(), 1u);
  UpstreamRequest& u = *f.env.sent[0];
  u.head(200, true);
  u.body("data: {\"choices\":[{\"text\":\"a\"}]}\n\n");
  u.complete(http::ClientError::kReset);
  EXPECT_EQ(f.env.sent.size(), 1u);  // not retried
  EXPECT_TRUE(e->done());
  EXPECT_NE(e->body().find("failed mid-response"), std::string::npos);
  EXPECT_NE(e->body().find("data: [DONE]"), std::string::npos);
  EXPECT_EQ(f.observer.errors.back(), "mid_stream");
}

TEST(RouterCore, ConnectFailureRetriesAndCountsAgainstTheReplica) {
  RouterConfig c = CoreFixture::round_robin();
  c.health.failure_threshold = 1;
  CoreFixture f(2, c);
  auto e = f.send();
  f.env.sent[0]->complete(http::ClientError::kConnectRefused, false);
  ASSERT_EQ(f.env.sent.size(), 2u);
  EXPECT_FALSE(f.core->replicas().at(f.env.sent[0]->replica).routable());
  f.env.sent[1]->answer(200, kOk);
  EXPECT_EQ(e->status(), 200);
}

TEST(RouterCore, ProtocolErrorIsRetriedButTheReplicaStaysHealthy) {
  RouterConfig c = CoreFixture::round_robin();
  c.health.failure_threshold = 1;
  CoreFixture f(2, c);
  auto e = f.send();
  f.env.sent[0]->complete(http::ClientError::kProtocolError, false);
  ASSERT_EQ(f.env.sent.size(), 2u);
  EXPECT_TRUE(f.core->replicas().at(f.env.sent[0]->replica).routable());
  f.env.sent[1]->answer(200, kOk);
  EXPECT_EQ(e->status(), 200);
}

TEST(RouterCore, UnansweredRequestsFailOverWhenTheirReplicaTurnsUnhealthy) {
  CoreFixture f(2);
  auto e = f.send();
  const int first = f.env.sent[0]->replica;
  f.core->health_result(first, false, "health: timeout");
  f.core->health_result(first, false, "health: timeout");  // threshold 2: unhealthy now
  f.env.run_posted();
  ASSERT_EQ(f.env.sent.size(), 2u);
  EXPECT_TRUE(f.env.sent[0]->canceled);
  EXPECT_NE(f.env.sent[1]->replica, first);
  f.env.sent[1]->answer(200, kOk);
  EXPECT_EQ(e->status(), 200);
}

TEST(RouterCore, DrainStopsNewWorkAndRemovalWaitsForInFlight) {
  CoreFixture f(2);
  auto a = f.send();  // replica 0 (round robin)
  const int busy = f.env.sent[0]->replica;
  f.core->drain(busy, true);
  for (int i = 0; i < 3; ++i) f.send();
  for (size_t i = 1; i < f.env.sent.size(); ++i) EXPECT_NE(f.env.sent[i]->replica, busy);
  EXPECT_FALSE(f.core->remove(busy, false));  // one request in flight there
  EXPECT_EQ(f.core->replicas().at(busy).lifecycle, Lifecycle::kRemoving);
  EXPECT_TRUE(f.observer.removals.empty());
  f.env.sent[0]->answer(200, kOk);
  EXPECT_EQ(a->status(), 200);
  EXPECT_EQ(f.core->replicas().at(busy).lifecycle, Lifecycle::kRemoved);
  EXPECT_EQ(f.observer.removals, std::vector<int>{busy});
}

TEST(RouterCore, ForcedRemovalFailsItsRequests) {
  CoreFixture f(1);
  auto e = f.send();
  EXPECT_TRUE(f.core->remove(0, true));
  EXPECT_EQ(e->status(), 502);
  EXPECT_TRUE(f.env.sent[0]->canceled);
  EXPECT_EQ(f.observer.errors.back(), "replica_removed");
}

TEST(RouterCore, ReloadRevivesARemovingReplicaAsItWas) {
  CoreFixture f(2);
  f.send();
  const int busy = f.env.sent[0]->replica;
  f.core->drain(busy, true);
  f.core->remove(busy, false);
  f.core->revive(busy);  // back in the file before its removal completed
  EXPECT_EQ(f.core->replicas().at(busy).lifecycle, Lifecycle::kDraining);
  f.core->drain(busy, false);
  EXPECT_TRUE(f.core->replicas().at(busy).routable());
}

TEST(RouterCore, ShutdownLetsInFlightFinishWithinGrace) {
  RouterConfig c = CoreFixture::round_robin();
  c.shutdown_grace_s = 5;
  CoreFixture f(1, c);
  auto e = f.send();
  bool done = false;
  f.core->begin_shutdown([&] { done = true; });
  auto late = f.send();
  EXPECT_EQ(late->status(), 503);
  EXPECT_EQ(f.observer.errors.back(), "shutting_down");
  f.env.advance(1);
  EXPECT_FALSE(done);
  f.env.sent[0]->answer(200, kOk);
  f.env.run_posted();
  EXPECT_EQ(e->status(), 200);
  EXPECT_TRUE(done);
}

TEST(RouterCore, ShutdownGraceOverEndsTheRest) {
  RouterConfig c = CoreFixture::round_robin();
  c.shutdown_grace_s = 2;
  CoreFixture f(1, c);
  auto buffered = f.send();
  auto stream = f.send(R"({"model":"m","prompt":"hi","stream":true})");
  f.env.sent[1]->head(200, true);
  f.env.sent[1]->body("data: {\"choices\":[{\"text\":\"a\"}]}\n\n");
  bool done = false;
  f.core->begin_shutdown([&] { done = true; });
  f.env.advance(1.9);
  EXPECT_FALSE(done);
  f.env.advance(0.2);
  EXPECT_TRUE(done);
  EXPECT_EQ(buffered->status(), 503);
  EXPECT_TRUE(stream->done());
  EXPECT_NE(stream->body().find("shutting down"), std::string::npos);
  EXPECT_TRUE(f.env.sent[0]->canceled);
}

TEST(RouterCore, ClientGoneCancelsTheUpstreamAndCounts499) {
  CoreFixture f(1);
  auto e = f.send();
  e->disconnect();
  EXPECT_TRUE(f.env.sent[0]->canceled);
  ASSERT_FALSE(f.observer.finished_calls.empty());
  EXPECT_EQ(f.observer.finished_calls.back().second, 499);
  EXPECT_EQ(f.core->total_in_flight(), 0);
}

TEST(RouterCore, ReplicaBackFromUnhealthyIsARestart) {
  CoreFixture f(1);
  f.core->health_result(0, false, "x");
  f.core->health_result(0, false, "x");
  EXPECT_FALSE(f.core->replicas().any_routable());
  f.core->health_result(0, true, "");
  EXPECT_EQ(f.observer.restarts, std::vector<int>{0});
  EXPECT_TRUE(f.core->replicas().any_routable());
}

}  // namespace
}  // namespace eta::router::testing

namespace eta::router::testing {
namespace {

// A fresh scrape of replica `i` saying `waiting` requests wait there.
void scrape(CoreFixture& f, int i, int waiting) {
  cluster::ScrapeSnapshot s;
  s.valid = true;
  s.time_s = f.env.now();
  s.waiting = waiting;
  f.core->state().update_scrape(i, s);
}

RouterConfig late_binding() {
  RouterConfig c = CoreFixture::round_robin();
  c.late_binding.enabled = true;
  c.late_binding.rule = "busy";  // these tests are the busy rule's; pooled() below is "wait"'s
  c.late_binding.max_hold_s = 0.5;
  return c;
}

TEST(LateBinding, HeldWhileEveryReplicaWaitsThenSentToTheFirstThatFrees) {
  CoreFixture f(2, late_binding());
  scrape(f, 0, 3);
  scrape(f, 1, 2);
  auto e = f.send();
  EXPECT_TRUE(f.env.sent.empty());  // held at the router
  EXPECT_EQ(f.core->queue_length(), 1u);
  f.env.advance(0.02);
  scrape(f, 1, 0);  // replica 1 frees
  scrape(f, 0, 3);
  f.env.advance(0.06);  // the queue timer re-routes within a scrape interval
  ASSERT_EQ(f.env.sent.size(), 1u);
  EXPECT_EQ(f.env.sent[0]->replica, 1);
  f.env.sent[0]->answer(200, kOk);
  EXPECT_EQ(e->status(), 200);
}

TEST(LateBinding, HoldIsBoundedAndNothingIsLost) {
  CoreFixture f(2, late_binding());
  auto busy = [&] {
    scrape(f, 0, 3);
    scrape(f, 1, 3);
  };
  busy();
  auto a = f.send();
  auto b = f.send();  // behind a, in arrival order
  for (int i = 0; i < 9; ++i) {
    f.env.advance(0.05);
    busy();
  }
  EXPECT_TRUE(f.env.sent.empty());
  f.env.advance(0.1);  // past max_hold_s: both go to the policy's picks
  busy();
  f.env.advance(0.05);
  ASSERT_EQ(f.env.sent.size(), 2u);
  for (auto& u : f.env.sent) u->answer(200, kOk);
  EXPECT_EQ(a->status(), 200);
  EXPECT_EQ(b->status(), 200);
}

TEST(LateBinding, AnIdleReplicaTakesTheRequestAtOnce) {
  CoreFixture f(2, late_binding());
  scrape(f, 0, 3);
  f.send();
  EXPECT_EQ(f.env.sent.size(), 1u);  // one replica is free: no hold (the pick is the policy's)
  RouterConfig off = CoreFixture::round_robin();
  CoreFixture g(2, off);
  scrape(g, 0, 3);
  scrape(g, 1, 3);
  g.send();
  EXPECT_EQ(g.env.sent.size(), 1u);  // without late binding: sent at arrival
}

// The pooled-queue rule ("wait"): a request that every replica would make wait (the ledger's
// pending prefill ahead of it) is held; it goes to the replica that frees first, not to the
// policy's next pick, and a replica with nothing ahead takes it at once.
RouterConfig pooled() {
  RouterConfig c = late_binding();
  c.late_binding.rule = "wait";
  c.late_binding.wait_margin_s = 0.05;
  return c;
}

// A completion request whose prompt is about `words` tokens (the toy tokenizer: one a word).
std::string long_prompt(int words) {
  std::string p;
  for (int i = 0; i < words; ++i) p += i % 2 ? " cat" : " dog";
  return R"({"model":"m","prompt":")" + p + R"(","max_tokens":4})";
}

TEST(LateBinding, PooledHoldsWhileEveryReplicaWouldMakeItWaitThenTheFirstToFree) {
  CoreFixture f(2, pooled());
  auto a = f.send(long_prompt(6000));  // round robin: replica 0
  auto b = f.send(long_prompt(6000));  // replica 1
  ASSERT_EQ(f.env.sent.size(), 2u);
  EXPECT_EQ(f.env.sent[0]->replica, 0);
  EXPECT_EQ(f.env.sent[1]->replica, 1);
  auto c = f.send();  // both prefill 6,000 tokens first: predicted to wait on either
  EXPECT_EQ(f.env.sent.size(), 2u);
  EXPECT_EQ(f.core->queue_length(), 1u);
  f.env.advance(0.1);  // re-checked on the queue timer: still nothing free
  EXPECT_EQ(f.env.sent.size(), 2u);
  f.env.sent[1]->answer(200, kOk);  // replica 1 frees (round robin's next pick is replica 0)
  f.env.run_posted();
  ASSERT_EQ(f.env.sent.size(), 3u);
  EXPECT_EQ(f.env.sent[2]->replica, 1);
  EXPECT_EQ(f.core->queue_length(), 0u);
  f.env.sent[2]->answer(200, kOk);
  f.env.sent[0]->answer(200, kOk);
  for (auto* e : {&a, &b, &c}) EXPECT_EQ((*e)->status(), 200);
}

TEST(LateBinding, PooledSendsAtOnceWhereNothingIsAhead) {
  CoreFixture f(2, pooled());
  f.send(long_prompt(6000));  // replica 0 prefills; replica 1 is idle
  auto c = f.send(long_prompt(6000));
  ASSERT_EQ(f.env.sent.size(), 2u);  // not held
  EXPECT_EQ(f.env.sent[1]->replica, 1);
  EXPECT_EQ(f.core->queue_length(), 0u);
  // A short request behind a short one: the wait is within the margin, so it goes at once too.
  CoreFixture g(1, pooled());
  g.send();
  g.send();
  EXPECT_EQ(g.env.sent.size(), 2u);
}

// wait_fraction: a long prompt whose wait is short beside its own prefill is sent at once (it
// gains little by waiting); with the margin alone it is held like any other.
TEST(LateBinding, PooledSendsAPromptLongerThanItsWaitAtOnce) {
  for (const double fraction : {1.0, 0.0}) {
    RouterConfig config = pooled();
    config.late_binding.wait_fraction = fraction;
    CoreFixture f(2, config);
    f.send(long_prompt(3000));
    f.send(long_prompt(3000));
    f.send(long_prompt(12000));  // waits for 3,000 tokens, then prefills 12,000
    EXPECT_EQ(f.env.sent.size(), fraction > 0 ? 3u : 2u) << fraction;
    EXPECT_EQ(f.core->queue_length(), fraction > 0 ? 0u : 1u) << fraction;
  }
}

TEST(LateBinding, PooledHoldIsBoundedAndNothingIsLost) {
  CoreFixture f(2, pooled());
  f.send(long_prompt(6000));
  f.send(long_prompt(6000));
  auto c = f.send();
  auto d = f.send();  // behind c, in arrival order
  EXPECT_EQ(f.core->queue_length(), 2u);
  f.env.advance(0.45);
  EXPECT_EQ(f.env.sent.size(), 2u);
  f.env.advance(0.15);  // past max_hold_s: both go to the policy's picks, in order
  ASSERT_EQ(f.env.sent.size(), 4u);
  EXPECT_EQ(f.core->queue_length(), 0u);
  for (auto& u : f.env.sent) u->answer(200, kOk);
  EXPECT_EQ(c->status(), 200);
  EXPECT_EQ(d->status(), 200);
}

}  // namespace
}  // namespace eta::router::testing

namespace eta::router::testing {
namespace {

// A stored response lives on the replica that created it: a failure there is not retried on
// another replica (which could only answer that it does not exist). The router used to retry it
// there anyway (its retry path and its hold-back path disagreed); the retry policy is now the
// one answer.
TEST(RouterCore, StoredResponseIsPinnedAndNotRetriedElsewhere) {
  CoreFixture f(2);
  auto create = f.send(R"({"model":"m","input":"hi"})", "/v1/responses");
  ASSERT_EQ(f.env.sent.size(), 1u);
  const int owner = f.env.sent[0]->replica;
  f.env.sent[0]->answer(200,
                        R"({"id":"resp_1","object":"response","model":"m","status":"completed"})");
  EXPECT_EQ(create->status(), 200);
  for (int i = 0; i < 2; ++i) {  // both retrievals go to the owner, whatever round robin says
    auto get = f.send("", "/v1/responses/resp_1", {}, "GET");
    ASSERT_EQ(f.env.sent.size(), static_cast<size_t>(2 + i));
    EXPECT_EQ(f.env.sent.back()->replica, owner);
    if (i == 0) {
      f.env.sent.back()->answer(200, R"({"id":"resp_1"})");
      EXPECT_EQ(get->status(), 200);
    } else {
      f.env.sent.back()->complete(http::ClientError::kConnectRefused, false);
      EXPECT_EQ(f.env.sent.size(), 3u);  // not retried on the other replica
      EXPECT_EQ(get->status(), 502);
    }
  }
}

}  // namespace
}  // namespace eta::router::testing
