// `eta vllm-sim`: a simulated vLLM OpenAI-compatible server (src/vllm_sim/).
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "commands.hpp"
#include "engine/engine.hpp"
#include "engine/profile.hpp"
#include "validators.hpp"
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
  // HTTPS (vLLM's --ssl-keyfile / --ssl-certfile; both or neither).
  std::string ssl_keyfile;
  std::string ssl_certfile;
};

int fail(const std::string& message) {
  std::fprintf(stderr, "eta vllm-sim: %s\n", message.c_str());
  return 2;
}

int run_vllm_sim(const VllmSimOptions& o) {
  engine::ProfileSet profiles = engine::ProfileSet::builtin();
  if (!o.profile_file.empty()) {
    std::ifstream in(o.profile_file);
    if (!in) return fail("cannot read --profile-file " + o.profile_file);
    std::stringstream text;
    text << in.rdbuf();
    engine::ProfileSet extra;
    std::string error;
    if (!engine::ProfileSet::from_yaml(text.str(), extra, error)) {
      return fail(o.profile_file + ": " + error);
    }
    profiles.merge(extra);
  }
  engine::EngineConfig config;
  std::string error;
  if (!engine::make_config(profiles, o.arch, o.gpu, config, error)) return fail(error);
  config.speed = o.speed;
  config.max_num_seqs = o.max_num_seqs;
  config.max_num_batched_tokens = o.max_num_batched_tokens;
  config.num_gpu_blocks = o.num_gpu_blocks;
  config.max_model_len = o.max_model_len;
  config = config.resolved();
  if (config.num_gpu_blocks <= 0) {
    return fail("no KV cache blocks fit on " + o.gpu + " for " + o.arch +
                " (set --num-gpu-blocks)");
  }
  // vLLM refuses to start when one max_model_len sequence cannot fit in the KV cache.
  const int64_t capacity = static_cast<int64_t>(config.num_gpu_blocks) * config.block_size;
  if (config.max_model_len > capacity) {
    return fail("the model's max seq len (" + std::to_string(config.max_model_len) +
                ") is larger than the maximum number of tokens that can be stored in KV cache (" +
                std::to_string(capacity) + "); lower --max-model-len or raise --num-gpu-blocks");
  }

  vllm_sim::SimConfig sim;
  sim.engine = config;
  sim.model = o.model;
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
  // HTTPS: the server's TLS front (src/http/server.cpp), as vLLM's uvicorn with these flags.
  if (o.ssl_keyfile.empty() != o.ssl_certfile.empty()) {
    return fail("--ssl-keyfile and --ssl-certfile go together");
  }
  sim.http.tls_key_file = o.ssl_keyfile;
  sim.http.tls_cert_file = o.ssl_certfile;
  return vllm_sim::run_until_signal(sim);
}

}  // namespace

void add_vllm_sim_command(CLI::App& root, Action& action) {
  auto opts = std::make_shared<VllmSimOptions>();
  auto* cmd = root.add_subcommand(
      "vllm-sim",
      "a simulated vLLM OpenAI-compatible server: same API and /metrics, continuous batching in "
      "scaled real time, no GPU");
  cmd->add_option("--host", opts->host, "address to listen on")->capture_default_str();
  // HTTPS replicas (alias): vLLM's flags.
  cmd->add_option("--ssl-keyfile", opts->ssl_keyfile, "serve HTTPS: PEM private key")
      ->check(CLI::ExistingFile);
  cmd->add_option("--ssl-certfile", opts->ssl_certfile, "serve HTTPS: PEM certificate chain")
      ->check(CLI::ExistingFile);
  cmd->add_option("--port", opts->port, "port to listen on (0: any free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--model", opts->model, "served model name")->required();
  cmd->add_option("--arch", opts->arch, "model shape (llama-2-7b, llama-3.1-8b)")
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
                  "default: the GPU profile's")
      ->check(positive_number());
  cmd->add_option("--num-gpu-blocks", opts->num_gpu_blocks,
                  "KV cache blocks (default: derived from GPU memory)")
      ->check(positive_number());
  cmd->add_option("--max-model-len", opts->max_model_len, "default: the arch's")
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
  cmd->callback([opts, &action] { action = [opts] { return run_vllm_sim(*opts); }; });
}

}  // namespace eta::app
