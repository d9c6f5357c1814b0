// RouterCore: one attempt of a request on one replica, top to bottom: the upstream request, its
// head (held back, buffered or streamed), its body (relayed, counted, rewritten), its end, and
// what the retry policy (retry_policy.hpp) says about every failure.
#include <cmath>

#include <spdlog/spdlog.h>

#include "openai/request.hpp"
#include "router/aliases.hpp"
#include "router/core/router_core.hpp"
#include "router/headers.hpp"
#include "util/duration.hpp"

namespace eta::router {

namespace {

constexpr uint64_t kMaxBufferedBody = 256ull << 20;  // a non-streamed upstream body

bool is_event_stream(std::string_view content_type) {
  return content_type.size() >= 17 && iequals(content_type.substr(0, 17), "text/event-stream");
}

std::string error_event(std::string_view message, int status, std::string_view type) {
  openai::Error e;
  e.status = status;
  e.type = std::string(type);
  e.message = std::string(message);
  return "data: " + openai::error_body(e) + "\n\ndata: [DONE]\n\n";
}

}  // namespace

void RouterCore::start_attempt(const CallPtr& c, int index) {
  ReplicaRecord& r = replicas_.at(index);
  c->replica = index;
  c->attempt_active = true;
  c->mode = Call::Mode::kNone;
  c->status = 0;
  c->headers.clear();
  c->content_type.clear();
  c->body.clear();
  c->sse = false;
  c->scanner.reset();
  c->first_token = false;
  c->relayed_tokens = 0;
  c->dispatch = now();
  replicas_.attempt_started(r);
  ++total_in_flight_;
  if (c->use_ledger) {
    state_.on_dispatch(c->id, index, c->prepared.features, now());
    observer_.dispatched(*c);
  }
  c->rewriter.reset();
  http::ClientRequest req = upstream_request(c, r);
  // Handlers belong to this attempt: once the call has moved on (fail_over_unanswered cancels an
  // attempt and retries at once), the canceled attempt's completion must not touch the new one.
  const int attempt = c->attempt;
  http::ResponseHandlers h;
  // They run on the call's worker and take the core's mutex (router_core.hpp, "Threads").
  h.on_head = [this, c, attempt](const http::ResponseHead& head) {
    std::lock_guard lock(mu_);
    if (c->attempt == attempt) on_head(c, head);
  };
  h.on_body = [this, c, attempt](std::string_view data) { on_body(c, attempt, data); };
  h.on_complete = [this, c, attempt](const http::ClientResult& result) {
    std::lock_guard lock(mu_);
    if (c->attempt == attempt) on_complete(c, result);
  };
  c->upstream = env_.send(c->worker, index, std::move(req), std::move(h));
}

http::ClientRequest RouterCore::upstream_request(const CallPtr& c, const ReplicaRecord& r) {
  const http::Request& in = c->exchange->request();
  http::ClientRequest req;
  req.method = in.method;
  req.target = in.target;
  forward_request_headers(in.headers, req.headers);
  set_upstream_authorization(req.headers, !config_.api_keys.empty(), upstream_key(r));
  req.body =
      c->forward_body.empty() ? std::string_view(in.body) : std::string_view(c->forward_body);
  // Model aliases: the replica is asked for the model under the name it serves (each attempt
  // from the client's body), and answers are rewritten back.
  const std::string* served = served_name_for(config_.models.aliases, c->info.model, r.models.ids);
  if (served != nullptr && *served != c->info.model) {
    req.body_storage = rewrite_field(req.body, "model", c->info.model, *served, true);
    c->model_rewriter.reset("model", *served, c->info.model);
  } else {
    c->model_rewriter.clear();
  }
  req.head_timeout = ms(config_.timeouts.first_byte_s);
  req.idle_timeout = ms(config_.timeouts.idle_s);
  return req;
}

void RouterCore::on_head(const CallPtr& c, const http::ResponseHead& head) {
  if (c->finished) return;
  c->status = head.status;
  relay_response_headers(head, c->headers, c->content_type);
  if (hold_error_head_lazy(head.status, [&] { return retry_budget(*c); })) {
    c->mode = Call::Mode::kHeld;  // not relayed: retried elsewhere once complete
    return;
  }
  add_eta_headers(*c, c->headers);
  if (head.content_length && !head.chunked) {
    c->mode = Call::Mode::kBuffered;
    if (*head.content_length <= kMaxBufferedBody) c->body.reserve(*head.content_length);
    return;
  }
  c->mode = Call::Mode::kStreaming;
  c->sse = is_event_stream(c->content_type);
  c->exchange->start_stream(head.status, c->content_type, c->headers);
}

void RouterCore::on_body(const CallPtr& c, int attempt, std::string_view data) {
  std::unique_lock lock(mu_);
  if (c->attempt != attempt || c->finished) return;
  switch (c->mode) {
    case Call::Mode::kStreaming:
      lock.unlock();  // the data path runs outside the core's mutex
      return relay_stream(c, data);
    case Call::Mode::kHeld:
    case Call::Mode::kBuffered:
      if (c->body.size() + data.size() > kMaxBufferedBody) {
        c->cancel_upstream();
        return;
      }
      c->body.append(data);
      return;
    case Call::Mode::kNone:
      return;
  }
}

// On the call's worker, outside the core's mutex: the stream's own state is under stream_mu;
// what the tokens change in the ledger and the metrics, under the mutex.
void RouterCore::relay_stream(const CallPtr& c, std::string_view data) {
  int n = 0;
  std::string response_id;
  {
    std::lock_guard stream(c->stream_mu);
    if (c->stream_closed) return;
    std::string_view out = data;
    if (c->rewrite_stream && c->sse) {
      // The client's own stream back from the one the router asked for (whole events).
      c->rewritten.clear();
      c->rewriter.feed(data, c->rewritten);
      out = c->rewritten;
    }
    out = c->rewrite(out, false);               // model aliases: the public name back
    if (!out.empty()) c->exchange->write(out);  // first: relaying adds no latency
    if (!c->sse) return;
    n = c->scanner.feed(data);
    if (c->route->api == openai::Api::kResponses && !c->scanner.response_id().empty() &&
        c->status < 300) {
      response_id = c->scanner.response_id();
    }
  }
  if (n <= 0 && response_id.empty()) return;
  std::lock_guard lock(mu_);
  if (c->finished) return;
  if (!response_id.empty() && c->pinned < 0) {
    c->pinned = c->replica;  // learned: a retrieval may come while it streams
    remember_response(std::move(response_id), c->replica);
  }
  if (n <= 0) return;
  const double t = now();
  if (!c->first_token) {
    c->first_token = true;
    observer_.first_token(*c, n);
    // Late binding: a prefill ended, so a held request may start now.
    if (config_.late_binding.enabled && !queue_.empty()) env_.post([this] { pump_queue(); });
    c->ttft_s = t - c->arrival;
    metrics_.ttft_seconds.with({replicas_.at(c->replica).url()}).observe(c->ttft_s);
    if (c->status >= 200 && c->status < 300 && std::isfinite(c->predicted_ttft_s)) {
      const double actual = t - c->dispatch;
      if (actual > 0) {
        metrics_.ttft_prediction_error.observe((c->predicted_ttft_s - actual) / actual);
      }
    }
  }
  c->relayed_tokens += n;
  state_.on_tokens(c->id, n, t);
}

void RouterCore::release_attempt(Call& c) {
  if (!c.attempt_active) return;
  c.attempt_active = false;
  observer_.attempt_ended(c);  // peers: an abort unless complete() said finished first
  ReplicaRecord& r = replicas_.at(c.replica);
  --total_in_flight_;
  if (replicas_.attempt_ended(r)) finish_removal(r);
}

void RouterCore::on_complete(const CallPtr& c, const http::ClientResult& result) {
  c->upstream.reset();
  if (c->finished) return;
  AttemptOutcome o;
  o.error = result.error;
  o.head_received = result.head_received;
  o.held = c->mode == Call::Mode::kHeld;
  o.status = c->status;
  const RetryVerdict v = decide_retry_lazy(o, [&] { return retry_budget(*c); });
  if (v.action == RetryAction::kComplete) return complete(c);
  ReplicaRecord& r = replicas_.at(c->replica);
  if (v.mid_stream) return fail_mid_response(c, v, result);
  if (v.mark_unhealthy) {
    ++r.failures;
    health_result(r.index, false,
                  std::string("proxy: ") + std::string(http::to_string(result.error)) +
                      (result.detail.empty() ? "" : ": " + result.detail));
  }
  const std::string detail = result.ok()             ? "status " + std::to_string(c->status)
                             : result.detail.empty() ? std::string(http::to_string(result.error))
                                                     : result.detail;
  attempt_failed(c, v, detail);
}

// The head was relayed (or is being buffered): no retry.
void RouterCore::fail_mid_response(const CallPtr& c, const RetryVerdict& v,
                                   const http::ClientResult& result) {
  ReplicaRecord& r = replicas_.at(c->replica);
  ++r.failures;
  const std::string what =
      "proxy: " + std::string(http::to_string(result.error)) + " after the head";
  if (v.mark_unhealthy) {
    health_result(r.index, false, what);
  } else {
    r.last_error = what;
  }
  note_error(*c, v.reason);
  if (c->mode == Call::Mode::kStreaming) {
    fail_stream(c,
                "replica " + r.url() +
                    " failed mid-response: " + std::string(http::to_string(result.error)),
                v.status, v.type);
    return;
  }
  release_attempt(*c);
  state_.on_abort(c->id);
  respond_error(c, v.status, v.type,
                "replica " + r.url() + " failed before completing the response: " +
                    std::string(http::to_string(result.error)));
}

// Nothing reached the client: another replica, else the held 5xx, else a 502/504.
void RouterCore::attempt_failed(const CallPtr& c, const RetryVerdict& v, std::string_view detail) {
  const ReplicaRecord& r = replicas_.at(c->replica);
  note_error(*c, v.reason);
  if (c->mode == Call::Mode::kHeld) {
    c->held_status = c->status;
    c->held_type = c->content_type;
    c->held_headers = std::move(c->headers);
    c->held_body =
        c->model_rewriter.active() ? std::string(c->rewrite(c->body, true)) : std::move(c->body);
  }
  release_attempt(*c);
  state_.on_abort(c->id);
  c->tried.push_back(c->replica);
  spdlog::debug("request {}: attempt {} on {} failed ({}: {})", c->id, c->attempt, r.url(),
                v.reason, detail);
  // Counted once the attempt has moved to another replica (not when none could take it).
  if (v.action == RetryAction::kRetry && route(c) == RouteResult::kDispatched) {
    metrics_.retries.with({r.url()}).inc();
    return;
  }
  if (c->held_status > 0) {
    // Out of retries: relay the last 5xx as the replica sent it.
    http::Response resp;
    resp.status = c->held_status;
    resp.content_type = c->held_type;
    resp.body = std::move(c->held_body);
    resp.headers = std::move(c->held_headers);
    add_eta_headers(*c, resp.headers);
    const int status = resp.status;
    c->exchange->respond(std::move(resp));
    finish(c, status);
    return;
  }
  respond_error(c, v.status, v.type,
                "replica " + r.url() + " failed (" + std::string(detail) + ") and no other " +
                    "replica could take the request");
}

void RouterCore::complete(const CallPtr& c) {
  const double t = now();
  std::optional<int> tokens;
  if (c->mode == Call::Mode::kBuffered) {
    if (c->status < 300) tokens = parse_body_usage(c->body).completion_tokens;
    if (c->status >= 200 && c->status < 300 && c->route->api == openai::Api::kResponses) {
      remember_response(response_id_of(c->body), c->replica);
    }
    http::Response resp;
    resp.status = c->status;
    resp.content_type = std::move(c->content_type);
    resp.body =
        c->model_rewriter.active() ? std::string(c->rewrite(c->body, true)) : std::move(c->body);
    resp.headers = std::move(c->headers);
    c->exchange->respond(std::move(resp));
  } else {
    std::lock_guard stream(c->stream_mu);  // the worker may be relaying (relay_stream)
    c->stream_closed = true;
    tokens = c->scanner.usage_completion_tokens();
    // A last event without its blank line: relayed as it came (through the model rewriter).
    const std::string_view pending = c->rewrite_stream && c->rewriter.pending_bytes() > 0
                                         ? std::string_view(c->rewriter.pending())
                                         : std::string_view{};
    if (const std::string_view rest = c->rewrite(pending, true); !rest.empty()) {
      c->exchange->write(rest);
    }
    c->exchange->end_stream();
  }
  learn_completion(c, tokens, t);
  finish(c, c->status);
}

void RouterCore::learn_completion(const CallPtr& c, std::optional<int> tokens, double t) {
  const ReplicaRecord& r = replicas_.at(c->replica);
  const bool ok = c->status >= 200 && c->status < 300;
  if (ok) observer_.succeeded(*c, tokens.value_or(c->relayed_tokens));  // before attempt_ended
  release_attempt(*c);
  if (!c->info.decode) tokens.reset();  // prefill only: its usage counts no output
  if (ok) {
    const int n = tokens.value_or(c->relayed_tokens);
    // n sequences (or a batch) produced n outputs: the predictor learns one sequence's length.
    const int per_sequence = c->info.sequences > 1 ? n / c->info.sequences : n;
    state_.on_finish(c->id, t, c->info.sequences > 1 ? std::optional<int>(per_sequence) : tokens);
    c->output_tokens = n;
    if (n > 0) metrics_.output_tokens.with({r.url()}).inc(n);
    observer_.completed(*c, t, n);
  } else {
    state_.on_abort(c->id);
  }
  c->e2e_s = t - c->arrival;
  metrics_.e2e_seconds.with({r.url()}).observe(c->e2e_s);
  if (ok) {
    c->error.clear();
    if (!c->tried.empty()) metrics_.failovers.with({r.url()}).inc();
    const double actual = t - c->dispatch;
    if (std::isfinite(c->predicted_e2e_s) && actual > 0) {
      metrics_.e2e_prediction_error.observe((c->predicted_e2e_s - actual) / actual);
    }
  }
}

void RouterCore::fail_stream(const CallPtr& c, std::string_view message, int status,
                             std::string_view type) {
  std::unique_lock stream(c->stream_mu);  // the worker may be relaying (relay_stream)
  c->stream_closed = true;
  // Bytes the rewriters hold: the usage rewriter's partial event (of an unfinished SSE stream),
  // then through the model aliases' rewriter.
  const std::string_view pending =
      c->sse && !c->scanner.done() && c->rewrite_stream && c->rewriter.pending_bytes() > 0
          ? std::string_view(c->rewriter.pending())
          : std::string_view{};
  if (const std::string_view rest = c->rewrite(pending, true); !rest.empty()) {
    c->exchange->write(rest);
  }
  if (c->sse && !c->scanner.done()) {
    // A replica that stopped inside an event: end that event first, so that the error event
    // stays an event of its own instead of being glued onto the partial one.
    if (c->scanner.pending_bytes() > 0) c->exchange->write("\n\n");
    c->exchange->write(error_event(message, status, type));
    c->exchange->end_stream();
  } else if (c->sse) {
    c->exchange->end_stream();  // the stream had ended ([DONE]); only the terminator is missing
  }
  // Not SSE: there is no in-band way to say it failed. The stream is left unfinished: the
  // exchange is dropped with the call, which closes the connection without the chunked
  // terminator, so the client sees an incomplete body.
  stream.unlock();
  release_attempt(*c);
  state_.on_abort(c->id);
  finish(c, c->status);
}

void RouterCore::abort_calls_on(int replica, std::string_view message) {
  std::vector<CallPtr> victims;
  for (const auto& [id, c] : calls_)
    if (c->attempt_active && c->replica == replica) victims.push_back(c);
  for (const CallPtr& c : victims) {
    c->cancel_upstream();
    note_error(*c, "replica_removed");
    if (c->mode == Call::Mode::kStreaming) {
      fail_stream(c, message, 502, "BadGatewayError");
    } else {
      release_attempt(*c);
      state_.on_abort(c->id);
      respond_error(c, 502, "BadGatewayError", std::string(message));
    }
  }
}

// A replica just turned unhealthy: every request it holds that has no response head yet (nothing
// reached the client) is canceled there and retried elsewhere now, as if its attempt had failed.
// The replica may still finish one (a stopped process that resumes); the client never sees it.
void RouterCore::fail_over_unanswered(int replica) {
  const ReplicaRecord& r = replicas_.at(replica);
  if (r.removed() || r.health.healthy()) return;
  std::vector<CallPtr> waiting;
  for (const auto& [id, c] : calls_) {
    // Only where another replica can take it: otherwise it keeps waiting for this one (which
    // may still answer) up to its first-byte timeout.
    if (c->attempt_active && !c->finished && c->replica == replica &&
        c->mode == Call::Mode::kNone && can_retry(retry_budget(*c))) {
      waiting.push_back(c);
    }
  }
  if (waiting.empty()) return;
  spdlog::info("replica {} is unhealthy: retrying {} unanswered request(s) elsewhere", r.url(),
               waiting.size());
  AttemptOutcome o;
  o.unhealthy = true;
  for (const CallPtr& c : waiting) {
    const RetryBudget b = retry_budget(*c);
    if (c->finished || !c->attempt_active || c->replica != replica || !can_retry(b)) continue;
    c->cancel_upstream();
    attempt_failed(c, decide_retry(o, b), "replica turned unhealthy before answering");
  }
}

}  // namespace eta::router
