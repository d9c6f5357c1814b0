// One client request as the router's core carries it, from arrival to its final answer: what was
// read from it, where each attempt went, what is being relayed or held back, and the timings
// the access log and metrics report. Times are seconds on the core's clock (Env::now).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/state.hpp"
#include "http/message.hpp"
#include "openai/extract.hpp"
#include "router/aliases.hpp"
#include "router/core/ports.hpp"
#include "router/core/tokenize.hpp"
#include "router/features.hpp"
#include "router/routes.hpp"
#include "router/sse.hpp"

namespace eta::router {

struct Call {
  uint64_t id = 0;
  int worker = 0;  // the worker thread whose listener accepted it (Env::worker)
  http::ExchangePtr exchange;
  const RouteSpec* route = nullptr;  // routes.hpp: how it is read and routed
  std::string stored_id;             // kStored: the response id in the path
  int pinned = -1;                   // kStored: the replica that created it (-1: unknown)
  bool use_ledger = true;            // false: utility routes (no policy, no ledger)
  double arrival = 0;
  openai::ExtractedRequest req;
  RequestInfo info;
  // The body sent upstream when it is not the client's (a stream the router counts exactly:
  // stream_options with continuous usage), and the rewriter giving the client its own stream.
  std::string forward_body;
  bool rewrite_stream = false;
  UsageStreamRewriter rewriter;
  std::string rewritten;
  cluster::PreparedRequest prepared;
  double decision_s = 0;

  // The prompt's exact tokens from a replica's /tokenize (core/tokenize.hpp), awaited before
  // admit() while `tokenizing`, at most kv_events_tokenize.timeout_s.
  TokenSource tokens_source = TokenSource::kEstimate;
  bool tokenizing = false;
  int tokenize_replica = -1;
  int tokenize_status = 0;
  double tokenize_started = 0;
  double tokenize_s = 0;  // the wait (0: none)
  uint64_t tokenize_key = 0;
  std::string tokenize_answer;
  std::unique_ptr<UpstreamCall> tokenize_call;
  std::unique_ptr<Timer> tokenize_timer;

  std::vector<int> tried;
  int attempt = 0;
  int replica = -1;  // of the current (or last) attempt
  bool attempt_active = false;
  std::unique_ptr<UpstreamCall> upstream;
  double predicted_ttft_s = cluster::kNotPredicted;
  double predicted_e2e_s = cluster::kNotPredicted;
  double dispatch = -1;              // of the current (or last) attempt; < 0: none
  double ttft_s = -1;                // arrival -> first relayed token (SSE streams)
  double e2e_s = -1;                 // arrival -> response complete (2xx and relayed errors)
  std::optional<int> output_tokens;  // of a 2xx response
  std::string error;                 // the last error reason (metrics' reason names)

  // How the current attempt's response is handled: held back (a 5xx that a retry may replace),
  // buffered (Content-Length: relayed whole, with its model names rewritten), streamed.
  enum class Mode { kNone, kHeld, kBuffered, kStreaming };
  Mode mode = Mode::kNone;
  int status = 0;
  std::string content_type;
  http::Headers headers;
  std::string body;
  bool sse = false;
  // The data path of a streamed response (threads > 1): relay_stream rewrites, writes and scans
  // outside the core's mutex, on the call's worker, under stream_mu; what ends the stream
  // (complete, fail_stream) takes stream_mu too (under the core's mutex: that order only) and
  // sets stream_closed, after which nothing more is relayed. Guarded by stream_mu while
  // streaming: rewriter, rewritten, model_rewriter, model_rewritten, scanner, stream_closed and
  // the exchange's writes.
  std::mutex stream_mu;
  bool stream_closed = false;
  StreamTokenCounter scanner;
  bool first_token = false;
  int relayed_tokens = 0;

  // The last 5xx held back for a retry, relayed if no retry succeeds.
  int held_status = 0;
  std::string held_type;
  http::Headers held_headers;
  std::string held_body;

  bool queued = false;
  bool held_by_late_binding = false;  // late binding held it (late_binding.hpp)
  bool finished = false;

  // Model aliases: when the replica serves the model under another name, its answer's "model"
  // members are rewritten back to the name the client asked for (the stream, the body, a held
  // error). `rewrite` returns what the client gets for `data`; `end` releases what was held.
  FieldRewriter model_rewriter;
  std::string model_rewritten;
  std::string_view rewrite(std::string_view data, bool end) {
    if (!model_rewriter.active()) return data;
    model_rewritten.clear();
    model_rewriter.feed(data, model_rewritten);
    if (end) model_rewriter.finish(model_rewritten);
    return model_rewritten;
  }
  void cancel_upstream() {
    if (upstream) upstream->cancel();
    upstream.reset();
  }
  // The client went away or the router stops: no /tokenize answer is awaited any more.
  void cancel_tokenize() {
    if (!tokenizing) return;
    tokenizing = false;
    if (tokenize_timer) tokenize_timer->cancel();
    if (tokenize_call) tokenize_call->cancel();
  }
};

using CallPtr = std::shared_ptr<Call>;

}  // namespace eta::router
