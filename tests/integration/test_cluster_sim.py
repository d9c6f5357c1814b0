"""`eta cluster-sim` end to end: the JSON report, the SVG plot, the table, --find-capacity, the
trace workloads from ETA_SHARED_DIR, and the command line's errors."""

import json
import re
import os
import tempfile
import unittest
import xml.etree.ElementTree as ET

import etatest

SHARED_DIR = os.environ.get("ETA_SHARED_DIR", "")
SMALL = ["--replicas", "h100,a100:speed=0.8", "--workload",
         "synthetic:n=120,in=300,out=60", "--seed", "3"]
SUMMARY = ["mean", "p50", "p90", "p99", "p999", "std", "min", "max", "count"]
RUN_KEYS = ["policy", "load", "rate_rps", "capacity_rps", "label", "requests", "errors",
            "duration_s", "total_input_tokens", "total_output_tokens", "request_throughput_rps",
            "output_tokens_per_s", "goodput_rps", "ttft_ms", "tpot_ms", "itl_ms", "e2e_ms",
            "replicas", "ttft_prediction_error_ms", "e2e_prediction_error_ms", "extra",
            "preemptions", "prefix_hit_rate", "replica_share", "replica_preemptions",
            "learned_speed", "prediction", "sim", "ratios"]


class ClusterSimTest(unittest.TestCase):
    def run_sim(self, extra, timeout=120):
        code, out, err = etatest.run_eta(["cluster-sim"] + SMALL + extra, timeout=timeout)
        self.assertEqual(code, 0, err)
        return out, err

    def test_json_svg_and_table(self):
        with tempfile.TemporaryDirectory() as d:
            jpath = os.path.join(d, "out.json")
            spath = os.path.join(d, "out.svg")
            out, err = self.run_sim(["--policy", "all", "--load", "0.4,0.8", "--lengths",
                                     "hidden", "--json", jpath, "--svg", spath])
            with open(jpath) as f:
                doc = json.load(f)
            policies = sorted({r["policy"] for r in doc["runs"]})
            for expected in ["round-robin", "random", "least-request", "power-of-two", "llm-d",
                             "cache-aware", "session", "eta", "llm-d-latency", "least-load",
                             "oracle"]:
                self.assertIn(expected, policies)
            self.assertEqual(len(doc["runs"]), 2 * len(policies))
            self.assertGreater(doc["capacity"]["requests_per_s"], 0)
            self.assertEqual(len(doc["config"]["replicas"]), 2)
            for run in doc["runs"]:
                for key in RUN_KEYS:
                    self.assertIn(key, run, (run["policy"], key))
                for key in ["ttft_ms", "tpot_ms", "e2e_ms"]:
                    for s in SUMMARY:
                        self.assertIn(s, run[key])
                self.assertIn(run["load"], [0.4, 0.8])
                self.assertEqual(run["requests"] + run["errors"], 120)
                self.assertEqual(run["lost"], 0)
                self.assertAlmostEqual(sum(run["replica_share"].values()), 1.0, places=6)
                self.assertAlmostEqual(run["rate_rps"], run["load"] * run["capacity_rps"],
                                       places=6)
                for k in ["ttft_abs_rel_error", "e2e_abs_rel_error",
                          "output_tokens_abs_rel_error"]:
                    self.assertEqual(set(run["prediction"][k]), {"p50", "p90", "count"})
            for run in doc["runs"]:
                if run["policy"] == "oracle":
                    self.assertEqual(run["ratios"]["e2e_p99_vs_oracle"], 1.0)
                if run["policy"] == "round-robin":
                    self.assertEqual(run["ratios"]["ttft_p99_vs_round_robin"], 1.0)
            eta = [r for r in doc["runs"] if r["policy"] == "eta"]
            self.assertTrue(all(r["prediction"]["e2e_abs_rel_error"]["count"] > 0 for r in eta))

            # The SVG is well-formed XML with one path per policy in each of the two panels.
            root = ET.parse(spath).getroot()
            self.assertTrue(root.tag.endswith("svg"))
            paths = [e for e in root.iter() if e.tag.endswith("path")]
            for metric in ["ttft_p99", "e2e_p99"]:
                got = sorted(p.get("data-policy") for p in paths
                             if p.get("data-metric") == metric)
                self.assertEqual(got, policies)
            for p in paths:
                self.assertEqual(len(p.get("d").split("L")), 2, p.get("d"))  # two loads

            # A table per load with every policy, ratio columns, then speed and RSS on stderr.
            self.assertEqual(out.count("### load"), 2)
            for p in policies:
                self.assertIn("| %s |" % p, out)
            self.assertIn("p99 TTFT /rr", out)
            self.assertIn("p99 E2E /oracle", out)
            self.assertRegex(err, r"speed \d+x real time")
            self.assertRegex(err, r"peak RSS [\d.]+ MiB")

    def test_same_seed_same_json(self):
        docs = []
        with tempfile.TemporaryDirectory() as d:
            for i in range(2):
                path = os.path.join(d, "r%d.json" % i)
                self.run_sim(["--policy", "eta,llm-d", "--load", "0.7", "--routers", "2",
                              "--json", path])
                with open(path) as f:
                    docs.append(f.read())
        self.assertEqual(docs[0], docs[1])

    def test_peer_sync(self):
        # Routers that share their ledgers: the flag is reported only when given, every request
        # still completes, and it changes only what policies reading the ledger decide.
        docs = {}
        with tempfile.TemporaryDirectory() as d:
            for sync in [None, "0", "20", "first"]:
                path = os.path.join(d, "p%s.json" % sync)
                extra = ["--peer-sync", sync] if sync in ["0", "20"] else []
                if sync == "first":
                    extra = ["--peer-sync", "5", "--peer-sync-tokens", "first"]
                # The same arrivals in every run: a sustained capacity measured with each
                # configuration would differ.
                self.run_sim(["--policy", "round-robin,eta", "--load", "0.9", "--lengths",
                              "hidden", "--routers", "3", "--load-basis", "isolated", "--json",
                              path] + extra)
                with open(path) as f:
                    docs[sync] = json.load(f)
        self.assertNotIn("peer_sync_ms", docs[None]["config"])
        self.assertEqual(docs["0"]["config"]["peer_sync_ms"], 0)
        self.assertEqual(docs["20"]["config"]["peer_sync_ms"], 20)
        self.assertEqual(docs["20"]["config"]["peer_sync_tokens"], "all")
        self.assertEqual(docs["first"]["config"]["peer_sync_tokens"], "first")
        runs = {sync: {r["policy"]: r for r in doc["runs"]} for sync, doc in docs.items()}
        for sync in runs:
            for run in runs[sync].values():
                self.assertEqual(run["lost"], 0)
                self.assertEqual(run["requests"] + run["errors"], 120)
        for key in ["ttft_ms", "e2e_ms", "replica_share"]:
            self.assertEqual(runs[None]["round-robin"][key], runs["0"]["round-robin"][key])
        self.assertNotEqual(runs[None]["eta"]["replica_share"], runs["0"]["eta"]["replica_share"])

    def test_peer_sync_live_protocol(self):
        # The live protocol (src/peer/, what eta route sends over NATS) in virtual time: every
        # request completes, no router's own entry is left, packets and bytes are reported, and
        # with loss the gaps are repaired by snapshots (no peer entry left at the end).
        docs, errs = {}, {}
        with tempfile.TemporaryDirectory() as d:
            for name, extra in [("ideal", ["--peer-sync", "5", "--peer-sync-tokens", "first"]),
                                ("live", ["--peer-sync", "5", "--peer-sync-protocol", "live"]),
                                ("lossy", ["--peer-sync", "5", "--peer-sync-protocol", "live",
                                           "--peer-sync-loss", "0.2"])]:
                path = os.path.join(d, "%s.json" % name)
                _, errs[name] = self.run_sim(["--policy", "eta", "--load", "0.9", "--lengths",
                                              "hidden", "--routers", "3", "--json", path] + extra)
                with open(path) as f:
                    docs[name] = json.load(f)
        self.assertNotIn("peer_sync_protocol", docs["ideal"]["config"])
        self.assertEqual(docs["live"]["config"]["peer_sync_protocol"], "live")
        self.assertEqual(docs["lossy"]["config"]["peer_sync_loss"], 0.2)
        self.assertNotIn("live peer sync", errs["ideal"])
        for name in ["live", "lossy"]:
            run = docs[name]["runs"][0]
            self.assertEqual(run["lost"], 0)
            self.assertEqual(run["requests"] + run["errors"], 120)
            m = re.search(r"live peer sync: (\d+) packets, (\d+) bytes \(([\d.]+) bytes per "
                          r"request\), (\d+) deliveries lost, (\d+) frames missed, (\d+) "
                          r"snapshots applied, (-?\d+) peer entries left", errs[name])
            self.assertIsNotNone(m, errs[name])
            packets, _, per_request, dropped, missed, snapshots, left = m.groups()
            self.assertGreater(int(packets), 120)
            self.assertGreater(float(per_request), 20)
            self.assertEqual(int(left), 0, errs[name])
            if name == "live":
                self.assertEqual((int(dropped), int(missed), int(snapshots)), (0, 0, 0))
            else:
                self.assertGreater(int(dropped), 0)
                self.assertGreater(int(snapshots), 0)

    def test_find_capacity(self):
        with tempfile.TemporaryDirectory() as d:
            jpath = os.path.join(d, "cap.json")
            out, _ = self.run_sim(["--find-capacity", "--policy", "round-robin,least-request,eta",
                                   "--json", jpath])
            with open(jpath) as f:
                cap = json.load(f)["capacity"]
        self.assertIn("requests/s", out)
        self.assertIn("r0-h100", out)
        self.assertIn("r1-a100", out)
        # The honest axis: per policy, the highest rate sustained under the workload's own
        # arrivals, and the goodput capacity; every probe that passed is at or below it.
        self.assertIn("sustained capacity", out)
        self.assertEqual(cap["definition"], "isolated")
        isolated = cap["requests_per_s"]
        by_policy = {p["policy"]: p for p in cap["policies"]}
        self.assertEqual(sorted(by_policy), ["eta", "least-request", "round-robin"])
        for name, p in by_policy.items():
            self.assertIn("| %s | " % name, out)
            # 120 short requests: a few seconds of arrivals, far below the isolated figure.
            self.assertGreater(p["sustained_rps"], 0.05 * isolated, name)
            self.assertLessEqual(p["sustained_rps"], 1.25 * isolated + 1e-9, name)
            self.assertLessEqual(p["goodput_rps"], 1.25 * isolated + 1e-9, name)
            for probe in p["probes"]:
                if probe["sustained"]:
                    self.assertGreaterEqual(probe["completed_rps"],
                                            0.97 * probe["offered_rps"] - 1e-9)
                else:
                    self.assertGreater(probe["rate_rps"], p["sustained_rps"] - 1e-9)

    def test_load_is_a_fraction_of_the_sustained_capacity(self):
        with tempfile.TemporaryDirectory() as d:
            runs = {}
            for basis in ["sustained", "isolated"]:
                jpath = os.path.join(d, basis + ".json")
                out, err = self.run_sim(["--policy", "least-request", "--load", "0.9",
                                         "--load-basis", basis, "--json", jpath])
                with open(jpath) as f:
                    runs[basis] = json.load(f)
        s, i = runs["sustained"], runs["isolated"]
        self.assertEqual(s["config"]["load_basis"], "sustained")
        self.assertEqual(s["config"]["capacity_policy"], "least-request")
        self.assertEqual(s["capacity"]["definition"], "sustained")
        self.assertEqual(i["capacity"]["definition"], "isolated")
        self.assertAlmostEqual(s["capacity"]["isolated_requests_per_s"],
                               i["capacity"]["requests_per_s"], places=9)
        self.assertLess(s["capacity"]["requests_per_s"], 1.25 * i["capacity"]["requests_per_s"])
        run = s["runs"][0]
        self.assertAlmostEqual(run["rate_rps"], 0.9 * s["capacity"]["requests_per_s"], places=6)
        # The table shows what was offered and what was done beside the latencies.
        self.assertIn("offered/s", out)
        code, _, err = etatest.run_eta(["cluster-sim"] + SMALL + ["--load-basis", "bogus"])
        self.assertEqual(code, 2)
        self.assertIn("--load-basis", err)

    @unittest.skipUnless(SHARED_DIR and os.path.isdir(os.path.join(SHARED_DIR, "data")),
                         "needs ETA_SHARED_DIR")
    def test_trace_workload_from_data_dir(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "t.json")
            code, out, err = etatest.run_eta(
                ["cluster-sim", "--replicas", "2xh100", "--workload", "azure-conv",
                 "--num-requests", "200", "--policy", "round-robin,eta", "--load", "0.6",
                 "--lengths", "hidden", "--data-dir", os.path.join(SHARED_DIR, "data"),
                 "--json", path], timeout=120)
            self.assertEqual(code, 0, err)
            with open(path) as f:
                doc = json.load(f)
            self.assertEqual(len(doc["runs"]), 2)
            self.assertEqual(doc["runs"][0]["requests"] + doc["runs"][0]["errors"], 200)

    def test_bad_flags_exit_2_with_one_line(self):
        base = ["cluster-sim", "--workload", "synthetic:n=10"]
        bad = [
            base,  # no --replicas
            ["cluster-sim", "--replicas", "h100"],  # no --workload
            base + ["--replicas", "0xh100"],
            base + ["--replicas", "tpu"],
            base + ["--replicas", "h100:speed=-1"],
            base + ["--replicas", "h100:colour=red"],
            base + ["--replicas", "h100", "--policy", "nope"],
            base + ["--replicas", "h100", "--policy", "eta,eta"],
            base + ["--replicas", "h100", "--policy-params", "eta:objective=fastest"],
            base + ["--replicas", "h100", "--load", "0"],
            base + ["--replicas", "h100", "--load", "0.5,x"],
            base + ["--replicas", "h100", "--lengths", "approximate"],
            base + ["--replicas", "h100", "--arrival", "weibull"],
            base + ["--replicas", "h100", "--ledger", "maybe"],
            base + ["--replicas", "h100", "--routers", "0"],
            base + ["--replicas", "h100", "--routers", "2", "--peer-sync", "-1"],
            base + ["--replicas", "h100", "--routers", "2", "--peer-sync", "soon"],
            base + ["--replicas", "h100", "--routers", "2", "--peer-sync", "nan"],
            base + ["--replicas", "h100", "--routers", "2", "--peer-sync", "1e9"],
            base + ["--replicas", "h100", "--routers", "2", "--peer-sync"],
            base + ["--replicas", "h100", "--routers", "2", "--peer-sync", "0",
                    "--peer-sync-tokens", "some"],
            base + ["--replicas", "h100", "--scrape-interval", "0"],
            base + ["--replicas", "h100", "--slo", "ttft"],
            base + ["--replicas", "h100", "--no-such-flag"],
            ["cluster-sim", "--replicas", "h100", "--workload", "no-such-workload"],
            ["cluster-sim", "--replicas", "h100", "--workload", "azure-conv", "--data-dir",
             "/nonexistent"],
            ["cluster-sim", "--replicas", "h100", "--workload", "synthetic:n=10,bogus=1"],
        ]
        for args in bad:
            code, out, err = etatest.run_eta(args)
            self.assertEqual(code, 2, (args, out, err))
            self.assertEqual(len(err.strip().splitlines()), 1, (args, err))
            self.assertEqual(out, "", args)


if __name__ == "__main__":
    unittest.main()
