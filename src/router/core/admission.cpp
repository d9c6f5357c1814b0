#include "router/core/admission.hpp"

#include <fmt/format.h>

namespace eta::router {

RouteResult admit_in_flight(const AdmissionConfig& config, bool retry, int total_in_flight) {
  if (!retry && config.max_in_flight > 0 && total_in_flight >= config.max_in_flight) {
    return RouteResult::kAtCapacity;
  }
  return RouteResult::kDispatched;
}

RouteResult admit_eligible(const Eligibility& e, bool retry) {
  if (e.eligible == 0) {
    return e.any_known && !e.any_serving ? RouteResult::kUnknownModel : RouteResult::kNoReplica;
  }
  if (e.candidates == 0) return retry ? RouteResult::kNoReplica : RouteResult::kAtCapacity;
  return RouteResult::kDispatched;
}

RouteResult admit_after_pick(const AdmissionConfig& config, bool retry, double best_ttft_s) {
  if (!retry && config.ttft_slo_s > 0 && best_ttft_s > config.ttft_slo_s) {
    return RouteResult::kSloShed;
  }
  return RouteResult::kDispatched;
}

bool queue_first(const AdmissionConfig& config, size_t queue_length) {
  return queue_length > 0 && config.queue_size > 0;
}

Disposition dispose(const AdmissionConfig& config, RouteResult result) {
  switch (result) {
    case RouteResult::kDispatched:
      return Disposition::kDispatched;
    case RouteResult::kAtCapacity:
    case RouteResult::kSloShed:
      return config.queue_size > 0 ? Disposition::kQueue : Disposition::kRefuse;
    case RouteResult::kHeld:
      return Disposition::kQueue;
    case RouteResult::kNoReplica:
    case RouteResult::kUnknownModel:
      return Disposition::kRefuse;
  }
  return Disposition::kRefuse;
}

Refusal refusal_of(RouteResult result) {
  switch (result) {
    case RouteResult::kAtCapacity:
      return Refusal::kAtCapacity;
    case RouteResult::kSloShed:
      return Refusal::kSloShed;
    case RouteResult::kUnknownModel:
      return Refusal::kUnknownModel;
    case RouteResult::kDispatched:
    case RouteResult::kNoReplica:
    case RouteResult::kHeld:
      break;
  }
  return Refusal::kNoReplica;
}

RefusalAnswer refusal_answer(Refusal refusal, const AdmissionConfig& config,
                             std::string_view model) {
  RefusalAnswer a;
  auto too_many = [&](std::string_view reason, std::string message) {
    a.status = 429;
    a.type = "TooManyRequestsError";
    a.message = std::move(message);
    a.reason = reason;
    a.retry_after_s = config.retry_after_s;
    a.rejection = true;
  };
  switch (refusal) {
    case Refusal::kRateLimited:
      return rate_limit_answer(false, 0, 0, config.retry_after_s);
    case Refusal::kAtCapacity:
      too_many("shed_capacity", "The router is at its in-flight limit; retry later.");
      break;
    case Refusal::kSloShed:
      too_many("shed_slo", fmt::format("Every replica is predicted to miss the TTFT objective of "
                                       "{:g} s; retry later.",
                                       config.ttft_slo_s));
      break;
    case Refusal::kQueueFull:
      too_many("queue_full", fmt::format("The router's queue is full ({} requests); retry later.",
                                         config.queue_size));
      break;
    case Refusal::kQueueTimeout:
      too_many("queue_timeout",
               fmt::format("The request waited {:g} s in the router's queue; retry later.",
                           config.queue_timeout_s));
      break;
    case Refusal::kNoReplica:
      a.status = 503;
      a.type = "ServiceUnavailableError";
      a.message = fmt::format("No replica is available for model `{}`.", model);
      a.reason = "no_replica";
      break;
    case Refusal::kUnknownModel:
      a.status = 404;
      a.type = "NotFoundError";
      a.message = fmt::format("The model `{}` does not exist.", model);
      a.reason = "unknown_model";
      break;
    case Refusal::kShuttingDown:
      a.status = 503;
      a.type = "ServiceUnavailableError";
      a.message = "The router is shutting down.";
      a.reason = "shutting_down";
      break;
  }
  return a;
}

RefusalAnswer rate_limit_answer(bool tokens_limit, double per_minute, double request_tokens,
                                int retry_after_s) {
  RefusalAnswer a;
  a.status = 429;
  a.type = "TooManyRequestsError";
  a.reason = "rate_limited";
  a.retry_after_s = retry_after_s;
  a.message = tokens_limit ? fmt::format(
                                 "Rate limit reached for this API key: {:g} tokens per "
                                 "minute (this request counts {:g}); retry in {} s.",
                                 per_minute, request_tokens, retry_after_s)
                           : fmt::format(
                                 "Rate limit reached for this API key: {:g} requests "
                                 "per minute; retry in {} s.",
                                 per_minute, retry_after_s);
  return a;
}

}  // namespace eta::router
