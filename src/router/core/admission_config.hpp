// The admission settings (the `admission:` section of eta route's file): one struct shared by the
// configuration (core/config.hpp) and admission (core/admission.hpp) without either pulling in
// the other.
#pragma once

#include <string>

namespace eta::router {

struct AdmissionConfig {
  int max_in_flight = 0;              // requests in flight through the router; 0 = unlimited
  int max_in_flight_per_replica = 0;  // 0 = unlimited
  double ttft_slo_s = 0;       // shed when every replica's predicted TTFT is over it; 0 = off
  int queue_size = 0;          // requests held while at capacity; 0 = no queue (429 at once)
  double queue_timeout_s = 5;  // a held request gets 429 after this long
  int retry_after_s = 1;       // Retry-After of a 429
  bool operator==(const AdmissionConfig&) const = default;
};

// Late binding (issue 2.4; core/late_binding.hpp): a request every replica is too busy to start
// at once waits at the router, in the router queue, and goes to whichever replica frees first.
struct LateBindingConfig {
  bool enabled = false;
  double max_hold_s = 0.5;  // the longest a request is held; then it goes to the best pick
  // The hold rule (core/late_binding.hpp): "wait" (the pooled queue: every candidate's predicted
  // wait for this request over wait_margin_s and over wait_fraction x the rest of its TTFT) or
  // "busy" (every candidate busy: a waiting queue, full slots, more pending prefill than a step
  // takes, or over ttft_threshold_s).
  std::string rule = "wait";
  double ttft_threshold_s = 0;  // busy: a replica predicted over this TTFT is busy too (0: off)
  double wait_margin_s = 0.05;  // wait: a replica it would wait on no longer than this is free
  double wait_fraction = 1;     // wait: ... or no longer than the rest of its TTFT times this
  int max_held = 1024;          // requests held at once (more: sent at arrival as without it)
  bool operator==(const LateBindingConfig&) const = default;
};

}  // namespace eta::router
