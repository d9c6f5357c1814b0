// `eta cluster-sim`: a whole cluster (N simulated engines + a routing policy) in virtual time,
// in one process (src/cluster_sim/). This file is the command line: it loads the workload,
// measures the cluster's capacity, runs every (load, policy) pair on identical arrivals, prints
// a table per load, writes JSON and SVG, and reports its own speed (the only wall clock used).
#include <sys/resource.h>
#include <time.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include "cluster_sim/capacity.hpp"
#include "cluster_sim/replicas.hpp"
#include "cluster_sim/simulator.hpp"
#include "cluster_sim/study.hpp"
#include "commands.hpp"
#include "engine/profile.hpp"
#include "policy/registry.hpp"
#include "router/core/late_binding.hpp"
#include "stats/report.hpp"
#include "validators.hpp"
#include "workload/arrivals.hpp"
#include "workload/catalog.hpp"
#include "workload/request_body.hpp"

namespace eta::app {

namespace {

struct ClusterSimOptions {
  std::string replicas;
  std::string arch = "llama-2-7b";
  std::string workload;
  std::string policy = "all";
  std::vector<std::string> policy_params;
  std::string load = "0.85";
  std::string lengths = "exact";
  int64_t num_requests = 0;
  double scrape_interval_ms = 50;
  double scrape_jitter = 0.1;
  double network_delay_ms = 1;
  double stale_after_ms = 2000;
  uint64_t seed = 0;
  std::string json_path;
  std::string svg_path;
  bool find_capacity = false;
  std::string data_dir;
  std::string arrival = "auto";
  std::string ledger = "on";
  int routers = 1;
  double peer_sync_ms = -1;  // < 0: off
  std::string peer_sync_tokens = "all";
  double kv_events_delay_ms = -1;            // KV-cache events (issue 15); < 0: off
  std::string peer_sync_protocol = "ideal";  // ideal | live (issue 13)
  double peer_sync_loss = 0;
  bool router_knows_gpus = false;
  bool full_router_state = false;
  std::string slo = "ttft:1000,tpot:100";
  // The load axis (issue 14 item 2): what --load is a fraction of, and what --find-capacity
  // measures. sustained: the highest rate capacity_policy sustains under the workload's own
  // arrivals (capacity.hpp); isolated: the sum of the replicas' saturated throughputs.
  std::string load_basis = "sustained";
  std::string capacity_policy = "least-request";
  double capacity_rps = 0;  // > 0: the basis is given, nothing is measured
  // The live router's admission (eta route's `admission:` block; issue 2.2), per router.
  int max_in_flight = 0;
  int max_in_flight_per_replica = 0;
  double ttft_slo_ms = 0;
  int queue_size = 0;
  double queue_timeout_ms = 5000;
  bool late_binding = false;  // add a NAME+late run for every listed policy
  double late_max_hold_ms = 500;
  double late_ttft_threshold_ms = 0;
  std::string late_rule = "wait";
  double late_wait_margin_ms = 50;
  double late_wait_fraction = 1;
};

int fail(const std::string& message) {
  std::fprintf(stderr, "eta cluster-sim: %s\n", message.c_str());
  return 2;
}

// --data-dir, else the first existing <ancestor>/shared/data above the working directory, then
// above the executable (the repository's ../shared/data), else ../shared/data.

bool parse_loads(const std::string& text, std::vector<double>& out, std::string& error) {
  out.clear();
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = text.find(',', pos);
    const std::string item =
        text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    if (item.empty() || end != item.c_str() + item.size() || !(v > 0) || !std::isfinite(v)) {
      error = "--load: '" + item + "' is not a positive number (e.g. 0.5,0.85)";
      return false;
    }
    out.push_back(v);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return true;
}

bool parse_policies(const ClusterSimOptions& o, std::vector<cluster_sim::PolicyChoice>& out,
                    std::string& error) {
  out.clear();
  std::vector<std::string> names;
  if (o.policy == "all") {
    for (const policy::PolicyInfo& p : policy::policy_list()) names.emplace_back(p.name);
    names.emplace_back(cluster_sim::kOraclePolicy);
  } else {
    size_t pos = 0;
    while (true) {
      const size_t comma = o.policy.find(',', pos);
      names.push_back(
          o.policy.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
  }
  for (const std::string& name : names) {
    if (name.empty()) {
      error = "--policy: empty policy name in '" + o.policy + "'";
      return false;
    }
    cluster_sim::PolicyChoice choice{name, {}};
    constexpr std::string_view kLate = "+late";  // NAME+late: the policy with late binding
    if (name.size() > kLate.size() && name.ends_with(kLate)) {
      choice.name = name.substr(0, name.size() - kLate.size());
      choice.late = true;
    }
    if (choice.late && choice.oracle()) {
      error = "--policy: the oracle binds at arrival by definition (no oracle+late)";
      return false;
    }
    for (const cluster_sim::PolicyChoice& c : out) {
      if (c.label() == choice.label()) {
        error = "--policy: '" + name + "' is listed twice";
        return false;
      }
    }
    out.push_back(choice);
  }
  if (o.late_binding) {  // every listed policy again, binding late
    const size_t n = out.size();
    for (size_t i = 0; i < n; ++i) {
      if (out[i].oracle() || out[i].late) continue;
      cluster_sim::PolicyChoice late = out[i];
      late.late = true;
      bool listed = false;
      for (const cluster_sim::PolicyChoice& c : out) listed = listed || c.label() == late.label();
      if (!listed) out.push_back(late);
    }
  }
  for (const std::string& spec : o.policy_params) {
    const size_t colon = spec.find(':');
    if (colon == std::string::npos || colon == 0) {
      error = "--policy-params: '" + spec + "' is not NAME:key=value,...";
      return false;
    }
    const std::string name = spec.substr(0, colon);
    cluster_sim::PolicyChoice* target = nullptr;
    for (cluster_sim::PolicyChoice& c : out)
      if (c.name == name && !target) target = &c;
    if (!target) {
      error = "--policy-params: policy '" + name + "' is not among --policy";
      return false;
    }
    if (target->oracle()) {
      error = "--policy-params: the oracle takes no parameters";
      return false;
    }
    if (!policy::parse_policy_params(spec.substr(colon + 1), target->params, error)) return false;
    for (cluster_sim::PolicyChoice& c : out)  // its +late run takes the same parameters
      if (c.name == name && &c != target) c.params = target->params;
  }
  // Make every policy once now, so that a bad name or parameter stops the program at start.
  for (const cluster_sim::PolicyChoice& c : out) {
    if (c.oracle()) continue;
    if (!policy::make_policy(c.name, c.params, error)) return false;
  }
  return true;
}

bool parse_arrival(const std::string& text, workload::ArrivalSpec& out, bool& automatic,
                   std::string& error) {
  automatic = text == "auto";
  if (automatic) return true;
  std::string spec = text;
  // "gamma:2" is short for "gamma:cv=2".
  if (spec.rfind("gamma:", 0) == 0 && spec.find('=') == std::string::npos)
    spec = "gamma:cv=" + spec.substr(6);
  if (!workload::parse_arrival_spec(spec, out, error)) {
    error = "--arrival: " + error;
    return false;
  }
  return true;
}

// CPU seconds this process has used (the speed on one core, whatever else runs on the machine).
double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // KiB on Linux
}

bool write_file(const std::string& path, const std::string& text, std::string& error) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) {
    error = "cannot write " + path;
    return false;
  }
  return true;
}

int run_cluster_sim(const ClusterSimOptions& o) {
  using Clock = std::chrono::steady_clock;
  std::string error;

  // Configuration: everything is checked before anything runs.
  cluster_sim::SimConfig config;
  if (!cluster_sim::parse_replicas(o.replicas, engine::ProfileSet::builtin(), o.arch,
                                   config.replicas, error)) {
    return fail(error);
  }
  if (!workload::parse_lengths_mode(o.lengths, config.lengths))
    return fail("--lengths must be exact, hidden or hidden-scaled, got '" + o.lengths + "'");
  if (o.ledger != "on" && o.ledger != "off")
    return fail("--ledger must be on or off, got '" + o.ledger + "'");
  if (std::isnan(o.peer_sync_ms)) return fail("--peer-sync must be a number of ms, got nan");
  if (std::isnan(o.kv_events_delay_ms)) return fail("--kv-events must be a number of ms, got nan");
  if (o.peer_sync_tokens != "all" && o.peer_sync_tokens != "first")
    return fail("--peer-sync-tokens must be all or first, got '" + o.peer_sync_tokens + "'");
  if (o.peer_sync_protocol != "ideal" && o.peer_sync_protocol != "live")
    return fail("--peer-sync-protocol must be ideal or live, got '" + o.peer_sync_protocol + "'");
  if (!(o.peer_sync_loss >= 0 && o.peer_sync_loss < 1))
    return fail("--peer-sync-loss must be in [0, 1)");
  if (!router::late_binding_rule_known(o.late_rule))
    return fail("--late-binding-rule must be busy or wait, got '" + o.late_rule + "'");
  std::vector<double> loads;
  if (!o.find_capacity && !parse_loads(o.load, loads, error)) return fail(error);
  if (o.load_basis != "sustained" && o.load_basis != "isolated")
    return fail("--load-basis must be sustained or isolated, got '" + o.load_basis + "'");
  std::vector<cluster_sim::PolicyChoice> policies;
  if (!parse_policies(o, policies, error)) return fail(error);
  cluster_sim::PolicyChoice capacity_choice{o.capacity_policy, {}};
  for (const cluster_sim::PolicyChoice& c : policies)
    if (c.name == o.capacity_policy) capacity_choice = c;  // with its --policy-params
  if (!capacity_choice.oracle() &&
      !policy::make_policy(capacity_choice.name, capacity_choice.params, error))
    return fail("--capacity-policy: " + error);
  workload::ArrivalSpec arrival;
  bool auto_arrival = true;
  if (!parse_arrival(o.arrival, arrival, auto_arrival, error)) return fail(error);
  stats::Slo slo;
  if (o.slo != "none" && !o.slo.empty() && !stats::parse_slo(o.slo, slo, error))
    return fail("--slo: " + error);
  config.scrape_interval_s = o.scrape_interval_ms / 1000;
  config.scrape_jitter = o.scrape_jitter;
  config.network_delay_s = o.network_delay_ms / 1000;
  config.stale_after_s = o.stale_after_ms / 1000;
  config.routers = o.routers;
  config.peer_sync_s = o.peer_sync_ms < 0 ? -1 : o.peer_sync_ms / 1000;
  config.peer_sync_first_token_only = o.peer_sync_tokens == "first";
  config.kv_events_delay_s = o.kv_events_delay_ms < 0 ? -1 : o.kv_events_delay_ms / 1000;
  config.peer_sync_live = o.peer_sync_protocol == "live";
  config.peer_sync_loss = o.peer_sync_loss;
  config.use_ledger = o.ledger == "on";
  config.router_knows_gpus = o.router_knows_gpus;
  config.full_router_state = o.full_router_state;
  config.seed = o.seed;

  workload::WorkloadContext context;
  context.data_dir = workload::resolve_data_dir(o.data_dir);
  context.seed = o.seed;
  context.compute_block_hashes = true;
  context.block_size = config.replicas.front().engine.block_size;
  workload::Workload base;
  if (!workload::make_workload(o.workload, context, base, error)) return fail(error);
  if (o.num_requests > 0) workload::truncate(base, o.num_requests, std::nullopt);
  if (base.requests.empty()) return fail("the workload has no requests");
  const int max_model_len = config.replicas.front().engine.max_model_len;
  const std::vector<cluster_sim::RequestPlan> plans =
      cluster_sim::plan_requests(base, config.lengths, max_model_len);
  int64_t rejected = 0;
  for (const cluster_sim::RequestPlan& p : plans) rejected += p.rejected ? 1 : 0;

  const auto capacity_start = Clock::now();
  cluster_sim::Capacity capacity;
  if (!cluster_sim::measure_capacity(config, base, plans, capacity, error)) return fail(error);
  const double capacity_wall = std::chrono::duration<double>(Clock::now() - capacity_start).count();
  std::string capacity_text =
      fmt::format("capacity on {} ({} requests, lengths {}, {}): {:.3f} requests/s\n", o.workload,
                  base.requests.size(), o.lengths, o.arch, capacity.total_requests_per_s);
  capacity_text +=
      "| replica | gpu | requests/s | output tokens/s | mean running | preemptions | window s |\n"
      "|---|---|---:|---:|---:|---:|---:|\n";
  for (const cluster_sim::ReplicaCapacity& c : capacity.replicas) {
    capacity_text += fmt::format("| {} | {} | {:.3f} | {:.0f} | {:.1f} | {} | {:.1f} |\n", c.name,
                                 c.gpu, c.requests_per_s, c.output_tokens_per_s, c.mean_running,
                                 c.preemptions, c.window_s);
  }
  boost::json::object capacity_json;
  {
    boost::json::array reps;
    for (const cluster_sim::ReplicaCapacity& c : capacity.replicas) {
      reps.push_back(boost::json::object{{"name", c.name},
                                         {"gpu", c.gpu},
                                         {"requests_per_s", c.requests_per_s},
                                         {"output_tokens_per_s", c.output_tokens_per_s},
                                         {"mean_running", c.mean_running},
                                         {"preemptions", c.preemptions},
                                         {"window_s", c.window_s},
                                         {"completions", c.completions}});
    }
    capacity_json["requests_per_s"] = capacity.total_requests_per_s;
    capacity_json["replicas"] = std::move(reps);
  }
  // The arrival process every load runs under: the workload's own (scaled to the rate) or the
  // one --arrival names.
  const auto arrival_for = [&](const workload::Workload& w) {
    workload::ArrivalSpec spec = arrival;
    if (auto_arrival) {
      spec.kind = w.duration_s() > 0 && w.requests.size() > 1 ? workload::ArrivalKind::kTrace
                                                              : workload::ArrivalKind::kPoisson;
    }
    if (spec.seed == 0) spec.seed = o.seed;
    return spec;
  };
  capacity_json["definition"] = "isolated";
  if (o.find_capacity) {
    std::fputs(capacity_text.c_str(), stdout);
    if (o.load_basis == "sustained") {
      // Per policy: the sustained and the goodput capacity under the workload's arrivals.
      std::string table = fmt::format(
          "\nsustained capacity under {} arrivals (completed >= {:g} x offered after a {:g} "
          "warm-up, backlog not growing) and goodput capacity (>= {:g} of requests within {}), "
          "per policy:\n\n| policy | sustained req/s | x isolated | goodput capacity req/s | "
          "probes |\n|---|---:|---:|---:|---:|\n",
          workload::to_string(arrival_for(base).kind), cluster_sim::kSustainRatio,
          cluster_sim::kSustainWarmup, cluster_sim::kGoodputFraction, slo.any() ? o.slo : "-");
      boost::json::array per_policy;
      for (const cluster_sim::PolicyChoice& choice : policies) {
        cluster_sim::PolicyCapacity pc;
        if (!cluster_sim::measure_policy_capacity(config, base, plans, choice, arrival_for(base),
                                                  capacity.total_requests_per_s, slo, pc, error))
          return fail(error);
        table +=
            fmt::format("| {} | {:.3f} | {:.2f} | {} | {} |\n", pc.policy, pc.sustained_rps,
                        pc.sustained_rps / capacity.total_requests_per_s,
                        slo.any() ? fmt::format("{:.3f}", pc.goodput_rps) : "-", pc.probes.size());
        boost::json::array probes;
        for (const cluster_sim::LoadProbe& p : pc.probes)
          probes.push_back(boost::json::object{{"rate_rps", p.rate_rps},
                                               {"offered_rps", p.offered_rps},
                                               {"completed_rps", p.completed_rps},
                                               {"second_half_ratio", p.second_half_ratio},
                                               {"slo_fraction", p.slo_fraction},
                                               {"sustained", p.sustained},
                                               {"meets_goodput", p.meets_goodput}});
        per_policy.push_back(boost::json::object{
            {"policy", pc.policy},
            {"sustained_rps", pc.sustained_rps},
            {"goodput_rps", slo.any() ? boost::json::value(pc.goodput_rps) : nullptr},
            {"probes", std::move(probes)}});
      }
      std::fputs(table.c_str(), stdout);
      capacity_json["policies"] = std::move(per_policy);
    }
    if (!o.json_path.empty()) {
      boost::json::object root{{"capacity", capacity_json}, {"runs", boost::json::array{}}};
      if (!write_file(o.json_path, boost::json::serialize(root) + "\n", error)) {
        std::fprintf(stderr, "eta cluster-sim: %s\n", error.c_str());
        return 1;
      }
    }
    std::fprintf(stderr, "eta cluster-sim: capacity measured in %.2f s wall; peak RSS %.1f MiB\n",
                 capacity_wall, peak_rss_mib());
    return 0;
  }
  std::fprintf(stderr, "eta cluster-sim: %s",
               capacity_text.substr(0, capacity_text.find('\n') + 1).c_str());
  // What --load is a fraction of.
  double basis = capacity.total_requests_per_s;
  std::string basis_text = "isolated capacity";
  if (o.load_basis == "sustained") {
    capacity_json["definition"] = "sustained";
    capacity_json["policy"] = capacity_choice.name;
    if (o.capacity_rps > 0) {
      basis = o.capacity_rps;
      basis_text = fmt::format("given sustained capacity (--capacity-rps)");
    } else {
      cluster_sim::PolicyCapacity pc;
      if (!cluster_sim::measure_policy_capacity(config, base, plans, capacity_choice,
                                                arrival_for(base), capacity.total_requests_per_s,
                                                slo, pc, error))
        return fail(error);
      basis = pc.sustained_rps;
      basis_text = fmt::format("{}'s sustained capacity", capacity_choice.name);
      capacity_json["goodput_rps"] = slo.any() ? boost::json::value(pc.goodput_rps) : nullptr;
    }
    capacity_json["isolated_requests_per_s"] = capacity.total_requests_per_s;
    capacity_json["requests_per_s"] = basis;
    std::fprintf(stderr, "eta cluster-sim: --load is a fraction of %s, %.3f requests/s\n",
                 basis_text.c_str(), basis);
    if (!(basis > 0)) return fail("the sustained capacity is 0: nothing is sustained");
  }

  // Admission applies to the runs only: the capacities above are the cluster's, unshed.
  config.admission.max_in_flight = o.max_in_flight;
  config.admission.max_in_flight_per_replica = o.max_in_flight_per_replica;
  config.admission.ttft_slo_s = o.ttft_slo_ms / 1000;
  config.admission.queue_size = o.queue_size;
  config.admission.queue_timeout_s = o.queue_timeout_ms / 1000;
  config.late_binding.max_hold_s = o.late_max_hold_ms / 1000;
  config.late_binding.ttft_threshold_s = o.late_ttft_threshold_ms / 1000;
  config.late_binding.rule = o.late_rule;
  config.late_binding.wait_margin_s = o.late_wait_margin_ms / 1000;
  config.late_binding.wait_fraction = o.late_wait_fraction;
  bool any_late = false;
  for (const cluster_sim::PolicyChoice& c : policies) any_late = any_late || c.late;
  std::vector<cluster_sim::RunSummary> runs;
  double sim_seconds = 0, wall_seconds = 0, cpu_total = 0;  // policies (oracle excluded)
  double oracle_sim_seconds = 0, oracle_wall = 0;           // the oracle
  for (double load : loads) {
    workload::Workload w = base;
    workload::ArrivalSpec spec = arrival_for(w);
    spec.rate = load * basis;
    if (!workload::apply_arrivals(w, spec, error)) return fail("--arrival: " + error);
    std::vector<const cluster_sim::RunSummary*> at_load;
    const size_t first = runs.size();
    for (const cluster_sim::PolicyChoice& choice : policies) {
      cluster_sim::SimResult result;
      const auto start = Clock::now();
      const double cpu_start = cpu_seconds();
      if (!cluster_sim::run_simulation(config, w, plans, choice, result, error)) return fail(error);
      const double wall = std::chrono::duration<double>(Clock::now() - start).count();
      const double cpu = cpu_seconds() - cpu_start;
      const double simulated = result.last_done_s - result.first_send_s;
      if (choice.oracle()) {
        oracle_sim_seconds += simulated;
        oracle_wall += wall;
      } else {
        sim_seconds += simulated;
        wall_seconds += wall;
        cpu_total += cpu;
      }
      std::fprintf(stderr,
                   "eta cluster-sim: load %g %s: %zu requests, %.1f s simulated in %.3f s "
                   "(%.0fx real time; %.0fx per CPU second), peak RSS %.1f MiB%s\n",
                   load, choice.label().c_str(), w.requests.size(), simulated, wall,
                   wall > 0 ? simulated / wall : 0.0, cpu > 0 ? simulated / cpu : 0.0,
                   peak_rss_mib(),
                   result.lost > 0 ? fmt::format(", {} LOST", result.lost).c_str() : "");
      if (config.peer_sync_live && config.peer_sync_s >= 0 && config.routers > 1 &&
          !choice.oracle()) {
        std::fprintf(
            stderr,
            "eta cluster-sim: load %g %s: live peer sync: %llu packets, %llu bytes "
            "(%.1f bytes per request), %llu deliveries lost, %llu frames missed, %llu "
            "snapshots applied, %lld peer entries left\n",
            load, choice.name.c_str(), static_cast<unsigned long long>(result.peer_packets),
            static_cast<unsigned long long>(result.peer_bytes),
            w.requests.empty()
                ? 0.0
                : static_cast<double>(result.peer_bytes) / static_cast<double>(w.requests.size()),
            static_cast<unsigned long long>(result.peer_dropped),
            static_cast<unsigned long long>(result.peer_lost_frames),
            static_cast<unsigned long long>(result.peer_snapshots),
            static_cast<long long>(result.peer_foreign_left));
      }
      runs.push_back(
          cluster_sim::summarize_run(choice.label(), load, spec.rate, basis, result, slo));
    }
    for (size_t i = first; i < runs.size(); ++i) at_load.push_back(&runs[i]);
    std::printf(
        "\n### load %g: %.2f requests/s (%s %.2f), %zu requests, %s arrivals%s\n\n", load,
        spec.rate, basis_text.c_str(), basis, w.requests.size(), workload::to_string(spec.kind),
        rejected > 0 ? fmt::format(", {} rejected by the context length (400)", rejected).c_str()
                     : "");
    std::fputs(cluster_sim::render_table(at_load).c_str(), stdout);
    if (config.admission_on() || any_late) {
      std::printf(
          "\nadmission (the simulated routers' refusals per reason; queued: waited in a "
          "router queue; held: held by late binding):\n\n%s",
          cluster_sim::render_shed_table(at_load).c_str());
    }
    std::string predictions;
    for (const cluster_sim::RunSummary* r : at_load) {
      if (r->ttft_error.count == 0 && r->output_error.count == 0) continue;
      std::string speeds;
      for (const auto& [name, f] : r->learned_speed)
        speeds += fmt::format("{}{:.2f}/{:.2f}", speeds.empty() ? "" : " ", f.first, f.second);
      auto cell = [](const cluster_sim::RelativeError& e, bool p90) {
        return e.count == 0 ? std::string("-") : fmt::format("{:.2f}", p90 ? e.p90 : e.p50);
      };
      predictions += fmt::format(
          "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", r->policy, cell(r->ttft_error, false),
          cell(r->ttft_error, true), cell(r->e2e_error, false), cell(r->e2e_error, true),
          cell(r->output_error, false), cell(r->output_error, true),
          r->output_error.count == 0
              ? std::string("-")
              : fmt::format("{:.2f} ({:.0f})", r->output_floor, r->output_floor_tokens),
          speeds.empty() ? "-" : speeds);
    }
    if (!predictions.empty()) {
      std::printf(
          "\nprediction |pred - actual| / actual (and router 0's learned speed factors, "
          "prefill/decode per replica):\n\n| policy | TTFT p50 | TTFT p90 | E2E p50 | E2E p90 | "
          "output p50 | output p90 | output best constant p50 (tokens) | learned speed "
          "|\n|---|---:|---:|---:|---:|---:|---:|---:|---|\n%s",
          predictions.c_str());
    }
    std::fflush(stdout);
  }

  if (!o.json_path.empty()) {
    boost::json::array run_array;
    for (const cluster_sim::RunSummary& r : runs) {
      boost::json::object j = cluster_sim::run_to_json(r);
      // p99 ratios to round-robin and to the oracle at the same load (null when not run).
      boost::json::object ratios;
      for (const char* reference : {"round-robin", "oracle"}) {
        const cluster_sim::RunSummary* ref = nullptr;
        for (const cluster_sim::RunSummary& other : runs)
          if (other.load == r.load && other.policy == reference) ref = &other;
        const std::string suffix = reference == std::string("oracle") ? "oracle" : "round_robin";
        auto ratio = [](double a, double b) -> boost::json::value {
          if (b > 0) return a / b;
          return nullptr;
        };
        ratios["ttft_p99_vs_" + suffix] =
            ref ? ratio(r.report.ttft_ms.p99, ref->report.ttft_ms.p99) : nullptr;
        ratios["e2e_p99_vs_" + suffix] =
            ref ? ratio(r.report.e2e_ms.p99, ref->report.e2e_ms.p99) : nullptr;
      }
      j["ratios"] = std::move(ratios);
      run_array.push_back(std::move(j));
    }
    boost::json::array replicas;
    for (const cluster_sim::ReplicaConfig& r : config.replicas) {
      replicas.push_back(
          boost::json::object{{"name", r.name},
                              {"gpu", r.gpu},
                              {"speed", r.engine.speed},
                              {"max_num_seqs", r.engine.max_num_seqs},
                              {"max_num_batched_tokens", r.engine.max_num_batched_tokens},
                              {"num_gpu_blocks", r.engine.num_gpu_blocks}});
    }
    boost::json::object cfg{{"replicas", std::move(replicas)},
                            {"arch", o.arch},
                            {"workload", o.workload},
                            {"requests", base.requests.size()},
                            {"rejected", rejected},
                            {"lengths", o.lengths},
                            {"arrival", o.arrival},
                            {"scrape_interval_ms", o.scrape_interval_ms},
                            {"scrape_jitter", o.scrape_jitter},
                            {"network_delay_ms", o.network_delay_ms},
                            {"stale_after_ms", o.stale_after_ms},
                            {"routers", o.routers},
                            {"ledger", o.ledger},
                            {"router_knows_gpus", o.router_knows_gpus},
                            {"full_router_state", o.full_router_state},
                            {"seed", o.seed},
                            {"slo", o.slo},
                            {"load_basis", o.load_basis}};
    if (o.load_basis == "sustained") cfg["capacity_policy"] = capacity_choice.name;
    if (config.admission_on()) {  // absent: no admission option
      cfg["admission"] =
          boost::json::object{{"max_in_flight", o.max_in_flight},
                              {"max_in_flight_per_replica", o.max_in_flight_per_replica},
                              {"ttft_slo_ms", o.ttft_slo_ms},
                              {"queue_size", o.queue_size},
                              {"queue_timeout_ms", o.queue_timeout_ms}};
    }
    if (any_late) {  // absent: no +late run
      cfg["late_binding"] = boost::json::object{{"rule", o.late_rule},
                                                {"max_hold_ms", o.late_max_hold_ms},
                                                {"ttft_threshold_ms", o.late_ttft_threshold_ms},
                                                {"wait_margin_ms", o.late_wait_margin_ms},
                                                {"wait_fraction", o.late_wait_fraction}};
    }
    if (o.kv_events_delay_ms >= 0) cfg["kv_events_delay_ms"] = o.kv_events_delay_ms;  // absent: off
    if (o.peer_sync_ms >= 0) {                                                        // absent: off
      cfg["peer_sync_ms"] = o.peer_sync_ms;
      cfg["peer_sync_tokens"] = o.peer_sync_tokens;
      if (o.peer_sync_protocol == "live") {  // absent: ideal
        cfg["peer_sync_protocol"] = o.peer_sync_protocol;
        cfg["peer_sync_loss"] = o.peer_sync_loss;
      }
    }
    boost::json::object root{{"config", std::move(cfg)},
                             {"capacity", std::move(capacity_json)},
                             {"runs", std::move(run_array)}};
    if (!write_file(o.json_path, boost::json::serialize(root) + "\n", error)) {
      std::fprintf(stderr, "eta cluster-sim: %s\n", error.c_str());
      return 1;
    }
  }
  if (!o.svg_path.empty()) {
    const std::string title =
        fmt::format("{} on {} ({} lengths)", o.workload, o.replicas, o.lengths);
    if (!write_file(o.svg_path, cluster_sim::render_svg(runs, title), error)) {
      std::fprintf(stderr, "eta cluster-sim: %s\n", error.c_str());
      return 1;
    }
  }
  std::fprintf(stderr,
               "eta cluster-sim: speed %.0fx real time (%.1f s simulated in %.2f s wall, %.2f s "
               "CPU: %.0fx per CPU second; oracle excluded)%s; capacity %.2f s wall; peak RSS "
               "%.1f MiB\n",
               wall_seconds > 0 ? sim_seconds / wall_seconds : 0.0, sim_seconds, wall_seconds,
               cpu_total, cpu_total > 0 ? sim_seconds / cpu_total : 0.0,
               oracle_wall > 0
                   ? fmt::format("; oracle {:.0f}x ({:.1f} s in {:.2f} s)",
                                 oracle_sim_seconds / oracle_wall, oracle_sim_seconds, oracle_wall)
                         .c_str()
                   : "",
               capacity_wall, peak_rss_mib());
  return 0;
}

}  // namespace

void add_cluster_sim_command(CLI::App& root, Action& action) {
  auto opts = std::make_shared<ClusterSimOptions>();
  auto* cmd = root.add_subcommand(
      "cluster-sim",
      "a whole cluster (simulated engines + routing policies + an oracle) in virtual time, in one "
      "process: compares policies on identical arrivals at several loads");
  cmd->add_option("--replicas", opts->replicas,
                  "the cluster: 4xh100, 2xh100,2xa100, h100:speed=0.6,a100 (keys: speed, "
                  "max_num_seqs, max_num_batched_tokens, num_gpu_blocks)")
      ->required();
  cmd->add_option("--arch", opts->arch, "model every replica serves (llama-2-7b, llama-3.1-8b)")
      ->capture_default_str();
  cmd->add_option("--workload", opts->workload,
                  "workload name (azure-conv, mooncake-conv, synthetic, shared-prefix, multi-turn, "
                  "bursty-mix; NAME:key=value,...) or a trace file")
      ->required();
  cmd->add_option("--policy", opts->policy,
                  "policies to compare, comma-separated (a registered policy or oracle), or all")
      ->capture_default_str();
  cmd->add_option("--policy-params", opts->policy_params,
                  "parameters of one policy: NAME:key=value,key=value (repeatable)");
  cmd->add_option("--load", opts->load,
                  "arrival rate as fractions of the cluster's capacity, comma-separated")
      ->capture_default_str();
  cmd->add_option("--lengths", opts->lengths,
                  "exact: max_tokens = true length with ignore_eos; hidden: the router predicts "
                  "(max_tokens one value for the workload); hidden-scaled: as hidden with "
                  "max_tokens = max(2 x true length, 256), which tells the router the length "
                  "within a factor of two (the rule before 2026-12-02)")
      ->capture_default_str();
  cmd->add_option("--num-requests", opts->num_requests, "keep the first N requests")
      ->check(positive_number());
  cmd->add_option("--scrape-interval", opts->scrape_interval_ms, "metrics scrape interval (ms)")
      ->check(CLI::Range(0.1, 600000.0))
      ->capture_default_str();
  cmd->add_option("--scrape-jitter", opts->scrape_jitter,
                  "each scrape interval is multiplied by U(1 - j, 1 + j)")
      ->check(CLI::Range(0.0, 0.99))
      ->capture_default_str();
  cmd->add_option("--network-delay", opts->network_delay_ms,
                  "one-way delay between the router and a replica (ms)")
      ->check(CLI::Range(0.0, 60000.0))
      ->capture_default_str();
  cmd->add_option("--stale-after", opts->stale_after_ms,
                  "scrapes older than this are ignored by policies (ms)")
      ->check(CLI::Range(0.0, 1e9))
      ->capture_default_str();
  cmd->add_option("--seed", opts->seed, "seed of the workload, arrivals, scrapes and policies")
      ->capture_default_str();
  cmd->add_option("--json", opts->json_path, "write {\"config\", \"capacity\", \"runs\": [...]}");
  cmd->add_option("--svg", opts->svg_path, "write a plot of p99 TTFT and p99 E2E against load");
  cmd->add_flag("--find-capacity", opts->find_capacity,
                "measure and print the cluster's saturation throughput on the workload, then exit");
  cmd->add_option("--data-dir", opts->data_dir,
                  "directory of the trace files (default: the nearest shared/data above the "
                  "working directory or the executable)");
  cmd->add_option("--arrival", opts->arrival,
                  "auto (the workload's own process scaled to the rate), trace, poisson, "
                  "gamma:CV, constant")
      ->capture_default_str();
  cmd->add_option("--ledger", opts->ledger,
                  "off: policies do not see the router's own in-flight ledger (scrapes only)")
      ->capture_default_str();
  cmd->add_option("--routers", opts->routers,
                  "independent routers sharing the replicas; arrivals split round-robin")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cmd->add_option("--peer-sync", opts->peer_sync_ms,
                  "routers share their ledgers (dispatches with their predicted sizes, relayed "
                  "tokens, finishes), each learning the others' this many ms later (0: at once; no "
                  "effect with one router); "
                  "default off")
      ->check(CLI::Range(0.0, 60000.0));
  cmd->add_option("--peer-sync-tokens", opts->peer_sync_tokens,
                  "with --peer-sync: all (every relayed token) or first (only each request's "
                  "first token)")
      ->capture_default_str();
  // KV-cache events (issue 15)
  cmd->add_option("--kv-events", opts->kv_events_delay_ms,
                  "replicas publish KV-cache events (block stores and evictions per step) that "
                  "reach every router this many ms after the step; routers match prefixes from "
                  "them instead of their own index; default off")
      ->check(CLI::Range(0.0, 60000.0));
  cmd->add_option(
         "--peer-sync-protocol", opts->peer_sync_protocol,
         "with --peer-sync: ideal (every event, no loss) or live (eta route's protocol: "
         "encoded packets of dispatches, first tokens, finishes, heartbeats and snapshots; "
         "src/peer/)")
      ->capture_default_str();
  cmd->add_option("--peer-sync-loss", opts->peer_sync_loss,
                  "with --peer-sync-protocol live: probability that a packet does not reach a "
                  "router (seeded)")
      ->capture_default_str();
  cmd->add_flag("--router-knows-gpus", opts->router_knows_gpus,
                "start each replica's speed model from its true GPU profile (default: h100)");
  cmd->add_flag("--full-router-state", opts->full_router_state,
                "keep the prefix index and learn speed even for policies that read neither "
                "(same decisions, slower; reports their learned speed)");
  cmd->add_option("--slo", opts->slo, "SLOs for goodput (ms), e.g. ttft:1000,tpot:100; none")
      ->capture_default_str();
  // The load axis (issue 14 item 2).
  cmd->add_option("--load-basis", opts->load_basis,
                  "what --load is a fraction of: sustained (the highest rate --capacity-policy "
                  "sustains under the workload's own arrivals) or isolated (the replicas' summed "
                  "saturated throughput); --find-capacity measures every --policy's sustained and "
                  "goodput capacity when sustained")
      ->capture_default_str();
  cmd->add_option("--capacity-policy", opts->capacity_policy,
                  "the policy whose sustained capacity --load is a fraction of")
      ->capture_default_str();
  cmd->add_option("--capacity-rps", opts->capacity_rps,
                  "with --load-basis sustained: take this as the sustained capacity instead of "
                  "measuring it (requests/s)")
      ->check(CLI::Range(1e-9, 1e12));
  // Admission (issue 2.2): eta route's `admission:` block, applied per simulated router by the
  // live router's own functions (src/router/core/admission.hpp, router_queue.hpp).
  cmd->add_option("--max-in-flight", opts->max_in_flight,
                  "each router's in-flight bound (its dispatched, unfinished requests) before it "
                  "queues or sheds (429 shed_capacity); 0: none")
      ->check(CLI::Range(0, 1000000000));
  cmd->add_option("--max-in-flight-per-replica", opts->max_in_flight_per_replica,
                  "each router's in-flight bound per replica (replicas at it are not picked); 0: "
                  "none")
      ->check(CLI::Range(0, 1000000000));
  cmd->add_option("--ttft-slo", opts->ttft_slo_ms,
                  "shed (429 shed_slo) when the best predicted TTFT among the pick's candidates "
                  "exceeds this (ms); 0: off")
      ->check(CLI::Range(0.0, 1e12));
  cmd->add_option("--queue-size", opts->queue_size,
                  "each router holds up to this many requests at capacity or over the SLO instead "
                  "of 429 (full: 429 queue_full); 0: no queue")
      ->check(CLI::Range(0, 1000000000));
  cmd->add_option("--queue-timeout", opts->queue_timeout_ms,
                  "a held request gets 429 queue_timeout after this long (ms)")
      ->check(CLI::Range(0.001, 1e12))
      ->capture_default_str();
  cmd->add_flag("--late-binding", opts->late_binding,
                "also run every listed policy with late binding (labelled NAME+late; or list "
                "NAME+late in --policy): a request every replica would only queue waits at the "
                "router and goes to the first replica that frees (--late-binding-rule)");
  cmd->add_option("--late-binding-max-hold", opts->late_max_hold_ms,
                  "late binding: the longest a request is held (ms)")
      ->check(CLI::Range(0.0, 60000.0))
      ->capture_default_str();
  cmd->add_option("--late-binding-ttft", opts->late_ttft_threshold_ms,
                  "late binding, rule busy: a replica predicted over this TTFT (ms) is busy too; "
                  "0: only a waiting queue makes it busy")
      ->check(CLI::Range(0.0, 1e12));
  cmd->add_option("--late-binding-rule", opts->late_rule,
                  "late binding's hold rule: busy (every replica busy: a waiting queue, full "
                  "slots, more pending prefill than a step takes) or wait (the pooled queue: "
                  "every replica would make the request wait longer than --late-binding-margin; "
                  "a held request goes to the replica that starts it first)")
      ->capture_default_str();
  cmd->add_option("--late-binding-margin", opts->late_wait_margin_ms,
                  "late binding, rule wait: a replica predicted to make the request wait no "
                  "longer than this (ms) can take it now")
      ->check(CLI::Range(0.0, 60000.0))
      ->capture_default_str();
  cmd->add_option("--late-binding-fraction", opts->late_wait_fraction,
                  "late binding, rule wait: ... or no longer than this fraction of the rest of "
                  "its predicted TTFT there (0: the margin alone)")
      ->check(CLI::Range(0.0, 1000.0))
      ->capture_default_str();
  cmd->callback([opts, &action] { action = [opts] { return run_cluster_sim(*opts); }; });
}

}  // namespace eta::app
