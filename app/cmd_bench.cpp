// `eta bench`: an open-loop load generator that measures what users feel (src/bench/,
// docs/bench.md), and `eta bench compare`: reports side by side.
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench.hpp"
#include "commands.hpp"
#include "stats/report.hpp"

namespace eta::app {

namespace {

struct BenchFlags {
  bench::BenchOptions options;
  double rate = 0;
  double load = 0;
  double capacity = 0;
  int64_t num_requests = 0;
  double duration_s = 0;
  double time_scale = 0;
  double warmup = 0;
  CLI::Option* rate_opt = nullptr;
  CLI::Option* load_opt = nullptr;
  CLI::Option* capacity_opt = nullptr;
  CLI::Option* num_requests_opt = nullptr;
  CLI::Option* duration_opt = nullptr;
  CLI::Option* time_scale_opt = nullptr;
  std::vector<std::string> targets;  // --target, repeated (several routers)

  // Compare.
  std::vector<std::string> reports;
  std::string format = "markdown";
  stats::CompareOptions compare;
};

int fail(const std::string& message, int code = 2) {
  std::fprintf(stderr, "eta bench: %s\n", message.c_str());
  return code;
}

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  return static_cast<bool>(out);
}

int run_bench_command(BenchFlags& f) {
  bench::BenchOptions& o = f.options;
  if (f.rate_opt->count() > 0) o.rate = f.rate;
  if (f.load_opt->count() > 0) o.load = f.load;
  if (f.capacity_opt->count() > 0) o.capacity = f.capacity;
  if (f.num_requests_opt->count() > 0) o.num_requests = f.num_requests;
  if (f.duration_opt->count() > 0) o.duration_s = f.duration_s;
  if (f.time_scale_opt->count() > 0) o.time_scale = f.time_scale;
  if (!f.targets.empty()) {
    o.target = f.targets.front();
    o.extra_targets.assign(f.targets.begin() + 1, f.targets.end());
  }

  bench::BenchSetup setup;
  std::string error;
  if (!bench::prepare_bench(o, setup, error)) return fail(error);
  bench::TargetInfo target;
  if (!bench::discover_target(o, setup, target, error)) return fail(error, 1);
  if (!target.warning.empty())
    std::fprintf(stderr, "eta bench: warning: %s\n", target.warning.c_str());

  bench::BenchRun run;
  bench::run_bench(o, setup, target, run);
  if (f.warmup > 0) {  // the report of the steady part, with the whole run's extras
    stats::Report steady = stats::steady_report(run.report.label, run.records, f.warmup, setup.slo);
    steady.extra.insert(run.report.extra.begin(), run.report.extra.end());
    run.report = std::move(steady);
  }

  int code = 0;
  if (!o.json_path.empty() && !write_file(o.json_path, bench::report_json(o, setup, run))) {
    code = fail("cannot write " + o.json_path, 1);
  }
  if (!o.csv_path.empty() && !write_file(o.csv_path, bench::records_csv(setup, run))) {
    code = fail("cannot write " + o.csv_path, 1);
  }
  const std::string summary = bench::summary_text(setup, run);
  std::fputs(summary.c_str(), stdout);
  std::fflush(stdout);
  if (code != 0) return code;
  if (run.interrupted) return 130;
  if (run.report.requests == 0) return fail("no request succeeded", 1);
  return 0;
}

int run_compare(const BenchFlags& f) {
  stats::CompareOptions options = f.compare;
  if (f.format == "markdown") {
    options.format = stats::TableFormat::kMarkdown;
  } else if (f.format == "plain") {
    options.format = stats::TableFormat::kPlain;
  } else {
    return fail("compare: --format must be markdown or plain, got '" + f.format + "'");
  }
  std::vector<stats::Report> reports;
  for (const std::string& path : f.reports) {
    stats::Report r;
    std::string error;
    if (!stats::load_report_file(path, r, error)) return fail("compare: " + error);
    reports.push_back(std::move(r));
  }
  std::string table, error;
  if (!stats::render_comparison(reports, options, table, error)) return fail("compare: " + error);
  std::fputs(table.c_str(), stdout);
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& root, Action& action) {
  auto f = std::make_shared<BenchFlags>();
  bench::BenchOptions& o = f->options;
  auto* cmd = root.add_subcommand(
      "bench",
      "an open-loop load generator for OpenAI-compatible servers: TTFT, TPOT, ITL, E2E and "
      "goodput, in the replica's simulated time (docs/bench.md); `eta bench compare A.json "
      "B.json ...` prints reports side by side");
  cmd->add_option("--target", f->targets,
                  "the server or router, e.g. http://127.0.0.1:8000 (repeat for several routers: "
                  "requests are spread by --target-choice; the first one's /v1/models is asked)");
  cmd->add_option("--target-choice", o.target_choice,
                  "with several --target: round-robin (request i to target i mod N, the default) "
                  "or random (drawn per request from --seed)");
  cmd->add_option("--workload", o.workload,
                  "azure-conv, mooncake-conv, synthetic, shared-prefix, multi-turn, bursty-mix "
                  "(NAME:key=value,...; docs/workloads.md) or a trace file (.csv/.jsonl)");
  f->rate_opt = cmd->add_option("--rate", f->rate,
                                "mean arrival rate in requests/s of simulated time (inf: all at "
                                "once); default: the workload's own times");
  f->load_opt =
      cmd->add_option("--load", f->load, "arrival rate as a fraction of --capacity (e.g. 0.85)");
  f->capacity_opt = cmd->add_option(
      "--capacity", f->capacity,
      "requests/s that --load multiplies; `eta cluster-sim --find-capacity` measures it");
  f->num_requests_opt =
      cmd->add_option("--num-requests", f->num_requests, "send only the first N requests");
  f->duration_opt =
      cmd->add_option("--duration", f->duration_s,
                      "send only requests scheduled in the first S (simulated) seconds");
  cmd->add_option("--arrival", o.arrival,
                  "auto (the workload's own times, scaled to --rate), trace, poisson, gamma:CV, "
                  "constant; optional :seed=N")
      ->capture_default_str();
  cmd->add_option("--seed", o.seed, "seed of the workload and the arrivals")->capture_default_str();
  cmd->add_option("--lengths", o.lengths,
                  "exact: max_tokens = the true length with ignore_eos; hidden: one max_tokens "
                  "for the whole workload (its longest answer rounded up to a power of two), the "
                  "true length only in eta_sim.output_tokens; hidden-scaled: as hidden with "
                  "max_tokens = max(2 x true length, 256) (the rule before 2026-12-02: it tells "
                  "the router the length within a factor of two)")
      ->capture_default_str();
  cmd->add_option("--slo", o.slo, "SLOs for goodput in ms, e.g. ttft=500,tpot=50,e2e=20000");
  cmd->add_option("--json", o.json_path, "write the report (JSON, docs/bench.md)");
  cmd->add_option("--csv", o.csv_path, "write one row per request (CSV, docs/bench.md)");
  cmd->add_option("--label", o.label, "the report's name (default: the workload and rate)");
  cmd->add_option("--model", o.model, "model to request (default: the first of /v1/models)");
  cmd->add_option("--api", o.api,
                  "completions or chat for requests that don't choose (default: completions)");
  f->time_scale_opt = cmd->add_option(
      "--time-scale", f->time_scale,
      "the replica's simulated seconds per wall second (default: /v1/models eta_time_scale, "
      "else 1)");
  cmd->add_option("--data-dir", o.data_dir,
                  "directory of the named traces (default: the nearest shared/data)");
  cmd->add_option("--max-concurrency", o.max_concurrency,
                  "at most N requests in flight (default: none, pure open loop)");
  cmd->add_option("--timeout", o.timeout_s, "per-request timeout in (simulated) seconds")
      ->capture_default_str();
  cmd->add_option("--warmup", f->warmup,
                  "leave the requests sent in the first FRACTION of the sending span out of the "
                  "report (e.g. 0.2), which then also gives the offered and completed rates of "
                  "the rest (extra.offered_rps, extra.completed_rps)")
      ->check(CLI::Range(0.0, 0.99));
  cmd->add_option("--progress", o.progress,
                  "progress line on stderr: auto, tty (rewritten in place), lines, off")
      ->capture_default_str();

  auto* compare =
      cmd->add_subcommand("compare", "print bench reports side by side, with ratios to the first");
  compare->add_option("reports", f->reports, "report files written by eta bench --json")
      ->required();
  compare->add_option("--format", f->format, "markdown or plain")->capture_default_str();
  stats::CompareOptions& c = f->compare;
  compare
      ->add_option("--metrics", c.metrics,
                   "the metrics to show, in order, each NAME[=TITLE]: NAME as the default table "
                   "prints it (ttft_ms.p99 for 'ttft_ms p99') or extra.KEY (default: all)")
      ->delimiter(',')
      ->allow_extra_args(false);
  compare->add_option("--baseline", c.baseline,
                      "the label of the report ratios are to (default: the first)");
  compare->add_flag("--by-report", c.by_report,
                    "one row per report and one column per metric (default: one row per metric)");
  compare
      ->add_option("--ratios", c.ratios,
                   "with --by-report: a column 'METRIC / BASELINE' for each of these metrics")
      ->delimiter(',')
      ->allow_extra_args(false);
  compare
      ->add_option("--first-column", c.first_column,
                   "with --by-report: the title of the column of labels")
      ->capture_default_str();

  compare->callback([f, &action] { action = [f] { return run_compare(*f); }; });
  cmd->callback([f, compare, &action] {
    if (compare->parsed()) return;
    action = [f] { return run_bench_command(*f); };
  });
}

}  // namespace eta::app
