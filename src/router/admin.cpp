#include "router/admin.hpp"

#include <cmath>

#include <simdjson.h>
#include <boost/json.hpp>

namespace eta::router {

namespace {

namespace json = boost::json;

json::value num(double v) {
  if (!std::isfinite(v)) return nullptr;
  return v;
}

json::value string_or_null(const std::string& s) {
  return s.empty() ? json::value(nullptr) : json::value(s);
}

json::object scrape_object(const ReplicaReport& r) {
  return json::object{
      {"valid", r.scrape.valid},
      {"fresh", r.scrape_fresh},
      {"age_s", r.scrape_age_s < 0 ? json::value(nullptr) : json::value(r.scrape_age_s)},
      {"running", r.scrape.running},
      {"waiting", r.scrape.waiting},
      {"kv_usage", r.scrape.kv_usage},
      {"num_gpu_blocks", r.scrape.num_gpu_blocks},
      {"block_size", r.scrape.block_size},
      {"prefix_hit_rate", r.scrape.prefix_hit_rate},
      {"preemptions", r.scrape.preemptions},
      {"scrapes", r.scrapes},
      {"failures", r.scrape_failures},
  };
}

json::object ledger_object(const cluster::LedgerSummary& l) {
  return json::object{
      {"in_flight", l.in_flight},
      {"prefilling", l.prefilling},
      {"decoding", l.decoding},
      {"pending_prefill_tokens", l.pending_prefill_tokens},
      {"context_tokens", l.context_tokens},
      {"kv_tokens", l.kv_tokens},
      {"predicted_remaining_decode_tokens", l.predicted_remaining_decode_tokens},
  };
}

json::object limits_object(const cluster::EngineLimits& l) {
  return json::object{
      {"max_num_batched_tokens", l.max_num_batched_tokens},
      {"max_num_seqs", l.max_num_seqs},
      {"num_gpu_blocks", l.num_gpu_blocks},
      {"block_size", l.block_size},
  };
}

json::object speed_object(const ReplicaReport& r) {
  return json::object{
      {"prefill_factor", num(r.prefill_factor)},
      {"decode_factor", num(r.decode_factor)},
      {"prefill_observations", r.prefill_observations},
      {"decode_observations", r.decode_observations},
  };
}

json::object predicted_object(const ReplicaReport& r) {
  return json::object{
      {"prompt_tokens", r.typical_prompt_tokens},
      {"output_tokens", r.typical_output_tokens},
      {"ttft_s", num(r.predicted_ttft_s)},
      {"e2e_s", num(r.predicted_e2e_s)},
  };
}

json::object window_object(const ReplicaReport& r) {
  return json::object{
      {"ttft_p50_s", num(r.ttft_p50_s)},     {"ttft_p99_s", num(r.ttft_p99_s)},
      {"ttft_samples", r.ttft_samples},      {"requests_per_s", num(r.requests_per_s)},
      {"tokens_per_s", num(r.tokens_per_s)},
  };
}

// null when the replica's KV-cache events are off.
json::value kv_events_value(const KvEventsStatus& kv) {
  if (!kv.enabled) return nullptr;
  return json::object{
      {"endpoint", kv.endpoints.endpoint},
      {"replay", string_or_null(kv.endpoints.replay)},
      {"batches", kv.batches},
      {"last_seq", kv.last_seq},
      {"duplicates", kv.duplicates},
      {"gaps", kv.gaps},
      {"gaps_filled", kv.gaps_filled},
      {"gaps_lost", kv.gaps_lost},
      {"restarts", kv.restarts},
      {"decode_errors", kv.decode_errors},
      {"blocks_stored", kv.index.stored},
      {"blocks_removed", kv.index.removed},
      {"removed_unknown", kv.index.removed_unknown},
      {"unkeyed_blocks", kv.index.unkeyed},
      {"clears", kv.index.clears},
      {"cached_blocks", kv.index.blocks},
      {"seeded_blocks", kv.index.seeds},
  };
}

json::object report_object(const ReplicaReport& r) {
  json::array models;
  for (const std::string& m : r.models) models.push_back(json::value(m));
  const KvEventsStatus& kv = r.kv_events;
  return json::object{
      {"url", r.url},
      {"weight", r.weight},
      {"gpu", r.gpu},
      {"arch", r.arch},
      {"healthy", r.healthy},
      {"health_known", r.health_known},
      {"routable", r.routable},
      {"draining", r.draining},
      {"removing", r.removing},
      {"consecutive_failures", r.consecutive_failures},
      {"last_error", string_or_null(r.last_error)},
      {"unroutable_reason", string_or_null(r.unroutable_reason)},
      {"models_known", r.models_known},
      {"models", std::move(models)},
      {"time_scale", r.time_scale ? json::value(*r.time_scale) : json::value(nullptr)},
      {"scrape", scrape_object(r)},
      {"ledger", ledger_object(r.ledger)},
      {"limits", limits_object(r.limits)},
      {"speed", speed_object(r)},
      {"predicted_typical", predicted_object(r)},
      {"window", window_object(r)},
      {"requests", r.requests},
      {"failures", r.failures},
      {"prefix_source", kv.enabled && kv.index.batches > 0 ? "kv_events" : "router_index"},
      {"kv_events", kv_events_value(kv)},
  };
}

}  // namespace

std::string replica_json(const ReplicaReport& replica) {
  return json::serialize(report_object(replica));
}

std::string replicas_array_json(std::span<const ReplicaReport> replicas) {
  json::array list;
  list.reserve(replicas.size());
  for (const ReplicaReport& r : replicas) list.push_back(report_object(r));
  return json::serialize(list);
}

std::string replicas_json(std::span<const ReplicaReport> replicas) {
  return "{\"replicas\":" + replicas_array_json(replicas) + "}";
}

bool parse_admin_body(std::string_view body, bool allow_spec, AdminReplicaBody& out,
                      std::string& error) {
  out = AdminReplicaBody{};
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::object obj;
  if (parser.parse(body.data(), body.size(), true).get(doc) != simdjson::SUCCESS ||
      doc.get_object().get(obj) != simdjson::SUCCESS) {
    error = "the body must be a JSON object";
    return false;
  }
  for (auto field : obj) {
    const std::string_view key = field.key;
    const simdjson::dom::element v = field.value;
    if (key == "url") {
      std::string_view s;
      if (v.get_string().get(s) != simdjson::SUCCESS) {
        error = "url must be a string";
        return false;
      }
      out.url = std::string(s);
    } else if (key == "force" && !allow_spec) {
      bool b = false;
      if (v.get_bool().get(b) != simdjson::SUCCESS) {
        error = "force must be true or false";
        return false;
      }
      out.force = b;
    } else if (allow_spec && key == "weight") {
      double w = 0;
      if (v.get_double().get(w) != simdjson::SUCCESS || !(w >= 0) || !std::isfinite(w)) {
        error = "weight must be a number >= 0";
        return false;
      }
      out.weight = w;
    } else if (allow_spec && (key == "gpu" || key == "arch")) {
      std::string_view s;
      if (v.get_string().get(s) != simdjson::SUCCESS) {
        error = std::string(key) + " must be a string";
        return false;
      }
      (key == "gpu" ? out.gpu : out.arch) = std::string(s);
    } else {
      error = "unknown field '" + std::string(key) +
              "' (known: " + (allow_spec ? "url, weight, gpu, arch" : "url, force") + ")";
      return false;
    }
  }
  if (out.url.empty()) {
    error = "url is required";
    return false;
  }
  return true;
}

}  // namespace eta::router
