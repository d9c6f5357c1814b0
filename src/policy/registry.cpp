#include "policy/registry.hpp"

#include <array>

#include "policy/common.hpp"

namespace eta::policy {
namespace {

struct Entry {
  PolicyInfo info;
  std::unique_ptr<Policy> (*make)(ParamReader&);
};

const std::array<Entry, 10> kPolicies = {{
    {{"round-robin", "cycle through routable replicas"}, make_round_robin},
    {{"random", "uniform (or weighted) random replica"}, make_random},
    {{"least-request", "fewest requests in flight (router ledger)"}, make_least_request},
    {{"power-of-two", "two random replicas, the one with fewer in flight"}, make_power_of_two},
    {{"session", "consistent hashing with bounded load on the session key"}, make_session},
    {{"llm-d", "llm-d/GIE default scorers: queue, kv-cache utilization, prefix cache"}, make_llm_d},
    {{"cache-aware", "SGLang cache_aware: prefix match unless load is imbalanced"},
     make_cache_aware},
    {{"eta", "predicted completion time per replica (TTFT, decode, KV, speed)"}, make_eta},
    {{"llm-d-latency", "llm-d predicted latency: online TTFT/TPOT regressor, SLO headroom tiers"},
     make_llm_d_latency},
    {{"least-load", "SMG least_load: (queued + in-flight tokens) / throughput + KV barrier"},
     make_least_load},
}};

const std::array<PolicyInfo, kPolicies.size()> kInfos = [] {
  std::array<PolicyInfo, kPolicies.size()> a{};
  for (size_t i = 0; i < kPolicies.size(); ++i) a[i] = kPolicies[i].info;
  return a;
}();

}  // namespace

std::span<const PolicyInfo> policy_list() {
  return kInfos;
}

std::unique_ptr<Policy> make_policy(std::string_view name, const PolicyParams& params,
                                    std::string& error) {
  for (const Entry& e : kPolicies) {
    if (e.info.name != name) continue;
    ParamReader reader(name, params);
    std::unique_ptr<Policy> p = e.make(reader);
    if (!reader.finish(error)) return nullptr;
    return p;
  }
  std::string known;
  for (const Entry& e : kPolicies) known += (known.empty() ? "" : ", ") + std::string(e.info.name);
  error = "unknown policy '" + std::string(name) + "' (known: " + known + ")";
  return nullptr;
}

bool parse_policy_params(std::string_view text, PolicyParams& out, std::string& error) {
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      error = "policy parameter '" + std::string(item) + "' is not key=value";
      return false;
    }
    out[std::string(item.substr(0, eq))] = std::string(item.substr(eq + 1));
  }
  return true;
}

}  // namespace eta::policy
