// Exact prompt tokens (tokenize.hpp): the pure parts, then RouterCore's asynchronous step
// between the rate limit and admit().
#include "router/core/tokenize.hpp"

#include <charconv>
#include <cmath>
#include <functional>

#include "router/aliases.hpp"
#include "router/core/router_core.hpp"
#include "router/headers.hpp"

namespace eta::router {

std::string_view to_string(TokenSource source) {
  switch (source) {
    case TokenSource::kEstimate:
      return "estimate";
    case TokenSource::kTokenize:
      return "tokenize";
    case TokenSource::kCache:
      return "cache";
    case TokenSource::kTimeout:
      return "timeout";
    case TokenSource::kError:
      return "error";
  }
  return "estimate";
}

bool wants_exact_tokens(const RouteSpec& route, const openai::ExtractedRequest& r,
                        int estimated_tokens, const KvTokenizeConfig& config) {
  if (config.min_prompt_tokens <= 0 || estimated_tokens < config.min_prompt_tokens) return false;
  if (route.cls != RouteClass::kGenerate) return false;
  if (route.api != openai::Api::kCompletions && route.api != openai::Api::kChat) return false;
  return r.readable && !r.prompt_is_tokens && r.prompts == 1 && r.extra_prompt_tokens == 0 &&
         !r.prompt_text.empty();
}

namespace {

// Appends `"key":<raw value>` of the client's body when it has the member. A key whose quoted
// name is nowhere in the body is absent without a walk of the members (a memchr-fast search:
// the body is mostly one long prompt).
void copy_member(std::string& out, std::string_view body, std::string_view key) {
  std::string quoted = "\"";
  quoted.append(key);
  quoted += '"';
  if (body.find(quoted) == std::string_view::npos) return;
  const std::optional<openai::MemberSpan> m = openai::find_member(body, key);
  if (!m) return;
  out += ',';
  append_json_string(out, key);
  out += ':';
  out.append(body.substr(m->value_begin, m->value_end - m->value_begin));
}

}  // namespace

std::string tokenize_request_body(openai::Api api, std::string_view body,
                                  std::string_view prompt_text, std::string_view served_model) {
  std::string out = "{\"model\":";
  out.reserve(body.size() + 64);
  append_json_string(out, served_model);
  if (api == openai::Api::kCompletions) {
    out += ",\"prompt\":";
    append_json_string(out, prompt_text);
    copy_member(out, body, "add_special_tokens");
  } else {
    const size_t before = out.size();
    copy_member(out, body, "messages");
    if (out.size() == before) return {};
    for (std::string_view key :
         {"add_generation_prompt", "continue_final_message", "add_special_tokens", "chat_template",
          "chat_template_kwargs", "tools", "mm_processor_kwargs"})
      copy_member(out, body, key);
  }
  out += '}';
  return out;
}

bool parse_tokenize_tokens(std::string_view body, std::vector<uint32_t>& out) {
  out.clear();
  const std::optional<openai::MemberSpan> m = openai::find_member(body, "tokens");
  if (!m) return false;
  const char* p = body.data() + m->value_begin;
  const char* end = body.data() + m->value_end;
  auto skip = [&] {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) ++p;
  };
  skip();
  if (p == end || *p != '[') return false;
  ++p;
  skip();
  if (p < end && *p == ']') return true;
  while (p < end) {
    uint64_t v = 0;
    auto [next, ec] = std::from_chars(p, end, v);
    if (ec != std::errc() || v > UINT32_MAX) return false;
    out.push_back(static_cast<uint32_t>(v));
    p = next;
    skip();
    if (p < end && *p == ']') return true;
    if (p == end || *p != ',') return false;
    ++p;
    skip();
  }
  return false;
}

uint64_t TokenCache::key(std::string_view tokenize_body) {
  return std::hash<std::string_view>{}(tokenize_body);
}

const std::vector<uint32_t>* TokenCache::find(uint64_t key) {
  auto it = map_.find(key);
  if (it == map_.end()) return nullptr;
  order_.splice(order_.begin(), order_, it->second);
  return &it->second->tokens;
}

void TokenCache::put(uint64_t key, std::vector<uint32_t> tokens) {
  if (tokens.size() > max_tokens_) return;
  if (auto it = map_.find(key); it != map_.end()) {
    tokens_ -= it->second->tokens.size();
    order_.erase(it->second);
    map_.erase(it);
  }
  tokens_ += tokens.size();
  order_.push_front(Entry{key, std::move(tokens)});
  map_[key] = order_.begin();
  shrink();
}

void TokenCache::set_max_tokens(uint64_t max_tokens) {
  max_tokens_ = max_tokens;
  shrink();
}

void TokenCache::shrink() {
  while (tokens_ > max_tokens_ && !order_.empty()) {
    tokens_ -= order_.back().tokens.size();
    map_.erase(order_.back().key);
    order_.pop_back();
  }
}

// ---------------------------------------------------------------------------------------------
// RouterCore's step

namespace {

// The replica's /tokenize answer is small (a few bytes per token): bounded all the same.
constexpr size_t kMaxTokenizeAnswer = 16u << 20;

}  // namespace

int RouterCore::tokenize_replica(const std::string& model) {
  int best = -1;
  bool any_live = false;
  bool best_live = false;
  const prefix::KvEventIndex& kv = state_.kv_events();
  replicas_.for_each_live([&](const ReplicaRecord& r) {
    if (!r.serves(model, config_.models.aliases)) return;
    const bool live = kv.live(r.index);
    any_live = any_live || live;
    if (!r.routable()) return;
    if (static_cast<size_t>(r.index) < tokenize_health_.size() &&
        !tokenize_health_[static_cast<size_t>(r.index)].usable(now()))
      return;
    // One whose events are matched (its tokenizer made them), then the least loaded.
    if (best < 0 || (live && !best_live) ||
        (live == best_live && r.in_flight < replicas_.at(best).in_flight)) {
      best = r.index;
      best_live = live;
    }
  });
  return any_live ? best : -1;
}

bool RouterCore::await_exact_tokens(const CallPtr& c) {
  if (start_tokenize(c)) return true;
  const openai::Api api = c->route->api;
  if (c->tokens_source == TokenSource::kEstimate &&
      (api == openai::Api::kCompletions || api == openai::Api::kChat))
    metrics_.prompt_tokens_source.with({"estimate"}).inc();
  return false;
}

bool RouterCore::start_tokenize(const CallPtr& c) {
  const KvTokenizeConfig& cfg = config_.kv_events_tokenize;
  if (!wants_exact_tokens(*c->route, c->req, c->info.prompt_tokens, cfg)) return false;
  const int replica = tokenize_replica(c->info.model);
  if (replica < 0) return false;
  const double started = now();  // the wait counts building the body too
  const ReplicaRecord& r = replicas_.at(replica);
  const std::string* served = served_name_for(config_.models.aliases, c->info.model, r.models.ids);
  std::string body = tokenize_request_body(c->route->api, c->exchange->request().body,
                                           c->req.prompt_text, served ? *served : c->info.model);
  if (body.empty()) return false;
  token_cache_.set_max_tokens(cfg.cache_tokens);
  c->tokenize_key = TokenCache::key(body);
  if (const std::vector<uint32_t>* tokens = token_cache_.find(c->tokenize_key)) {
    use_exact_tokens(c, *tokens, TokenSource::kCache);
    return false;
  }
  http::ClientRequest req;
  req.method = "POST";
  req.target = "/tokenize";
  req.headers.emplace_back("Content-Type", "application/json");
  set_upstream_authorization(req.headers, true, upstream_key(r));
  req.body_storage = std::move(body);
  // The core's timer is the bound; the client's own is a backstop.
  req.total_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(std::ceil(cfg.timeout_s * 1e3)) + 1);
  req.max_body_bytes = kMaxTokenizeAnswer;
  c->tokenizing = true;
  c->tokenize_replica = replica;
  c->tokenize_started = started;
  c->tokenize_answer.clear();
  c->tokenize_status = 0;
  std::weak_ptr<Call> weak = c;
  http::ResponseHandlers h;
  // On the call's worker, under the core's mutex (router_core.hpp, "Threads").
  h.on_head = [this, weak](const http::ResponseHead& head) {
    std::lock_guard lock(mu_);
    if (CallPtr c = weak.lock()) c->tokenize_status = head.status;
  };
  h.on_body = [this, weak](std::string_view data) {
    std::lock_guard lock(mu_);
    if (CallPtr c = weak.lock(); c && c->tokenizing) c->tokenize_answer.append(data);
  };
  h.on_complete = [this, weak](const http::ClientResult& result) {
    std::lock_guard lock(mu_);
    CallPtr c = weak.lock();
    if (!c || !c->tokenizing) return;
    std::vector<uint32_t> tokens;
    const bool ok = result.ok() && c->tokenize_status == 200 &&
                    parse_tokenize_tokens(c->tokenize_answer, tokens) && !tokens.empty();
    // A 4xx but 404 (no such route) says the request is wrong (the replica will say so too),
    // not that its /tokenize is.
    const int status = c->tokenize_status;
    const bool replica_ok = ok || (result.ok() && status >= 400 && status < 500 && status != 404);
    end_tokenize(c, ok ? TokenSource::kTokenize : TokenSource::kError, ok ? &tokens : nullptr,
                 replica_ok);
  };
  if (!c->tokenize_timer) c->tokenize_timer = env_.make_timer();
  c->tokenize_timer->arm(c->tokenize_started + cfg.timeout_s, [this, weak] {
    if (CallPtr c = weak.lock(); c && c->tokenizing)
      end_tokenize(c, TokenSource::kTimeout, nullptr, false);
  });
  c->tokenize_call = env_.send(c->worker, replica, std::move(req), std::move(h));
  return true;  // admit() runs from end_tokenize (already, had send() answered at once)
}

void RouterCore::end_tokenize(const CallPtr& c, TokenSource source, std::vector<uint32_t>* tokens,
                              bool replica_ok) {
  if (!c->tokenizing) return;
  c->tokenizing = false;
  c->tokenize_timer->cancel();
  if (source == TokenSource::kTimeout && c->tokenize_call) c->tokenize_call->cancel();
  c->tokenize_answer = std::string();
  const size_t replica = static_cast<size_t>(c->tokenize_replica);
  if (replica >= tokenize_health_.size()) tokenize_health_.resize(replica + 1);
  tokenize_health_[replica].result(replica_ok, now());
  c->tokenize_s = now() - c->tokenize_started;
  metrics_.tokenize_wait_seconds.observe(c->tokenize_s);
  if (tokens != nullptr) {
    use_exact_tokens(c, *tokens, source);
    token_cache_.put(c->tokenize_key, std::move(*tokens));
  } else {
    c->tokens_source = source;
    metrics_.prompt_tokens_source.with({std::string(to_string(source))}).inc();
  }
  if (c->finished) return;
  admit(c);
}

void RouterCore::use_exact_tokens(const CallPtr& c, const std::vector<uint32_t>& tokens,
                                  TokenSource source) {
  const double t0 = now();
  const std::string model = c->info.model;
  prepare_request(state_, c->req, model, c->exchange->request().header(kSessionHeader), c->info,
                  c->prepared, &tokens);
  c->decision_s += now() - t0;
  c->tokens_source = source;
  metrics_.prompt_tokens_source.with({std::string(to_string(source))}).inc();
}

}  // namespace eta::router
