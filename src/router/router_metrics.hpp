// The router's own Prometheus metrics (GET /metrics on the main listener). Names start with
// `eta_`, values are in base units (seconds, bytes), counters end in `_total`. Label `replica` is
// the replica's URL; `replica="none"` counts requests answered before any replica was chosen.
// Label values are bounded: replicas are configured, policy is the router's one policy, status
// is an HTTP status, reason and phase come from fixed lists.
//
//   eta_requests_total{replica,policy,status}   responses sent to clients, by final status
//   eta_errors_total{reason}                    failed or refused requests: bad_request,
//       unauthorized, unknown_model, no_replica, shed_capacity, shed_slo, queue_full,
//       queue_timeout, upstream_connect, upstream_timeout, upstream_reset, upstream_5xx,
//       upstream_protocol, upstream_unhealthy, mid_stream, client_disconnect, shutting_down,
//       rate_limited, replica_removed, upstream_overloaded (a replica's 503: its queue is full)
//   eta_retries_total{replica}                  attempts moved off this replica to another
//   eta_failovers_total{replica}                requests this replica answered (2xx) after an
//       attempt on another replica had failed
//   eta_admission_rejections_total{reason}      429s: shed_capacity, shed_slo, queue_full,
//       queue_timeout
//   eta_in_flight_requests{replica}             requests in flight there through this router
//   eta_queue_length                            requests held in the admission queue
//   eta_decision_seconds                        prepare + pick time per decision (histogram,
//       1 us .. 10 ms)
//   eta_ttft_seconds{replica}                   router arrival -> first token relayed (streams;
//       histogram, 1 ms .. 60 s)
//   eta_e2e_seconds{replica}                    router arrival -> last byte relayed (1 ms .. 60 s)
//   eta_ttft_prediction_error_ratio{policy}     (predicted - actual) / actual TTFT of 2xx
//       streams; actual runs from the dispatch of the attempt that answered, when the
//       prediction was made (histogram, -0.9 .. 10)
//   eta_e2e_prediction_error_ratio{policy}      the same for E2E (every 2xx response)
//   eta_output_tokens_total{replica}            output tokens relayed
//   eta_scrape_age_seconds{replica}             age of the last successful /metrics scrape
//   eta_scrapes_total{replica} / eta_scrape_failures_total{replica,reason}   reason: connect,
//       timeout, status, parse, no_vllm_metrics (--disable-log-stats), unauthorized (a 401/403
//       to /metrics or /v1/models)
//   eta_health_check_failures_total{replica}
//   eta_replica_healthy{replica}, eta_replica_routable{replica}   0/1
//   eta_speed_factor{replica,phase}             learned speed factors (phase: prefill, decode)
//   eta_prompt_tokens_source_total{source}      completions and chat requests by where their
//       prompt's tokens came from (core/tokenize.hpp): estimate, tokenize, cache, timeout, error
//   eta_tokenize_wait_seconds                   time a request waited for a replica's
//       /tokenize (histogram, 1 us .. 10 ms)
#pragma once

#include <string>
#include <vector>

#include "metrics/registry.hpp"

namespace eta::router {

// Latency buckets for TTFT and E2E: 1 ms .. 60 s (a router sees both sub-millisecond
// simulated replicas and minute-long generations).
const std::vector<double>& latency_buckets();
const std::vector<double>& decision_buckets();
// Relative prediction error (predicted - actual) / actual: -0.9 .. 10, finer near 0.
const std::vector<double>& prediction_error_buckets();

struct RouterMetrics {
  explicit RouterMetrics(std::string policy = "");

  std::string policy;  // the value of the `policy` label

  metrics::Registry registry;
  metrics::CounterFamily& requests;
  metrics::CounterFamily& errors;
  metrics::CounterFamily& retries;
  metrics::CounterFamily& failovers;
  metrics::CounterFamily& rejections;
  metrics::GaugeFamily& in_flight;
  metrics::GaugeFamily& queue_length;
  metrics::HistogramFamily& decision_seconds;
  metrics::HistogramFamily& ttft_seconds;
  metrics::HistogramFamily& e2e_seconds;
  metrics::Histogram& ttft_prediction_error;
  metrics::Histogram& e2e_prediction_error;
  metrics::CounterFamily& output_tokens;
  metrics::GaugeFamily& scrape_age;
  metrics::CounterFamily& scrapes;
  metrics::CounterFamily& scrape_failures;
  metrics::CounterFamily& health_failures;
  metrics::GaugeFamily& healthy;
  metrics::GaugeFamily& routable;
  metrics::GaugeFamily& speed_factor;
  metrics::CounterFamily& prompt_tokens_source;
  metrics::Histogram& tokenize_wait_seconds;

  void count_request(const std::string& replica, int status) {
    requests.with({replica, policy, std::to_string(status)}).inc();
  }
  void count_error(const std::string& reason) { errors.with({reason}).inc(); }
};

}  // namespace eta::router
