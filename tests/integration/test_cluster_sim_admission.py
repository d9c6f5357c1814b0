"""cluster-sim sheds what the live router sheds (issue 2.2): the same arrivals through both.

One workload (synthetic, fixed lengths: 256 prompt tokens, 300 output tokens, seed 5), the same
Poisson arrivals in both (the same rate and seed, as in test_cluster_sim_vs_bench.py): `eta
cluster-sim` in virtual time with admission limits, and `eta bench` over real sockets against
`eta route` with the same limits in front of one `eta vllm-sim` (real time). Each setting is a
burst far above a small bound: 40 requests at 100 requests/s (about 0.4 s) while every admitted
request lives about 1.9 s (300 decode steps), so no admitted request finishes and no queued one
leaves before the burst ends, on either side, whatever the live side's timing noise:

  - max_in_flight 4, no queue: the first 4 are dispatched, the 36 others get 429 shed_capacity;
  - max_in_flight 2, a queue of 5 with a 1 s timeout (after the burst, before the first
    completion): 2 are dispatched, 5 wait and get 429 queue_timeout, 33 find the queue full
    (429 queue_full).

Tolerance: the counts per reason must be equal (the live router's
eta_admission_rejections_total{reason} and cluster-sim's "shed"). The 429'd requests (bench's CSV
against the simulator's records) may differ by one swap at the boundary (two requests sent
within a fraction of a millisecond can reach the live router in either order): a symmetric
difference of at most 2. Anything else (a request counted twice, a wrong order of admission, a
missing queue) is off by far more.
"""
import csv
import json
import os
import subprocess
import tempfile
import unittest

import etatest
from test_route import RouterProcess

SEED = "5"
N = 40
WORKLOAD = "synthetic:in=256,in_dist=fixed,out=300,out_dist=fixed"
RATE = 100.0

CASES = [
    ("no queue", {"max_in_flight": 4}, {"shed_capacity": 36}),
    ("short queue", {"max_in_flight": 2, "queue_size": 5, "queue_timeout_s": 1.0},
     {"queue_timeout": 5, "queue_full": 33}),
]
REASONS = ("shed_capacity", "shed_slo", "queue_full", "queue_timeout", "no_replica")


def sim_flags(adm):
    flags = ["--max-in-flight", str(adm["max_in_flight"])]
    if "queue_size" in adm:
        flags += ["--queue-size", str(adm["queue_size"]),
                  "--queue-timeout", repr(adm["queue_timeout_s"] * 1000)]
    return flags


def route_flags(adm):
    flags = ["--max-in-flight", str(adm["max_in_flight"])]
    if "queue_size" in adm:
        flags += ["--queue-size", str(adm["queue_size"]),
                  "--queue-timeout-s", repr(adm["queue_timeout_s"])]
    return flags


class ClusterSimShedsAsTheRouter(unittest.TestCase):
    def run_cluster_sim(self, tmp, adm):
        out = os.path.join(tmp, "cs.json")
        subprocess.run([etatest.eta_bin(), "cluster-sim", "--replicas", "h100", "--workload",
                        WORKLOAD, "--policy", "round-robin", "--load", "1", "--load-basis",
                        "sustained", "--capacity-rps", repr(RATE), "--arrival", "poisson",
                        "--num-requests", str(N), "--lengths", "exact", "--seed", SEED,
                        "--network-delay", "0.1", "--json", out] + sim_flags(adm),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=120)
        with open(out) as f:
            return json.load(f)["runs"][0]

    def run_live(self, tmp, adm, rate):
        out = os.path.join(tmp, "bench.csv")
        with etatest.start_sim("--gpu", "h100", model="m") as sim:
            router = RouterProcess(["--port", "0", "--admin-port", "0", "--policy",
                                    "round-robin", "--replica", sim.url] + route_flags(adm))
            try:
                client = router.client()
                ready = etatest.wait_until(
                    lambda: client.get_json("/v1/models")[1].get("data"), timeout=10)
                self.assertTrue(ready, "the router never listed the replica's model")
                subprocess.run([etatest.eta_bin(), "bench", "--target", router.url, "--workload",
                                WORKLOAD, "--rate", repr(rate), "--arrival", "poisson",
                                "--num-requests", str(N), "--lengths", "exact", "--seed", SEED,
                                "--csv", out, "--progress", "off"],
                               check=True, stdout=subprocess.DEVNULL, timeout=240)
                m = router.client().metrics()
                live_shed = {r: int(m.get("eta_admission_rejections_total", reason=r))
                             for r in REASONS}
            finally:
                router.stop()
        with open(out) as f:
            rows = list(csv.DictReader(f))
        return live_shed, {int(r["index"]) for r in rows if r["status"] == "429"}

    def test_same_arrivals_same_refusals(self):
        for name, adm, expected in CASES:
            with self.subTest(case=name), tempfile.TemporaryDirectory() as tmp:
                cs = self.run_cluster_sim(tmp, adm)
                self.assertEqual(cs["requests"] + cs["errors"], N)  # served + refused
                sim_shed = {r: cs["shed"].get(r, 0) for r in REASONS}
                for reason in REASONS:
                    self.assertEqual(sim_shed[reason], expected.get(reason, 0), (reason, cs))
                live_shed, live_429 = self.run_live(tmp, adm, cs["rate_rps"])
                self.assertEqual(live_shed, sim_shed)
                # Who: with no completion during the burst, both serve the first
                # max_in_flight requests in arrival order and refuse the rest (the simulator's
                # order of admission is asserted request by request in cluster_sim_test.cpp,
                # ClusterSimAdmission.*).
                self.assertEqual(len(live_429), sum(expected.values()))
                sim_429 = set(range(adm["max_in_flight"], N))
                self.assertLessEqual(len(live_429 ^ sim_429), 2, (sorted(live_429),
                                                                  sorted(sim_429)))


if __name__ == "__main__":
    unittest.main()
