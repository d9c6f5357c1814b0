// Admission and the router queue (router/core/admission.hpp, router_queue.hpp): every reason a
// request is dispatched, queued or refused.
#include <gtest/gtest.h>

#include <vector>

#include "router/core/admission.hpp"
#include "router/core/late_binding.hpp"
#include "router/core/router_queue.hpp"

namespace eta::router {
namespace {

Eligibility serving(int eligible, int candidates) {
  Eligibility e;
  e.any_known = true;
  e.any_serving = eligible > 0;
  e.eligible = eligible;
  e.candidates = candidates;
  return e;
}

TEST(Admission, GlobalInFlightBoundAppliesToFirstAttemptsOnly) {
  AdmissionConfig c;
  c.max_in_flight = 2;
  EXPECT_EQ(admit_in_flight(c, false, 1), RouteResult::kDispatched);
  EXPECT_EQ(admit_in_flight(c, false, 2), RouteResult::kAtCapacity);
  // A retry holds its place already.
  EXPECT_EQ(admit_in_flight(c, true, 2), RouteResult::kDispatched);
}

TEST(Admission, ModelNobodyServesIs404OnlyOnceModelsAreKnown) {
  Eligibility none;  // no replica reported its models yet
  EXPECT_EQ(admit_eligible(none, false), RouteResult::kNoReplica);
  none.any_known = true;
  EXPECT_EQ(admit_eligible(none, false), RouteResult::kUnknownModel);
  Eligibility unroutable = none;
  unroutable.any_serving = true;  // served, but by no routable replica
  EXPECT_EQ(admit_eligible(unroutable, false), RouteResult::kNoReplica);
}

TEST(Admission, NoCandidateIsCapacityForNewRequestsAndNoReplicaForRetries) {
  EXPECT_EQ(admit_eligible(serving(2, 0), false), RouteResult::kAtCapacity);
  EXPECT_EQ(admit_eligible(serving(2, 0), true), RouteResult::kNoReplica);
}

TEST(Admission, SloShedsOnlyNewRequestsOverTheObjective) {
  AdmissionConfig c;
  EXPECT_EQ(admit_after_pick(c, false, 99.0), RouteResult::kDispatched);  // off
  c.ttft_slo_s = 0.5;
  EXPECT_EQ(admit_after_pick(c, false, 0.4), RouteResult::kDispatched);
  EXPECT_EQ(admit_after_pick(c, false, 0.6), RouteResult::kSloShed);
  EXPECT_EQ(admit_after_pick(c, true, 0.6), RouteResult::kDispatched);
}

TEST(Admission, CapacityAndSloQueueWhenThereIsAQueueOtherwiseRefuse) {
  AdmissionConfig c;
  EXPECT_EQ(dispose(c, RouteResult::kAtCapacity), Disposition::kRefuse);
  EXPECT_EQ(dispose(c, RouteResult::kSloShed), Disposition::kRefuse);
  c.queue_size = 4;
  EXPECT_EQ(dispose(c, RouteResult::kAtCapacity), Disposition::kQueue);
  EXPECT_EQ(dispose(c, RouteResult::kSloShed), Disposition::kQueue);
  EXPECT_EQ(dispose(c, RouteResult::kNoReplica), Disposition::kRefuse);
  EXPECT_EQ(dispose(c, RouteResult::kUnknownModel), Disposition::kRefuse);
  EXPECT_EQ(dispose(c, RouteResult::kDispatched), Disposition::kDispatched);
  EXPECT_FALSE(queue_first(c, 0));
  EXPECT_TRUE(queue_first(c, 1));
}

TEST(Admission, EveryRefusalHasItsStatusReasonAndRetryAfter) {
  AdmissionConfig c;
  c.retry_after_s = 7;
  c.queue_size = 3;
  c.ttft_slo_s = 0.25;
  struct Want {
    Refusal r;
    int status;
    const char* reason;
    bool retry_after;
  };
  for (const Want& w : {Want{Refusal::kAtCapacity, 429, "shed_capacity", true},
                        Want{Refusal::kSloShed, 429, "shed_slo", true},
                        Want{Refusal::kQueueFull, 429, "queue_full", true},
                        Want{Refusal::kQueueTimeout, 429, "queue_timeout", true},
                        Want{Refusal::kNoReplica, 503, "no_replica", false},
                        Want{Refusal::kUnknownModel, 404, "unknown_model", false},
                        Want{Refusal::kShuttingDown, 503, "shutting_down", false}}) {
    const RefusalAnswer a = refusal_answer(w.r, c, "m");
    EXPECT_EQ(a.status, w.status) << w.reason;
    EXPECT_EQ(a.reason, w.reason);
    EXPECT_EQ(a.retry_after_s, w.retry_after ? 7 : 0) << w.reason;
    EXPECT_EQ(a.rejection, w.status == 429) << w.reason;
    EXPECT_FALSE(a.message.empty());
  }
  EXPECT_NE(refusal_answer(Refusal::kSloShed, c, "m").message.find("0.25 s"), std::string::npos);
  EXPECT_NE(refusal_answer(Refusal::kQueueFull, c, "m").message.find("(3 requests)"),
            std::string::npos);
  const RefusalAnswer rl = rate_limit_answer(true, 1000, 1200, 3);
  EXPECT_EQ(rl.status, 429);
  EXPECT_EQ(rl.reason, "rate_limited");
  EXPECT_FALSE(rl.rejection);  // the key's limit, not the router's admission
  EXPECT_EQ(rl.retry_after_s, 3);
  EXPECT_NE(rl.message.find("1000 tokens per minute (this request counts 1200)"),
            std::string::npos);
}

TEST(Admission, LateBindingQueueRules) {
  AdmissionConfig a;
  LateBindingConfig lb;
  // Off: admission's queue alone.
  EXPECT_FALSE(queue_behind(a, lb, 3));  // no admission queue: nobody queues behind
  EXPECT_EQ(queue_capacity(a, lb), 0);
  EXPECT_DOUBLE_EQ(queue_deadline(a, lb, false, 10, 0.05), 15);
  // On: newcomers queue behind held requests; room for max_held more; a held request's
  // deadline lets it be routed once after its hold.
  lb.enabled = true;
  lb.max_hold_s = 0.5;
  lb.max_held = 7;
  EXPECT_FALSE(queue_behind(a, lb, 0));
  EXPECT_TRUE(queue_behind(a, lb, 1));
  EXPECT_EQ(queue_capacity(a, lb), 7);
  EXPECT_DOUBLE_EQ(queue_deadline(a, lb, true, 10, 0.05), 10.6);
  a.queue_size = 4;
  a.queue_timeout_s = 2;
  EXPECT_EQ(queue_capacity(a, lb), 11);
  EXPECT_DOUBLE_EQ(queue_deadline(a, lb, true, 10, 0.05), 12.5);  // then admission's timeout
  EXPECT_DOUBLE_EQ(queue_deadline(a, lb, false, 10, 0.05), 12);
}

TEST(RouterQueue, BoundedFifoWithDeadlines) {
  RouterQueue q;
  EXPECT_TRUE(q.push(1, 5.0, 2));
  EXPECT_TRUE(q.push(2, 6.0, 2));
  EXPECT_FALSE(q.push(3, 7.0, 2));  // full
  EXPECT_DOUBLE_EQ(q.next_wake(1.0, 0.05), 1.05);
  EXPECT_DOUBLE_EQ(q.next_wake(4.99, 0.05), 5.0);
  std::vector<uint64_t> routed, timed_out;
  RouterQueue::PumpHandlers h;
  h.gone = [](uint64_t) { return false; };
  h.route = [&](uint64_t id) {
    routed.push_back(id);
    return RouteResult::kAtCapacity;  // still full: the head stays, nothing behind it moves
  };
  h.timed_out = [&](uint64_t id) { timed_out.push_back(id); };
  h.refuse = [](uint64_t, RouteResult) { ADD_FAILURE(); };
  q.pump(2.0, h);
  EXPECT_EQ(routed, (std::vector<uint64_t>{1}));
  EXPECT_EQ(q.size(), 2u);
  // At 5.5 the head's deadline passed; the next one is routed (and dispatched).
  h.route = [&](uint64_t id) {
    routed.push_back(id);
    return RouteResult::kDispatched;
  };
  q.pump(5.5, h);
  EXPECT_EQ(timed_out, (std::vector<uint64_t>{1}));
  EXPECT_EQ(routed, (std::vector<uint64_t>{1, 2}));
  EXPECT_TRUE(q.empty());
  EXPECT_LT(q.next_wake(6.0, 0.05), 0);
}

TEST(RouterQueue, GoneEntriesHoldNoPlaceAndRefusalsLeave) {
  RouterQueue q;
  for (uint64_t id = 1; id <= 3; ++id) ASSERT_TRUE(q.push(id, 10.0, 3));
  q.drop([](uint64_t id) { return id == 2; });
  EXPECT_EQ(q.size(), 2u);
  EXPECT_TRUE(q.push(4, 10.0, 3));
  std::vector<std::pair<uint64_t, RouteResult>> refused;
  RouterQueue::PumpHandlers h;
  h.gone = [](uint64_t id) { return id == 3; };
  h.route = [](uint64_t id) {
    return id == 1 ? RouteResult::kNoReplica : RouteResult::kDispatched;
  };
  h.timed_out = [](uint64_t) { ADD_FAILURE(); };
  h.refuse = [&](uint64_t id, RouteResult r) { refused.emplace_back(id, r); };
  q.pump(0.0, h);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].first, 1u);
  EXPECT_EQ(refused[0].second, RouteResult::kNoReplica);
  EXPECT_TRUE(q.empty());
}

TEST(RouterQueue, PumpIsNotReentrant) {
  RouterQueue q;
  ASSERT_TRUE(q.push(1, 10.0, 4));
  ASSERT_TRUE(q.push(2, 10.0, 4));
  int routes = 0;
  RouterQueue::PumpHandlers h;
  h.gone = [](uint64_t) { return false; };
  h.timed_out = [](uint64_t) {};
  h.refuse = [](uint64_t, RouteResult) {};
  h.route = [&](uint64_t) {
    ++routes;
    q.pump(0.0, h);  // a dispatch that finishes another request pumps again: ignored
    q.drop([](uint64_t) { return true; });  // and dropping while the pump holds the head too
    return RouteResult::kDispatched;
  };
  q.pump(0.0, h);
  EXPECT_EQ(routes, 2);
  EXPECT_TRUE(q.empty());
}

}  // namespace
}  // namespace eta::router
