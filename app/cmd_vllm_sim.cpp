// `eta vllm-sim`: a simulated vLLM OpenAI-compatible server (src/vllm_sim/).
//
// Configured with vLLM's own serve command line (`eta vllm-sim serve MODEL --tensor-parallel-size
// 4 ...`, or the flags of `python -m vllm.entrypoints.openai.api_server`), plus the simulator's
// own flags (--arch, --gpu, --speed, --time-scale, fault injection). vLLM flags that change
// nothing simulated are accepted and listed on stderr (vllm_args.hpp).
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "engine/engine.hpp"
#include "engine/profile.hpp"
#include "kv_events/publisher.hpp"
#include "validators.hpp"
#include "vllm_args.hpp"
#include "vllm_sim/sim_server.hpp"

namespace eta::app {

namespace {

struct VllmSimOptions {
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string model;
  std::string arch = "llama-2-7b";
  std::string gpu = "h100";
  double speed = 1.0;
  double time_scale = 1.0;
  int max_num_seqs = 0;
  int max_num_batched_tokens = 0;
  int num_gpu_blocks = 0;
  int max_model_len = 0;
  uint64_t seed = 0;
  std::string profile_file;
  int64_t max_body_bytes = 32 << 20;
  double fail_rate = 0;
  std::string metrics_fault = "none";
  std::string request_log;
  // iface: --api-key (vLLM's auth for every /v1 path), --stream-interval,
  // --max-num-queued-reqs, --media-part-tokens.
  std::vector<std::string> api_keys;
  int stream_interval = 1;
  int max_num_queued_reqs = 0;
  int media_part_tokens = 576;
  // HTTPS (vLLM's --ssl-keyfile / --ssl-certfile; both or neither).
  std::string ssl_keyfile;
  std::string ssl_certfile;
  // vLLM's serve flags (issue 16 item 1).
  std::vector<std::string> positional;  // `serve MODEL` (vllm serve) or `MODEL` (model_tag)
  std::vector<std::string> served_model_names;
  int tensor_parallel_size = 1;
  double gpu_memory_utilization = 0.9;
  long long kv_cache_memory_bytes = 0;
  int block_size = 16;
  bool enable_prefix_caching = true;
  std::string kv_cache_dtype = "auto";
  std::string dtype = "auto";
  bool disable_log_stats = false;
  int long_prefill_token_threshold = 0;
  CLI::Option* arch_option = nullptr;
  std::shared_ptr<IgnoredVllmFlags> ignored;
  // KV-cache events (issue 15)
  std::string kv_events_config;
  std::string kv_events_event_format = "map";
  std::string kv_events_batch_format = "array";
  std::string kv_events_hashes;  // int | bytes; empty: VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES
  int data_parallel_rank = 0;
  int kv_events_drop_every = 0;
};

int fail(const std::string& message) {
  std::fprintf(stderr, "eta vllm-sim: %s\n", message.c_str());
  return 2;
}

// The model vLLM would serve: `serve MODEL` / a bare MODEL (vLLM's model_tag, which wins over
// --model as in vllm/entrypoints/cli/serve.py), else --model.
bool resolve_model(const VllmSimOptions& o, std::string& model, std::string& error) {
  const auto& p = o.positional;
  model = o.model;
  if (p.size() == 2 && p[0] == "serve") {
    model = p[1];
  } else if (p.size() == 1 && p[0] != "serve") {
    model = p[0];
  } else if (!p.empty()) {
    std::string all;
    for (const auto& a : p) all += (all.empty() ? "" : " ") + a;
    error = "unexpected arguments '" + all + "' (expected: serve MODEL [flags])";
    return false;
  }
  if (model.empty()) {
    error = "no model: give --model NAME or serve NAME (a model path or Hugging Face name)";
    return false;
  }
  return true;
}

int run_vllm_sim(const VllmSimOptions& o) {
  if (const std::string refusal = o.ignored->refusal(); !refusal.empty()) return fail(refusal);
  std::string model;
  std::string error;
  if (!resolve_model(o, model, error)) return fail(error);
  engine::ProfileSet profiles = engine::ProfileSet::builtin();
  if (!o.profile_file.empty()) {
    std::ifstream in(o.profile_file);
    if (!in) return fail("cannot read --profile-file " + o.profile_file);
    std::stringstream text;
    text << in.rdbuf();
    engine::ProfileSet extra;
    if (!engine::ProfileSet::from_yaml(text.str(), extra, error)) {
      return fail(o.profile_file + ": " + error);
    }
    profiles.merge(extra);
  }
  // The shape: --arch if given, else the one --model names (meta-llama/Llama-3.1-8B-Instruct,
  // a local path ending in Llama-2-7b-chat-hf, ...), else the default arch.
  std::string arch = o.arch;
  if (o.arch_option->count() == 0) {
    if (const engine::ModelArch* a = profiles.arch_for_model(model)) arch = a->name;
  }
  engine::EngineConfig config;
  if (!engine::make_config(profiles, arch, o.gpu, config, error)) return fail(error);
  // --dtype: the 16-bit types keep the shape's 2 bytes; float32 doubles weights and KV (the
  // linear-operator table stays the 16-bit one: see docs/architecture.md).
  if (o.dtype == "float" || o.dtype == "float32") config.arch.dtype_bytes = 4;
  config.speed = o.speed;
  config.max_num_seqs = o.max_num_seqs;
  config.max_num_batched_tokens = o.max_num_batched_tokens;
  config.num_gpu_blocks = o.num_gpu_blocks;
  config.max_model_len = o.max_model_len;
  config.tensor_parallel_size = o.tensor_parallel_size;
  config.kv_cache_dtype = o.kv_cache_dtype;
  config.gpu_memory_utilization = o.gpu_memory_utilization;
  config.block_size = o.block_size;
  config.enable_prefix_caching = o.enable_prefix_caching;
  config.long_prefill_token_threshold = o.long_prefill_token_threshold;
  if (!engine::check_config(config, error)) return fail(error);
  // --kv-cache-memory-bytes: vLLM sizes the KV cache per GPU from it, ignoring the utilisation.
  if (config.num_gpu_blocks <= 0 && o.kv_cache_memory_bytes > 0) {
    config.num_gpu_blocks = static_cast<int>(static_cast<double>(o.kv_cache_memory_bytes) /
                                             (o.block_size * config.kv_bytes_per_token_per_gpu()));
    if (config.num_gpu_blocks <= 0) {
      return fail("--kv-cache-memory-bytes " + std::to_string(o.kv_cache_memory_bytes) +
                  " holds no KV cache block of " + std::to_string(o.block_size) + " tokens");
    }
  }
  config = config.resolved();
  if (config.num_gpu_blocks <= 0) {
    return fail("no KV cache blocks fit on " + std::to_string(config.tensor_parallel_size) + " x " +
                o.gpu + " for " + arch + " at --gpu-memory-utilization " +
                std::to_string(o.gpu_memory_utilization).substr(0, 4) +
                " (raise --tensor-parallel-size or --gpu-memory-utilization, or set "
                "--num-gpu-blocks)");
  }
  // vLLM refuses to start when one max_model_len sequence cannot fit in the KV cache.
  const int64_t capacity = static_cast<int64_t>(config.num_gpu_blocks) * config.block_size;
  if (config.max_model_len > capacity) {
    return fail("the model's max seq len (" + std::to_string(config.max_model_len) +
                ") is larger than the maximum number of tokens that can be stored in KV cache (" +
                std::to_string(capacity) + "); lower --max-model-len or raise --num-gpu-blocks");
  }
  if (const std::string line = o.ignored->report(); !line.empty()) {
    std::fprintf(stderr, "eta vllm-sim: %s\n", line.c_str());
  }

  vllm_sim::SimConfig sim;
  sim.engine = config;
  // vLLM: the first --served-model-name is the one in responses and metrics; every name is
  // accepted and listed; without the flag the served name is --model.
  sim.model = o.served_model_names.empty() ? model : o.served_model_names.front();
  for (std::size_t i = 1; i < o.served_model_names.size(); ++i) {
    if (o.served_model_names[i] != sim.model) {
      sim.served_model_aliases.push_back(o.served_model_names[i]);
    }
  }
  sim.model_root = model;
  sim.disable_log_stats = o.disable_log_stats;
  sim.time_scale = o.time_scale;
  sim.seed = o.seed;
  sim.num_gpu_blocks_override = o.num_gpu_blocks > 0;
  sim.http.host = o.host;
  sim.http.port = static_cast<uint16_t>(o.port);
  sim.http.max_body_bytes = static_cast<size_t>(o.max_body_bytes);
  sim.fail_rate = o.fail_rate;
  sim.metrics_fault = o.metrics_fault == "hang"      ? vllm_sim::MetricsFault::kHang
                      : o.metrics_fault == "garbage" ? vllm_sim::MetricsFault::kGarbage
                                                     : vllm_sim::MetricsFault::kNone;
  sim.request_log = o.request_log;
  // --api-key (iface): the flag wins over VLLM_API_KEY, as in vLLM.
  sim.api_keys = o.api_keys;
  sim.stream_interval = o.stream_interval;
  sim.max_num_queued_reqs = o.max_num_queued_reqs;
  sim.media_part_tokens = o.media_part_tokens;
  if (sim.api_keys.empty()) {
    if (const char* env = std::getenv("VLLM_API_KEY"); env && *env) sim.api_keys.emplace_back(env);
  }
  // KV-cache events (issue 15)
  if (!o.kv_events_config.empty()) {
    if (!kv_events::parse_publisher_config(o.kv_events_config, sim.kv_events, error))
      return fail(error);
    sim.kv_events.encode.events_as_maps = o.kv_events_event_format == "map";
    sim.kv_events.encode.batch_as_map = o.kv_events_batch_format == "map";
    std::string hashes = o.kv_events_hashes;
    if (hashes.empty()) {
      const char* env = std::getenv("VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES");
      hashes = env && std::string_view(env) == "0" ? "bytes" : "int";
    }
    sim.kv_events.encode.byte_hashes = hashes == "bytes";
    sim.kv_events.data_parallel_rank = o.data_parallel_rank;
    sim.kv_events.drop_every = o.kv_events_drop_every;
  }
  // HTTPS: the server's TLS front (src/http/server.cpp), as vLLM's uvicorn with these flags.
  if (o.ssl_keyfile.empty() != o.ssl_certfile.empty()) {
    return fail("--ssl-keyfile and --ssl-certfile go together");
  }
  sim.http.tls_key_file = o.ssl_keyfile;
  sim.http.tls_cert_file = o.ssl_certfile;
  return vllm_sim::run_until_signal(sim);
}

// vLLM's human_readable_int as a CLI11 transform: "32K" becomes "32768" before the int parse.
CLI::Validator human_readable_int() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        long long n = 0;
        std::string error;
        if (!parse_human_readable_int(value, n, error)) return error;
        value = std::to_string(n);
        return {};
      },
      "INT", "human_readable_int");
}

}  // namespace

void add_vllm_sim_command(CLI::App& root, Action& action) {
  auto opts = std::make_shared<VllmSimOptions>();
  auto* cmd = root.add_subcommand(
      "vllm-sim",
      "a simulated vLLM OpenAI-compatible server: same API and /metrics, continuous batching in "
      "scaled real time, no GPU. Takes vLLM's serve command line (eta vllm-sim serve MODEL "
      "[vLLM flags]); vLLM flags that change nothing simulated are accepted and listed on "
      "stderr as ignored");
  cmd->add_option("--host", opts->host, "address to listen on")->capture_default_str();
  // HTTPS replicas (alias): vLLM's flags.
  cmd->add_option("--ssl-keyfile", opts->ssl_keyfile, "serve HTTPS: PEM private key")
      ->check(CLI::ExistingFile);
  cmd->add_option("--ssl-certfile", opts->ssl_certfile, "serve HTTPS: PEM certificate chain")
      ->check(CLI::ExistingFile);
  cmd->add_option("--port", opts->port, "port to listen on (0: any free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--model", opts->model,
                  "model path or Hugging Face name (vLLM's --model): picks the shape when it is a "
                  "known one (data/profiles/archs.yaml models:) and is the served name unless "
                  "--served-model-name is given")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // argparse: the last one wins
  opts->arch_option =
      cmd->add_option("--arch", opts->arch,
                      "model shape (llama-2-7b, llama-3.1-8b, llama-2-70b, llama-3.1-70b); "
                      "default: the one --model names, else llama-2-7b")
          ->capture_default_str();
  cmd->add_option("--gpu", opts->gpu, "GPU profile (h100, a100)")->capture_default_str();
  cmd->add_option("--speed", opts->speed, "speed factor (0.5: every step takes twice as long)")
      ->check(positive_number())
      ->capture_default_str();
  cmd->add_option("--time-scale", opts->time_scale,
                  "simulated seconds per wall second (4: runs four times faster than real)")
      ->check(positive_number())
      ->capture_default_str();
  cmd->add_option("--max-num-seqs", opts->max_num_seqs, "default: the GPU profile's")
      ->check(positive_number());
  cmd->add_option("--max-num-batched-tokens", opts->max_num_batched_tokens,
                  "default: the GPU profile's (vLLM's forms: 8192, 8k, 8K)")
      ->transform(human_readable_int())
      ->check(positive_number());
  cmd->add_option("--num-gpu-blocks,--num-gpu-blocks-override", opts->num_gpu_blocks,
                  "KV cache blocks (default: derived from GPU memory)")
      ->check(positive_number());
  cmd->add_option("--max-model-len", opts->max_model_len, "default: the arch's (4096, 32k, 32K)")
      ->transform(human_readable_int())
      ->check(positive_number());
  cmd->add_option("--seed", opts->seed, "seed of output lengths and text")->capture_default_str();
  cmd->add_option("--profile-file", opts->profile_file,
                  "YAML with extra or overriding gpus:/archs: profiles");
  cmd->add_option("--max-body-bytes", opts->max_body_bytes, "largest request body (413 above)")
      ->check(positive_number())
      ->capture_default_str();
  cmd->add_option("--fail-rate", opts->fail_rate,
                  "fault injection: answer this fraction of generation requests with a 500 "
                  "(seeded by --seed)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--metrics-fault", opts->metrics_fault,
                  "fault injection: GET /metrics never answers (hang) or answers text that is "
                  "not Prometheus (garbage)")
      ->check(CLI::IsMember({"none", "hang", "garbage"}))
      ->capture_default_str();
  cmd->add_option("--request-log", opts->request_log,
                  "append '<unix time> <recv|ok|abort|fail> <X-Request-Id>' per generation "
                  "request to this file (flushed at once)");
  // --api-key (iface): vLLM's API server auth.
  cmd->add_option("--api-key", opts->api_keys,
                  "require 'Authorization: Bearer KEY' on every /v1 path (repeat for several "
                  "keys; default: env VLLM_API_KEY)")
      ->check(
          [](const std::string& k) { return k.empty() ? std::string("empty key") : std::string(); })
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--stream-interval", opts->stream_interval,
                  "tokens per streamed event after the first (a request's stream_interval may "
                  "raise it)")
      ->check(positive_number())
      ->capture_default_str();
  cmd->add_option("--max-num-queued-reqs", opts->max_num_queued_reqs,
                  "answer 503 when this many sequences are in flight (waiting + running; "
                  "default: no limit)")
      ->check(positive_number());
  cmd->add_option("--media-part-tokens", opts->media_part_tokens,
                  "prompt tokens counted per image/audio/video content part of a chat message")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  // vLLM's serve flags that the simulation models (issue 16 item 1; names and meaning from
  // vllm/engine/arg_utils.py).
  cmd->add_option("positional", opts->positional, "serve MODEL, as `vllm serve MODEL`");
  cmd->add_option("--served-model-name", opts->served_model_names,
                  "the model name(s) of the API: the first is the one in responses and metrics, "
                  "every one is accepted (default: --model)")
      ->expected(1, CLI::detail::expected_max_vector_size);
  cmd->add_option("--tensor-parallel-size", opts->tensor_parallel_size,
                  "GPUs of --gpu the replica spans: weights and KV split over them, two "
                  "all-reduces per layer")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->add_option("--gpu-memory-utilization", opts->gpu_memory_utilization,
                  "fraction of each GPU's memory for weights, activations and the KV cache "
                  "(sets the KV blocks as vLLM does)")
      ->check(CLI::Range(0.0, 1.0))
      ->check(positive_number())
      ->capture_default_str();
  cmd->add_option("--kv-cache-memory-bytes", opts->kv_cache_memory_bytes,
                  "KV cache bytes per GPU (vLLM: --gpu-memory-utilization is then not used)")
      ->transform(human_readable_int())
      ->check(positive_number());
  cmd->add_option("--block-size", opts->block_size, "tokens per KV cache block")
      ->check(CLI::IsMember({1, 8, 16, 32, 64, 128, 256}))
      ->capture_default_str();
  cmd->add_flag("--enable-prefix-caching,!--no-enable-prefix-caching", opts->enable_prefix_caching,
                "automatic prefix caching (default: on, as vLLM V1)");
  cmd->add_option("--kv-cache-dtype", opts->kv_cache_dtype,
                  "KV cache element type: auto (the model's), bfloat16, fp8 (fp8_e4m3, fp8_e5m2: "
                  "half the KV bytes)")
      ->check(CLI::IsMember({"auto", "bfloat16", "fp8", "fp8_e4m3", "fp8_e5m2"}))
      ->capture_default_str();
  cmd->add_option("--dtype", opts->dtype,
                  "weights and activations: auto, half, float16, bfloat16 (2 bytes), float, "
                  "float32 (4 bytes)")
      ->check(CLI::IsMember({"auto", "half", "float16", "bfloat16", "float", "float32"}))
      ->capture_default_str();
  cmd->add_flag("--disable-log-stats", opts->disable_log_stats,
                "no vllm: series in /metrics (vLLM then records no stats)");
  cmd->add_option("--long-prefill-token-threshold", opts->long_prefill_token_threshold,
                  "chunk a prefill longer than this (0: off)")
      ->check(CLI::NonNegativeNumber);
  // Every other vLLM serve flag: accepted, ignored, reported. Registered when the command line
  // reaches vllm-sim, after every option of the command exists, so that a flag given a meaning
  // in any block above is never registered twice.
  cmd->preparse_callback([opts, cmd](std::size_t) { opts->ignored = add_ignored_vllm_flags(cmd); });
  cmd->footer(
      "Other vLLM serve flags (--trust-remote-code, --download-dir, --enforce-eager, ...) are "
      "accepted and listed on stderr as ignored; --pipeline-parallel-size/--data-parallel-size "
      "other than 1, --quantization, --speculative-config and --config are refused.");
  // KV-cache events (issue 15): vLLM's flag and JSON keys; the encodings are eta's choices.
  cmd->add_option("--kv-events-config", opts->kv_events_config,
                  "vLLM's KV-cache events JSON, e.g. '{\"enable_kv_cache_events\": true, "
                  "\"publisher\": \"zmq\", \"endpoint\": \"tcp://*:5557\", "
                  "\"replay_endpoint\": \"tcp://*:5558\"}'");
  cmd->add_option("--kv-events-event-format", opts->kv_events_event_format,
                  "events as maps tagged by \"type\" (vLLM 2026) or positional arrays (older)")
      ->check(CLI::IsMember({"map", "array"}))
      ->capture_default_str();
  cmd->add_option("--kv-events-batch-format", opts->kv_events_batch_format,
                  "each batch as [ts, events, dp_rank] (every release) or a map (one 2026 "
                  "snapshot)")
      ->check(CLI::IsMember({"array", "map"}))
      ->capture_default_str();
  cmd->add_option("--kv-events-hashes", opts->kv_events_hashes,
                  "block hashes as 64-bit integers or 32-byte digests (default: int, or bytes "
                  "when VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES=0)")
      ->check(CLI::IsMember({"int", "bytes"}));
  cmd->add_option("--data-parallel-rank", opts->data_parallel_rank,
                  "data-parallel rank: offsets the KV-events tcp ports and is sent in each batch")
      ->check(CLI::Range(0, 1023))
      ->capture_default_str();
  cmd->add_option("--kv-events-drop-every", opts->kv_events_drop_every,
                  "fault injection: every Nth KV-events batch is kept for replay but not sent "
                  "live (subscribers see a gap); 0: off")
      ->check(CLI::Range(0, 1 << 30))
      ->capture_default_str();
  cmd->callback([opts, &action] { action = [opts] { return run_vllm_sim(*opts); }; });
}

}  // namespace eta::app
