// vLLM's serve command line for `eta vllm-sim` (issue 16 item 1): the vLLM flags that change
// nothing in the simulation are accepted and reported as ignored; the ones it cannot honour
// (another parallelism, quantization, speculative decoding, a --config file) are refused.
// The names come from vLLM's vllm/engine/arg_utils.py (EngineArgs.add_cli_args) and
// vllm/entrypoints/openai/cli_args.py (FrontendArgs, make_arg_parser).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace eta::app {

// The vLLM flags registered by add_ignored_vllm_flags on one command.
class IgnoredVllmFlags {
 public:
  // Flags the command line used, in vLLM's spelling ("--trust-remote-code"), in table order.
  std::vector<std::string> used() const;
  // One line for stderr when used() is not empty: "ignored vLLM flags (no effect on the
  // simulation): --a, --b".
  std::string report() const;
  // A refusal for flags that vLLM has but the simulation cannot honour (empty: none).
  std::string refusal() const;

 private:
  friend std::shared_ptr<IgnoredVllmFlags> add_ignored_vllm_flags(CLI::App* cmd);
  struct Entry {
    std::string name;
    CLI::Option* option = nullptr;
    CLI::Option* negated = nullptr;  // --no-NAME of a boolean flag
    std::string value;               // a value flag's last value
  };
  std::vector<std::unique_ptr<Entry>> entries_;
  std::string pipeline_parallel_size_ = "1";
  std::string data_parallel_size_ = "1";
  std::string quantization_;
  std::string speculative_config_;
  std::string config_file_;
  CLI::Option* pipeline_parallel_ = nullptr;
  CLI::Option* data_parallel_ = nullptr;
  CLI::Option* quantization_opt_ = nullptr;
  CLI::Option* speculative_opt_ = nullptr;
  CLI::Option* config_opt_ = nullptr;
};

// Registers every vLLM serve flag that the command does not already have. Call it after every
// other option of the command is added (a flag someone gives a meaning later is then simply
// not registered here).
std::shared_ptr<IgnoredVllmFlags> add_ignored_vllm_flags(CLI::App* cmd);

// vLLM's human_readable_int for --max-model-len, --max-num-batched-tokens and
// --kv-cache-memory-bytes: "25.6k" = 25600, "1K" = 1024, "2M" = 2097152, "1g" = 10^9; a plain
// integer as is. Returns false with a one-line reason.
bool parse_human_readable_int(const std::string& text, long long& out, std::string& error);

}  // namespace eta::app
