#include "cluster/state.hpp"

#include <algorithm>

namespace eta::cluster {
namespace {

predict::OutputQuery output_query(const RequestFeatures& f, int max_model_len) {
  predict::OutputQuery q;
  q.model = f.model;
  q.prompt_tokens = f.prompt_tokens;
  q.max_tokens = f.max_tokens;
  q.ignore_eos = f.ignore_eos;
  q.max_model_len = max_model_len;
  q.block_hashes = f.block_hashes;
  q.session_hash = f.session_hash;
  q.shape = f.output_shape;
  return q;
}

}  // namespace

ClusterState::ClusterState(ClusterStateOptions options)
    : options_(options),
      kv_(options.hash_block_size),
      output_(options.output),
      latency_(options.latency) {
  view_.stale_after_s = options_.stale_after_s;
}

int ClusterState::add_replica(const ReplicaSpec& spec) {
  const int index = num_replicas();
  const engine::EngineConfig config = spec.engine.resolved();
  // Replicas with the same profile share the precomputed step tables.
  const std::string key = config.gpu.name + "|" + config.arch.name + "|" +
                          std::to_string(config.speed) + "|" + std::to_string(config.max_num_seqs) +
                          "|" + std::to_string(config.max_num_batched_tokens) + "|" +
                          std::to_string(config.num_gpu_blocks);
  std::shared_ptr<const predict::StepTables> tables;
  for (const auto& [k, t] : tables_)
    if (k == key) tables = t;
  if (!tables) {
    tables = predict::StepTables::make(config);
    tables_.emplace_back(key, tables);
  }
  speeds_.push_back(std::make_unique<predict::SpeedModel>(tables, options_.speed));
  names_.push_back(spec.name);
  ledger_.resize(index + 1);
  prefix_.resize(index + 1);
  kv_.resize(index + 1);

  ReplicaView v;
  v.index = index;
  v.name = names_.back();
  v.weight = spec.weight;
  v.ledger = &ledger_.summary(index);
  v.speed = speeds_.back().get();
  v.limits.max_num_batched_tokens = config.max_num_batched_tokens;
  v.limits.max_num_seqs = config.max_num_seqs;
  v.limits.num_gpu_blocks = config.num_gpu_blocks;
  v.limits.block_size = config.block_size;
  views_.push_back(v);
  set_prefix_capacity(index);
  view_.topology_version += 1;
  return index;
}

void ClusterState::set_routable(int replica, bool routable) {
  views_[replica].routable = routable;
}

void ClusterState::set_prefix_capacity(int replica) {
  const EngineLimits& l = views_[replica].limits;
  if (l.num_gpu_blocks <= 0) return;
  const int64_t tokens = static_cast<int64_t>(l.num_gpu_blocks) * std::max(l.block_size, 1);
  prefix_.set_capacity(replica, std::max<int64_t>(1, tokens / options_.hash_block_size));
}

void ClusterState::update_scrape(int replica, const ScrapeSnapshot& scrape) {
  ReplicaView& v = views_[replica];
  if (!scrape.valid) {
    v.scrape.valid = false;  // keep the last numbers, but never treat them as fresh
    return;
  }
  v.scrape = scrape;
  bool changed = false;
  if (scrape.num_gpu_blocks > 0 && scrape.num_gpu_blocks != v.limits.num_gpu_blocks) {
    v.limits.num_gpu_blocks = scrape.num_gpu_blocks;
    changed = true;
  }
  if (scrape.block_size > 0 && scrape.block_size != v.limits.block_size) {
    v.limits.block_size = scrape.block_size;
    changed = true;
  }
  if (changed) set_prefix_capacity(replica);
}

uint32_t ClusterState::intern_model(std::string_view model) {
  for (size_t i = 0; i < models_.size(); ++i)
    if (models_[i] == model) return static_cast<uint32_t>(i);
  models_.emplace_back(model);
  return static_cast<uint32_t>(models_.size() - 1);
}

void ClusterState::prepare(std::string_view model, int prompt_tokens,
                           std::span<const uint64_t> block_hashes, std::optional<int> max_tokens,
                           bool ignore_eos, std::optional<uint64_t> session_hash,
                           PreparedRequest& out, uint64_t output_shape) const {
  out.model.assign(model);
  out.block_hashes.assign(block_hashes.begin(), block_hashes.end());
  out.matched_blocks.resize(views_.size());
  if (options_.track_prefix)
    prefix_.match_all(out.block_hashes, out.matched_blocks);
  else
    std::fill(out.matched_blocks.begin(), out.matched_blocks.end(), 0u);
  if (options_.track_prefix) kv_.override_matches(out.block_hashes, out.matched_blocks);
  RequestFeatures& f = out.features;
  f = RequestFeatures{};
  f.model = out.model;
  f.prompt_tokens = prompt_tokens;
  f.block_hashes = out.block_hashes;
  f.hash_block_size = options_.hash_block_size;
  f.matched_blocks = out.matched_blocks;
  f.max_tokens = max_tokens;
  f.ignore_eos = ignore_eos;
  f.session_hash = session_hash;
  f.output_shape = output_shape;
  // The replica's max_model_len would cap too; the engine arch's is the best the router knows.
  const int max_model_len = views_.empty() ? 0 : speeds_[0]->config().max_model_len;
  const predict::OutputPrediction p = output_.predict(output_query(f, max_model_len));
  f.predicted_output_tokens = p.expected;
  f.predicted_output_point = p.point;
  f.predicted_output_sd = p.sd;
}

const ClusterView& ClusterState::view(double now) {
  view_.now = now;
  view_.replicas = views_;
  view_.averages = ledger_.averages();
  view_.latency = options_.learn_latency ? &latency_ : nullptr;
  return view_;
}

DispatchInfo ClusterState::dispatch_info(const RequestFeatures& f, int replica) {
  DispatchInfo info;
  info.prompt_tokens = f.prompt_tokens;
  info.cached_tokens = f.cached_tokens_on(replica);
  info.predicted_output_tokens = f.output_tokens();
  info.max_tokens = f.max_tokens;
  info.exact_output = f.ignore_eos && f.max_tokens.has_value();
  return info;
}

bool ClusterState::on_foreign_dispatch(RequestId id, int replica, DispatchInfo info,
                                       std::string_view model, double now,
                                       std::span<const uint64_t> block_hashes) {
  if (replica < 0 || replica >= num_replicas()) return false;
  info.tag = intern_model(model);
  info.base_ttft_s = 0;  // not this router's prediction: no speed lesson
  info.base_decode_s_per_token = 0;
  if (!ledger_.dispatch(id, replica, info, now)) return false;
  if (options_.track_prefix && !block_hashes.empty()) prefix_.insert(replica, block_hashes);
  return true;
}

void ClusterState::on_foreign_finish(RequestId id, int output_tokens, double now) {
  // Tokens not shared after the first are counted now, so that the averages learn the real
  // output size (an owner that relays no tokens at all learns none, for its own requests too).
  if (const LedgerEntry* entry = ledger_.find(id);
      entry && entry->generated > 0 && entry->generated < output_tokens)
    ledger_.tokens(id, output_tokens - entry->generated, now);
  const std::optional<LedgerEntry> e = ledger_.finish(id);
  if (e) learn_output(id, *e, output_tokens);
}

void ClusterState::learn_output(RequestId id, const LedgerEntry& e, int generated) {
  auto it = output_pending_.find(id);
  if (options_.learn_output && !e.exact_output && generated > 0) {
    if (it != output_pending_.end())
      output_.observe(it->second, generated);
    else if (e.tag < models_.size())  // another router's request: its model and prompt only
      output_.observe(models_[e.tag], e.prompt_tokens, generated);
  }
  if (it != output_pending_.end()) output_pending_.erase(it);
}

bool ClusterState::on_dispatch(RequestId id, int replica, const RequestFeatures& f, double now) {
  if (replica < 0 || replica >= num_replicas()) return false;
  DispatchInfo info = dispatch_info(f, replica);
  info.tag = intern_model(f.model);
  if (options_.learn_speed) {
    // What the completion model expects at learned factor 1, before this request joins (what
    // the speed model compares with what is observed).
    predict::CompletionQuery q;
    q.prompt_tokens = std::max(f.prompt_tokens, 1);
    q.cached_tokens = info.cached_tokens;
    q.output_tokens = info.predicted_output_tokens;
    const predict::CompletionEstimate e = predict::estimate_completion(
        views_[replica], q, view(now), *speeds_[replica], options_.completion);
    info.base_ttft_s = e.base_ttft_s;
    info.base_decode_s_per_token =
        q.output_tokens > 1 ? e.base_decode_s / (q.output_tokens - 1) : 0;
  }
  if (options_.learn_latency) {
    // llm-d's features of the chosen endpoint at scheduling time (before this request joins).
    const size_t blocks = f.block_hashes.size();
    const double prefix =
        blocks > 0 ? static_cast<double>(f.matched_blocks_on(replica)) / static_cast<double>(blocks)
                   : 0.0;
    view_.now = now;
    latency_pending_[id] =
        predict::latency_features(views_[replica], view(now), f.prompt_tokens, prefix);
  }
  if (!ledger_.dispatch(id, replica, info, now)) {
    if (options_.learn_latency) latency_pending_.erase(id);
    return false;
  }
  if (options_.learn_output && !info.exact_output)
    output_pending_[id] = output_.keys(output_query(f, 0));
  if (options_.track_prefix) {
    prefix_.insert(replica, f.block_hashes);
    kv_.seed(replica, f.block_hashes, now);
  }
  return true;
}

engine::BatchShape ClusterState::current_batch(int replica) const {
  const ReplicaView& v = views_[replica];
  const LedgerSummary& l = v.ledger_or_empty();
  double decoding = l.decoding;
  double context = static_cast<double>(l.context_tokens);
  double pending = static_cast<double>(l.pending_prefill_tokens);
  double prefilling = l.prefilling;
  double prompts = static_cast<double>(l.prefill_prompt_tokens);
  if (v.scrape.fresh(view_.now, view_.stale_after_s)) {
    const WorkAverages& avg = ledger_.averages();
    const double extra = std::max(0, v.scrape.running + v.scrape.waiting - l.in_flight);
    const double extra_wait =
        std::min(extra, static_cast<double>(std::max(0, v.scrape.waiting - l.prefilling)));
    const double extra_run = extra - extra_wait;
    decoding += extra_run;
    context += extra_run * (avg.prompt_tokens + 0.5 * avg.output_tokens);
    pending += extra_wait * avg.uncached_prompt_tokens;
    prefilling += extra_wait;
    prompts += extra_wait * avg.prompt_tokens;
  }
  engine::BatchShape b;
  const double budget = v.limits.max_num_batched_tokens;
  const double chunk = std::clamp(budget - decoding, 0.0, pending);
  b.num_tokens = static_cast<int>(decoding + chunk);
  b.num_sampled = static_cast<int>(decoding);
  b.decode_kv_tokens = static_cast<int64_t>(context);
  if (chunk > 0 && prefilling > 0) b.prefill_attn_pairs = chunk * 0.5 * (prompts / prefilling);
  return b;
}

bool ClusterState::decode_batch(int replica, engine::BatchShape& out) const {
  const ReplicaView& v = views_[replica];
  const LedgerSummary& l = v.ledger_or_empty();
  double decoding = l.decoding;
  double context = static_cast<double>(l.context_tokens);
  if (v.scrape.fresh(view_.now, view_.stale_after_s)) {
    const WorkAverages& avg = ledger_.averages();
    const int extra = std::max(0, v.scrape.running + v.scrape.waiting - l.in_flight);
    const int extra_wait = std::min(extra, std::max(0, v.scrape.waiting - l.prefilling));
    if (extra_wait > 0) return false;
    decoding += extra;
    context += extra * (avg.prompt_tokens + 0.5 * avg.output_tokens);
  }
  out = engine::BatchShape{};
  out.num_tokens = out.num_sampled = static_cast<int>(decoding);
  out.decode_kv_tokens = static_cast<int64_t>(context);
  return true;
}

void ClusterState::on_tokens(RequestId id, int n, double now) {
  const TokenUpdate u = ledger_.tokens(id, n, now);
  if (u.found && u.first && options_.learn_latency) learn_latency_ttft(id, u.ttft_s);
  if (!u.found || !options_.learn_speed) return;
  predict::SpeedModel& speed = *speeds_[u.replica];
  if (u.first) {
    speed.observe_ttft(u.ttft_s, u.entry->base_ttft_s);
    return;
  }
  if (!(u.gap_s > 0)) return;
  // The decode factor learns from decode-only steps, the ones the ledger can time exactly. A
  // gap [now - gap, now] may have run a prefill chunk of ours if a request still without its
  // first token was dispatched before it began, or if a first token arrived during it (the
  // prefill that produced it ran in this step): skip those (the prefill factor learns from
  // TTFTs), and any step while a fresh scrape shows requests of others waiting.
  const double start = now - u.gap_s;
  if (ledger_.earliest_prefill_dispatch(u.replica) <= start ||
      ledger_.last_first_token(u.replica) > start + 0.5 * u.gap_s)
    return;
  learn_decode_gap(u.replica, u.gap_s, u.tokens, 1, *u.entry, now);
}

void ClusterState::learn_decode_gap(int replica, double gap_s, int tokens, int gaps,
                                    const LedgerEntry& entry, double now) {
  view_.now = now;
  engine::BatchShape b;
  if (!decode_batch(replica, b)) return;  // others' prefill (a fresh scrape shows it)
  if (b.num_tokens <= 0) {                // the ledger has just this request decoding
    b.num_tokens = b.num_sampled = 1;
    b.decode_kv_tokens = entry.prompt_tokens + entry.generated;
  }
  speeds_[replica]->observe_itl(gap_s / tokens, b, gaps);
}

void ClusterState::on_step_tokens(std::span<const RequestId> ids, double now) {
  if (!options_.learn_speed && !options_.learn_latency) {  // nothing to learn: the ledger moves
    ledger_.step_tokens(ids, now);
    return;
  }
  int replica = -1;
  bool first_token = false;  // a prefill completed in this step
  double shortest = 0;       // the shortest decode gap, and its entry
  RequestId shortest_id = 0;
  int gaps = 0;
  double prefill_since = -1;  // earliest_prefill_dispatch(replica), read once per step
  bool prefill_read = false;
  for (const RequestId id : ids) {
    const TokenUpdate u = ledger_.tokens(id, 1, now);
    if (u.found && u.first && options_.learn_latency) learn_latency_ttft(id, u.ttft_s);
    if (!u.found || !options_.learn_speed) continue;
    if (replica >= 0 && u.replica != replica) {  // not one replica's step: no decode lesson
      first_token = true;
      continue;
    }
    replica = u.replica;
    if (u.first) {
      speeds_[u.replica]->observe_ttft(u.ttft_s, u.entry->base_ttft_s);
      first_token = true;
      continue;
    }
    if (!(u.gap_s > 0)) continue;
    // A gap that began before a request of ours still without its first token was dispatched
    // may hold its prefill chunk (the same test as on_tokens).
    // (Read once: only first tokens change it, and a step with one teaches nothing.)
    if (!prefill_read) {
      prefill_since = ledger_.earliest_prefill_dispatch(u.replica);
      prefill_read = true;
    }
    if (prefill_since <= now - u.gap_s) continue;
    if (gaps == 0 || u.gap_s < shortest) {
      shortest = u.gap_s;
      shortest_id = id;
    }
    ++gaps;
  }
  if (!options_.learn_speed || first_token || gaps == 0) return;
  if (ledger_.last_first_token(replica) > now - 0.5 * shortest) return;
  learn_decode_gap(replica, shortest, 1, gaps, *ledger_.find(shortest_id), now);
}

void ClusterState::on_finish(RequestId id, double now, std::optional<int> output_tokens) {
  const std::optional<LedgerEntry> e = ledger_.finish(id);
  if (!e) return;
  const int generated = output_tokens.value_or(e->generated);
  if (options_.learn_latency) learn_latency_finish(id, *e, generated, now);
  if (options_.learn_speed && e->generated == 0 && generated > 0 && e->base_ttft_s > 0) {
    // Not streamed: only the total was seen.
    const double base = e->base_ttft_s + e->base_decode_s_per_token * (generated - 1);
    speeds_[e->replica]->observe_e2e(now - e->dispatch_time, base);
  }
  learn_output(id, *e, generated);
}

void ClusterState::on_abort(RequestId id) {
  ledger_.abort(id);
  if (options_.learn_latency) latency_pending_.erase(id);
  output_pending_.erase(id);
}

void ClusterState::learn_latency_ttft(RequestId id, double ttft_s) {
  auto it = latency_pending_.find(id);
  if (it == latency_pending_.end()) return;
  latency_.observe_ttft(it->second, ttft_s);
  latency_pending_.erase(it);
}

void ClusterState::learn_latency_finish(RequestId id, const LedgerEntry& e, int generated,
                                        double now) {
  latency_pending_.erase(id);  // never streamed a first token (non-streamed): no TTFT lesson
  // The mean time per output token of a streamed request, against its endpoint's state now (llm-d
  // samples TPOT during the stream with the features of that moment).
  if (e.first_token_time < 0 || e.generated < 2 || generated < 2 || e.replica < 0) return;
  view_.now = now;
  predict::LatencyFeatures f = predict::latency_features(
      views_[e.replica], view(now), e.prompt_tokens,
      1.0 - static_cast<double>(e.uncached_tokens) / std::max(e.prompt_tokens, 1));
  f.tokens_generated = generated;
  latency_.observe_tpot(f, (e.last_token_time - e.first_token_time) / (e.generated - 1));
}

}  // namespace eta::cluster
