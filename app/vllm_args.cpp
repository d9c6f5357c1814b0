// vLLM serve flags that `eta vllm-sim` accepts without simulating them (see vllm_args.hpp).
#include "vllm_args.hpp"

#include <cctype>
#include <cmath>
#include <cstdlib>

namespace eta::app {

namespace {

enum class Kind {
  kBool,    // dataclass bool: argparse.BooleanOptionalAction, --NAME and --no-NAME
  kSwitch,  // action="store_true": --NAME only
  kValue,   // one value
  kList,    // nargs="+"
  kMaybe,   // nargs="?" (--hf-token [TOKEN])
};

struct Flag {
  const char* name;
  Kind kind;
};

// vLLM's serve flags that change nothing the simulator models, as in vLLM (v0.11/0.12
// arg_utils.py and cli_args.py). Not here: the flags `eta vllm-sim` simulates (--model,
// --served-model-name, --host, --port, --tensor-parallel-size, --gpu-memory-utilization,
// --kv-cache-memory-bytes, --block-size, --enable-prefix-caching, --kv-cache-dtype, --dtype,
// --max-model-len, --max-num-seqs, --max-num-batched-tokens, --num-gpu-blocks-override,
// --long-prefill-token-threshold, --seed, --disable-log-stats), the ones refused below, and the
// ones other parts of vllm-sim give a meaning (--api-key, --ssl-keyfile, --ssl-certfile,
// --kv-events-config, --stream-interval, --max-num-queued-reqs).
constexpr Flag kIgnored[] = {
    // ModelConfig
    {"--runner", Kind::kValue},
    {"--convert", Kind::kValue},
    {"--task", Kind::kValue},
    {"--tokenizer", Kind::kValue},
    {"--tokenizer-mode", Kind::kValue},
    {"--trust-remote-code", Kind::kBool},
    {"--hf-config-path", Kind::kValue},
    {"--allowed-local-media-path", Kind::kValue},
    {"--allowed-media-domains", Kind::kList},
    {"--revision", Kind::kValue},
    {"--code-revision", Kind::kValue},
    {"--rope-scaling", Kind::kValue},
    {"--rope-theta", Kind::kValue},
    {"--tokenizer-revision", Kind::kValue},
    {"--enforce-eager", Kind::kBool},
    {"--max-logprobs", Kind::kValue},
    {"--logprobs-mode", Kind::kValue},
    {"--disable-sliding-window", Kind::kBool},
    {"--disable-cascade-attn", Kind::kBool},
    {"--skip-tokenizer-init", Kind::kBool},
    {"--enable-prompt-embeds", Kind::kBool},
    {"--config-format", Kind::kValue},
    {"--hf-token", Kind::kMaybe},
    {"--hf-overrides", Kind::kValue},
    {"--pooler-config", Kind::kValue},
    {"--override-pooler-config", Kind::kValue},
    {"--logits-processor-pattern", Kind::kValue},
    {"--generation-config", Kind::kValue},
    {"--override-generation-config", Kind::kValue},
    {"--enable-sleep-mode", Kind::kBool},
    {"--model-impl", Kind::kValue},
    {"--override-attention-dtype", Kind::kValue},
    {"--logits-processors", Kind::kList},
    {"--io-processor-plugin", Kind::kValue},
    // LoadConfig
    {"--load-format", Kind::kValue},
    {"--download-dir", Kind::kValue},
    {"--safetensors-load-strategy", Kind::kValue},
    {"--model-loader-extra-config", Kind::kValue},
    {"--ignore-patterns", Kind::kList},
    {"--use-tqdm-on-load", Kind::kBool},
    {"--pt-load-map-location", Kind::kValue},
    // StructuredOutputsConfig
    {"--reasoning-parser", Kind::kValue},
    {"--structured-outputs-config", Kind::kValue},
    // ParallelConfig (besides --tensor-parallel-size; pipeline and data parallelism refused)
    {"--distributed-executor-backend", Kind::kValue},
    {"--decode-context-parallel-size", Kind::kValue},
    {"--data-parallel-rank", Kind::kValue},
    {"--data-parallel-start-rank", Kind::kValue},
    {"--data-parallel-size-local", Kind::kValue},
    {"--data-parallel-address", Kind::kValue},
    {"--data-parallel-rpc-port", Kind::kValue},
    {"--data-parallel-backend", Kind::kValue},
    {"--data-parallel-hybrid-lb", Kind::kBool},
    {"--enable-expert-parallel", Kind::kBool},
    {"--all2all-backend", Kind::kValue},
    {"--enable-dbo", Kind::kBool},
    {"--dbo-decode-token-threshold", Kind::kValue},
    {"--dbo-prefill-token-threshold", Kind::kValue},
    {"--disable-nccl-for-dp-synchronization", Kind::kBool},
    {"--enable-eplb", Kind::kBool},
    {"--eplb-config", Kind::kValue},
    {"--expert-placement-strategy", Kind::kValue},
    {"--max-parallel-loading-workers", Kind::kValue},
    {"--ray-workers-use-nsight", Kind::kBool},
    {"--disable-custom-all-reduce", Kind::kBool},
    {"--worker-cls", Kind::kValue},
    {"--worker-extension-cls", Kind::kValue},
    // CacheConfig
    {"--swap-space", Kind::kValue},
    {"--prefix-caching-hash-algo", Kind::kValue},
    {"--cpu-offload-gb", Kind::kValue},
    {"--calculate-kv-scales", Kind::kBool},
    {"--kv-sharing-fast-prefill", Kind::kBool},
    {"--mamba-cache-dtype", Kind::kValue},
    {"--mamba-ssm-cache-dtype", Kind::kValue},
    {"--mamba-block-size", Kind::kValue},
    // MultiModalConfig
    {"--limit-mm-per-prompt", Kind::kValue},
    {"--enable-mm-embeds", Kind::kBool},
    {"--media-io-kwargs", Kind::kValue},
    {"--mm-processor-kwargs", Kind::kValue},
    {"--mm-processor-cache-gb", Kind::kValue},
    {"--mm-processor-cache-type", Kind::kValue},
    {"--mm-shm-cache-max-object-size-mb", Kind::kValue},
    {"--mm-encoder-tp-mode", Kind::kValue},
    {"--mm-encoder-attn-backend", Kind::kValue},
    {"--interleave-mm-strings", Kind::kBool},
    {"--skip-mm-profiling", Kind::kBool},
    {"--video-pruning-rate", Kind::kValue},
    // LoRAConfig
    {"--enable-lora", Kind::kBool},
    {"--max-loras", Kind::kValue},
    {"--max-lora-rank", Kind::kValue},
    {"--lora-extra-vocab-size", Kind::kValue},
    {"--lora-dtype", Kind::kValue},
    {"--max-cpu-loras", Kind::kValue},
    {"--fully-sharded-loras", Kind::kBool},
    {"--default-mm-loras", Kind::kValue},
    // ObservabilityConfig
    {"--show-hidden-metrics-for-version", Kind::kValue},
    {"--otlp-traces-endpoint", Kind::kValue},
    {"--collect-detailed-traces", Kind::kValue},
    // SchedulerConfig (besides the batch limits and --long-prefill-token-threshold)
    {"--max-num-partial-prefills", Kind::kValue},
    {"--max-long-partial-prefills", Kind::kValue},
    {"--num-lookahead-slots", Kind::kValue},
    {"--scheduling-policy", Kind::kValue},
    {"--enable-chunked-prefill", Kind::kBool},
    {"--disable-chunked-mm-input", Kind::kBool},
    {"--scheduler-cls", Kind::kValue},
    {"--disable-hybrid-kv-cache-manager", Kind::kBool},
    {"--async-scheduling", Kind::kBool},
    // CompilationConfig, VllmConfig
    {"--cudagraph-capture-sizes", Kind::kList},
    {"--cuda-graph-sizes", Kind::kList},
    {"--max-cudagraph-capture-size", Kind::kValue},
    {"--compilation-config", Kind::kValue},
    {"--kv-transfer-config", Kind::kValue},
    {"--additional-config", Kind::kValue},
    {"--aggregate-engine-logging", Kind::kSwitch},
    // AsyncEngineArgs
    {"--enable-log-requests", Kind::kBool},
    {"--disable-log-requests", Kind::kSwitch},
    // FrontendArgs (the OpenAI-compatible server)
    {"--uds", Kind::kValue},
    {"--uvicorn-log-level", Kind::kValue},
    {"--disable-uvicorn-access-log", Kind::kBool},
    {"--allow-credentials", Kind::kBool},
    {"--allowed-origins", Kind::kValue},
    {"--allowed-methods", Kind::kValue},
    {"--allowed-headers", Kind::kValue},
    {"--lora-modules", Kind::kList},
    {"--chat-template", Kind::kValue},
    {"--chat-template-content-format", Kind::kValue},
    {"--trust-request-chat-template", Kind::kBool},
    {"--response-role", Kind::kValue},
    {"--ssl-ca-certs", Kind::kValue},
    {"--enable-ssl-refresh", Kind::kBool},
    {"--ssl-cert-reqs", Kind::kValue},
    {"--root-path", Kind::kValue},
    {"--middleware", Kind::kValue},
    {"--return-tokens-as-token-ids", Kind::kBool},
    {"--disable-frontend-multiprocessing", Kind::kBool},
    {"--enable-request-id-headers", Kind::kBool},
    {"--enable-auto-tool-choice", Kind::kBool},
    {"--exclude-tools-when-tool-choice-none", Kind::kBool},
    {"--tool-call-parser", Kind::kValue},
    {"--tool-parser-plugin", Kind::kValue},
    {"--tool-server", Kind::kValue},
    {"--log-config-file", Kind::kValue},
    {"--max-log-len", Kind::kValue},
    {"--disable-fastapi-docs", Kind::kBool},
    {"--enable-prompt-tokens-details", Kind::kBool},
    {"--enable-server-load-tracking", Kind::kBool},
    {"--enable-force-include-usage", Kind::kBool},
    {"--enable-tokenizer-info-endpoint", Kind::kBool},
    {"--enable-log-outputs", Kind::kBool},
    {"--h11-max-incomplete-event-size", Kind::kValue},
    {"--h11-max-header-count", Kind::kValue},
    {"--log-error-stack", Kind::kBool},
    {"--tokens-only", Kind::kBool},
    // make_arg_parser
    {"--headless", Kind::kSwitch},
    {"--api-server-count", Kind::kValue},
};

bool registered(CLI::App* cmd, const std::string& name) {
  return cmd->get_option_no_throw(name) != nullptr;
}

}  // namespace

std::shared_ptr<IgnoredVllmFlags> add_ignored_vllm_flags(CLI::App* cmd) {
  auto flags = std::make_shared<IgnoredVllmFlags>();
  // Hidden from --help (group ""): the help text says they are accepted.
  const std::string group;
  for (const Flag& f : kIgnored) {
    const std::string name = f.name;
    if (registered(cmd, name)) continue;
    auto entry = std::make_unique<IgnoredVllmFlags::Entry>();
    entry->name = name;
    switch (f.kind) {
      case Kind::kBool: {
        const std::string negated = "--no-" + name.substr(2);
        entry->option = cmd->add_flag(name)->group(group);
        if (!registered(cmd, negated)) entry->negated = cmd->add_flag(negated)->group(group);
        break;
      }
      case Kind::kSwitch:
        entry->option = cmd->add_flag(name)->group(group);
        break;
      case Kind::kValue:
        entry->option = cmd->add_option(name, entry->value)->group(group);
        break;
      case Kind::kList:
        entry->option =
            cmd->add_option(name)->expected(1, CLI::detail::expected_max_vector_size)->group(group);
        break;
      case Kind::kMaybe:
        entry->option = cmd->add_option(name)->expected(0, 1)->group(group);
        break;
    }
    flags->entries_.push_back(std::move(entry));
  }
  // Flags vLLM has whose meaning the simulation cannot honour.
  if (!registered(cmd, "--pipeline-parallel-size")) {
    flags->pipeline_parallel_ =
        cmd->add_option("--pipeline-parallel-size", flags->pipeline_parallel_size_)->group(group);
  }
  if (!registered(cmd, "--data-parallel-size")) {
    flags->data_parallel_ =
        cmd->add_option("--data-parallel-size", flags->data_parallel_size_)->group(group);
  }
  if (!registered(cmd, "--quantization")) {
    flags->quantization_opt_ =
        cmd->add_option("--quantization,-q", flags->quantization_)->group(group);
  }
  if (!registered(cmd, "--speculative-config")) {
    flags->speculative_opt_ =
        cmd->add_option("--speculative-config", flags->speculative_config_)->group(group);
  }
  if (!registered(cmd, "--config")) {
    flags->config_opt_ = cmd->add_option("--config", flags->config_file_)->group(group);
  }
  return flags;
}

std::vector<std::string> IgnoredVllmFlags::used() const {
  std::vector<std::string> out;
  for (const auto& e : entries_) {
    if (e->option->count() > 0) out.push_back(e->name);
    if (e->negated && e->negated->count() > 0) out.push_back("--no-" + e->name.substr(2));
  }
  return out;
}

std::string IgnoredVllmFlags::report() const {
  const std::vector<std::string> names = used();
  if (names.empty()) return {};
  std::string line = "ignored vLLM flags (no effect on the simulation): ";
  for (std::size_t i = 0; i < names.size(); ++i) line += (i ? ", " : "") + names[i];
  return line;
}

std::string IgnoredVllmFlags::refusal() const {
  const auto given = [](const CLI::Option* o) { return o && o->count() > 0; };
  if (given(pipeline_parallel_) && pipeline_parallel_size_ != "1") {
    return "--pipeline-parallel-size " + pipeline_parallel_size_ +
           " is not simulated (one replica is one engine; use --tensor-parallel-size)";
  }
  if (given(data_parallel_) && data_parallel_size_ != "1") {
    return "--data-parallel-size " + data_parallel_size_ +
           " is not simulated (start one eta vllm-sim per data-parallel replica)";
  }
  if (given(quantization_opt_) && !quantization_.empty() && quantization_ != "None") {
    return "--quantization " + quantization_ +
           " is not simulated (the model runs in --dtype; --kv-cache-dtype fp8 is)";
  }
  if (given(speculative_opt_) && !speculative_config_.empty() && speculative_config_ != "None") {
    return "--speculative-config is not simulated";
  }
  if (given(config_opt_)) {
    return "--config " + config_file_ + " is not read: pass its flags on the command line";
  }
  return {};
}

bool parse_human_readable_int(const std::string& text, long long& out, std::string& error) {
  std::string v = text;
  while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.pop_back();
  std::size_t start = 0;
  while (start < v.size() && std::isspace(static_cast<unsigned char>(v[start]))) ++start;
  v = v.substr(start);
  const auto bad = [&] {
    error = "'" + text + "' is not an integer (vLLM's forms: 4096, 25.6k, 32K, 1M, 2g)";
    return false;
  };
  if (v.empty()) return bad();
  const char suffix = v.back();
  long long mult = 1;
  bool decimal = false;
  switch (suffix) {
    case 'k':
      mult = 1000, decimal = true;
      break;
    case 'm':
      mult = 1000000, decimal = true;
      break;
    case 'g':
      mult = 1000000000, decimal = true;
      break;
    case 'K':
      mult = 1LL << 10;
      break;
    case 'M':
      mult = 1LL << 20;
      break;
    case 'G':
      mult = 1LL << 30;
      break;
    default:
      break;
  }
  const std::string number = mult == 1 ? v : v.substr(0, v.size() - 1);
  if (number.empty()) return bad();
  bool dot = false;
  for (std::size_t i = 0; i < number.size(); ++i) {
    const char c = number[i];
    if (c == '-' && i == 0 && mult == 1) continue;
    if (c == '.' && !dot && decimal && i > 0 && i + 1 < number.size()) {
      dot = true;
      continue;
    }
    if (!std::isdigit(static_cast<unsigned char>(c))) {
      if (c == '.' && mult > 1 && !decimal) {
        error = "'" + text + "': decimals are not allowed with binary suffixes like " +
                std::string(1, suffix) + " (did you mean " + number +
                static_cast<char>(std::tolower(static_cast<unsigned char>(suffix))) + "?)";
        return false;
      }
      return bad();
    }
  }
  if (dot) {
    out = static_cast<long long>(std::strtod(number.c_str(), nullptr) * static_cast<double>(mult));
  } else {
    out = std::strtoll(number.c_str(), nullptr, 10) * mult;
  }
  return true;
}

}  // namespace eta::app
