// The router's own Prometheus metrics (GET /metrics on the main listener). Names start with
// `eta_`, values are in base units (seconds, bytes), counters end in `_total`. Label `replica` is
// the replica's URL; `replica="none"` counts requests answered before any replica was chosen.
//
//   eta_requests_total{replica,status}          responses sent to clients, by final status
//   eta_errors_total{reason}                    failed or refused requests: bad_request,
//       unauthorized, unknown_model, no_replica, shed_capacity, shed_slo, queue_full,
//       queue_timeout, upstream_connect, upstream_timeout, upstream_reset, upstream_5xx,
//       upstream_protocol, mid_stream, client_disconnect
//   eta_retries_total{replica}                  attempts moved off this replica to another
//   eta_in_flight_requests{replica}             requests in flight there through this router
//   eta_queue_length                            requests held in the admission queue
//   eta_decision_seconds                        prepare + pick time per decision (histogram)
//   eta_ttft_seconds{replica}                   router arrival -> first token relayed (streams)
//   eta_e2e_seconds{replica}                    router arrival -> last byte relayed
//   eta_output_tokens_total{replica}            output tokens relayed
//   eta_scrape_age_seconds{replica}             age of the last successful /metrics scrape
//   eta_scrapes_total{replica} / eta_scrape_failures_total{replica}
//   eta_health_check_failures_total{replica}
//   eta_replica_healthy{replica}, eta_replica_routable{replica}   0/1
//   eta_speed_factor{replica,phase}             learned speed factors (phase: prefill, decode)
#pragma once

#include <string>
#include <vector>

#include "metrics/registry.hpp"

namespace eta::router {

// vLLM's bucket bounds for TTFT and request latency (../shared/vllm-interface.md §5), so the
// router's histograms compare with the replicas' own.
const std::vector<double>& ttft_buckets();
const std::vector<double>& e2e_buckets();
const std::vector<double>& decision_buckets();

struct RouterMetrics {
  RouterMetrics();

  metrics::Registry registry;
  metrics::CounterFamily& requests;
  metrics::CounterFamily& errors;
  metrics::CounterFamily& retries;
  metrics::GaugeFamily& in_flight;
  metrics::GaugeFamily& queue_length;
  metrics::HistogramFamily& decision_seconds;
  metrics::HistogramFamily& ttft_seconds;
  metrics::HistogramFamily& e2e_seconds;
  metrics::CounterFamily& output_tokens;
  metrics::GaugeFamily& scrape_age;
  metrics::CounterFamily& scrapes;
  metrics::CounterFamily& scrape_failures;
  metrics::CounterFamily& health_failures;
  metrics::GaugeFamily& healthy;
  metrics::GaugeFamily& routable;
  metrics::GaugeFamily& speed_factor;

  void count_request(const std::string& replica, int status) {
    requests.with({replica, std::to_string(status)}).inc();
  }
  void count_error(const std::string& reason) { errors.with({reason}).inc(); }
};

}  // namespace eta::router
