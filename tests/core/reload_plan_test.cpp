// The reload plan (router/core/reload_plan.hpp): what a SIGHUP does, decided purely.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "router/core/reload_plan.hpp"

namespace eta::router {
namespace {

ReplicaConfig replica(const std::string& url, double weight = 1.0) {
  ReplicaConfig r;
  r.url = url;
  r.weight = weight;
  return r;
}

RunningReplica running_replica(const std::string& url, bool removing = false,
                               bool from_dns = false) {
  RunningReplica r;
  r.config = replica(url);
  r.removing = removing;
  r.from_dns = from_dns;
  return r;
}

using Urls = std::vector<std::string>;

Urls urls(const std::vector<ReplicaConfig>& rs) {
  Urls out;
  for (const ReplicaConfig& r : rs) out.push_back(r.url);
  return out;
}

TEST(ReloadPlan, AddsRemovesAndRevivesReplicas) {
  RouterConfig running;
  RouterConfig next;
  next.replicas = {replica("http://a:1"), replica("http://b:1/"), replica("http://f:1")};
  const std::vector<RunningReplica> now = {
      running_replica("http://a:1"),
      running_replica("http://b:1", /*removing=*/true),         // back in the file
      running_replica("http://c:1"),                            // gone from the file
      running_replica("http://d:1", false, /*from_dns=*/true),  // found by DNS: stays
      running_replica("http://e:1", /*removing=*/true),         // already leaving
  };
  const ReloadPlan plan = plan_reload(running, next, now);
  ASSERT_TRUE(plan.ok()) << plan.error;
  EXPECT_EQ(urls(plan.add), Urls{"http://f:1"});
  EXPECT_EQ(plan.remove, Urls{"http://c:1"});
  EXPECT_EQ(plan.revive, Urls{"http://b:1"});  // canonical: the trailing '/' is gone
  EXPECT_TRUE(plan.changed.empty());
  EXPECT_TRUE(plan.kept.empty());
  EXPECT_FALSE(plan.rebuild_policy);
  EXPECT_EQ(next.replicas[1].url, "http://b:1");
}

TEST(ReloadPlan, ReplicaChangesAreWarnedNotApplied) {
  RouterConfig running;
  RouterConfig next;
  next.replicas = {replica("http://a:1", 2.0), replica("http://b:1"), replica("https://s:1")};
  next.replicas[1].gpu = "";  // no gpu in the file: the running one stays, not a change
  std::vector<RunningReplica> now = {running_replica("http://a:1"), running_replica("http://b:1"),
                                     running_replica("https://s:1")};
  now[1].config.gpu = "a100";
  EXPECT_EQ(plan_reload(running, next, now).changed, Urls{"http://a:1"});
  RouterConfig tls_next = next;
  tls_next.upstream_tls.verify = false;  // https://s:1 has no tls of its own: upstream_tls
  EXPECT_EQ(plan_reload(running, tls_next, now).changed, (Urls{"http://a:1", "https://s:1"}));
  RouterConfig gpu_next = next;
  gpu_next.replicas[1].gpu = "h100";
  EXPECT_EQ(plan_reload(running, gpu_next, now).changed, (Urls{"http://a:1", "http://b:1"}));
}

TEST(ReloadPlan, PolicyIsRebuiltWhenNameParamsOrSeedChange) {
  const RouterConfig running;
  RouterConfig next;
  EXPECT_FALSE(plan_reload(running, next, {}).rebuild_policy);
  next.policy.params["objective"] = "ttft";
  EXPECT_TRUE(plan_reload(running, next, {}).rebuild_policy);
  next = RouterConfig{};
  next.policy.seed = 3;
  EXPECT_TRUE(plan_reload(running, next, {}).rebuild_policy);
  next = RouterConfig{};
  next.policy.name = "round-robin";
  EXPECT_TRUE(plan_reload(running, next, {}).rebuild_policy);
}

TEST(ReloadPlan, RestartOnlySettingsKeepTheirRunningValues) {
  RouterConfig running;
  running.listen.port = 8100;
  RouterConfig next;
  next.listen.port = 8200;
  next.client.idle_timeout_s = 9;
  next.retries = 7;
  const ReloadPlan plan = plan_reload(running, next, {});
  ASSERT_TRUE(plan.ok()) << plan.error;
  EXPECT_EQ(plan.kept, (Urls{"listen.port", "client.idle_timeout_s"}));
  EXPECT_EQ(next.listen.port, 8100);
  EXPECT_DOUBLE_EQ(next.client.idle_timeout_s, running.client.idle_timeout_s);
  EXPECT_EQ(next.retries, 7);
}

TEST(ReloadPlan, TheRunningOpenAdminListenerKeepsItsToken) {
  RouterConfig running;
  running.admin.host = "0.0.0.0";
  running.admin.token = "t";
  RouterConfig next;  // admin on loopback, no token: valid alone, but the address needs a restart
  const ReloadPlan plan = plan_reload(running, next, {});
  EXPECT_EQ(plan.error,
            "the running admin listener on 0.0.0.0 needs admin.token (a new admin address needs a "
            "restart)");
  next = RouterConfig{};
  next.admin.token = "t2";
  EXPECT_TRUE(plan_reload(running, next, {}).ok());
  running.admin.port = -1;  // no admin listener: no token needed
  next = RouterConfig{};
  EXPECT_TRUE(plan_reload(running, next, {}).ok());
}

TEST(ReloadPlan, ABadReplicaRejectsTheReload) {
  RouterConfig next;
  next.replicas = {replica("http://a:1"), replica("ftp://b:1")};
  const ReloadPlan plan = plan_reload(RouterConfig{}, next, {});
  EXPECT_NE(plan.error.find("bad URL 'ftp://b:1'"), std::string::npos) << plan.error;
  EXPECT_TRUE(plan.add.empty());
}

}  // namespace
}  // namespace eta::router
