#include "router/router_metrics.hpp"

namespace eta::router {

const std::vector<double>& latency_buckets() {
  static const std::vector<double> b = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075,
                                        0.1,   0.25,   0.5,   0.75, 1.0,   2.5,  5.0,
                                        7.5,   10.0,   15.0,  20.0, 30.0,  45.0, 60.0};
  return b;
}

const std::vector<double>& prediction_error_buckets() {
  static const std::vector<double> b = {-0.9,  -0.75, -0.5, -0.3, -0.2, -0.15, -0.1,
                                        -0.05, 0.0,   0.05, 0.1,  0.15, 0.2,   0.3,
                                        0.5,   0.75,  1.0,  2.0,  5.0,  10.0};
  return b;
}

const std::vector<double>& decision_buckets() {
  static const std::vector<double> b = {1e-6,   2.5e-6, 5e-6, 1e-5,   2.5e-5, 5e-5, 1e-4,
                                        2.5e-4, 5e-4,   1e-3, 2.5e-3, 5e-3,   1e-2};
  return b;
}

RouterMetrics::RouterMetrics(std::string policy_in)
    : policy(std::move(policy_in)),
      requests(registry.counter("eta_requests", "Responses sent to clients, by final status.",
                                {"replica", "policy", "status"})),
      errors(registry.counter("eta_errors", "Requests that failed or were refused, by reason.",
                              {"reason"})),
      retries(registry.counter("eta_retries", "Attempts moved off this replica to another one.",
                               {"replica"})),
      failovers(registry.counter(
          "eta_failovers",
          "Requests the replica answered after an attempt on another replica had failed.",
          {"replica"})),
      rejections(registry.counter("eta_admission_rejections",
                                  "Requests refused with 429 by admission control, by reason.",
                                  {"reason"})),
      in_flight(registry.gauge("eta_in_flight_requests",
                               "Requests in flight on the replica through this router.",
                               {"replica"})),
      queue_length(
          registry.gauge("eta_queue_length", "Requests held in the router's admission queue.")),
      decision_seconds(registry.histogram("eta_decision_seconds",
                                          "Time to prepare a request and pick its replica.", {},
                                          decision_buckets())),
      ttft_seconds(registry.histogram("eta_ttft_seconds",
                                      "Time from the request's arrival to its first relayed token.",
                                      {"replica"}, latency_buckets())),
      e2e_seconds(registry.histogram("eta_e2e_seconds",
                                     "Time from the request's arrival to its last relayed byte.",
                                     {"replica"}, latency_buckets())),
      ttft_prediction_error(
          registry
              .histogram("eta_ttft_prediction_error_ratio",
                         "Relative error (predicted - actual) / actual of the predicted TTFT.",
                         {"policy"}, prediction_error_buckets())
              .with({policy})),
      e2e_prediction_error(
          registry
              .histogram("eta_e2e_prediction_error_ratio",
                         "Relative error (predicted - actual) / actual of the predicted E2E.",
                         {"policy"}, prediction_error_buckets())
              .with({policy})),
      output_tokens(
          registry.counter("eta_output_tokens", "Output tokens relayed to clients.", {"replica"})),
      scrape_age(registry.gauge("eta_scrape_age_seconds",
                                "Age of the last successful /metrics scrape of the replica.",
                                {"replica"})),
      scrapes(registry.counter("eta_scrapes", "Successful /metrics scrapes.", {"replica"})),
      scrape_failures(registry.counter(
          "eta_scrape_failures",
          "Failed polls of a replica (/metrics; /v1/models refused: unauthorized).",
          {"replica", "reason"})),
      health_failures(
          registry.counter("eta_health_check_failures", "Failed health checks.", {"replica"})),
      healthy(registry.gauge("eta_replica_healthy", "1 if the replica passes its health checks.",
                             {"replica"})),
      routable(registry.gauge("eta_replica_routable",
                              "1 if new requests may go to the replica (healthy, models known, "
                              "not draining).",
                              {"replica"})),
      speed_factor(registry.gauge("eta_speed_factor",
                                  "Learned speed of the replica relative to its profile.",
                                  {"replica", "phase"})),
      prompt_tokens_source(registry.counter(
          "eta_prompt_tokens_source",
          "Completions and chat requests by where their prompt's tokens came from.", {"source"})),
      tokenize_wait_seconds(registry
                                .histogram("eta_tokenize_wait_seconds",
                                           "Time a request waited for a replica's /tokenize.", {},
                                           decision_buckets())
                                .with()) {}

}  // namespace eta::router
