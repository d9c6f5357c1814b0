#!/usr/bin/env python3
"""Why no online guess reaches the hindsight best-constant floor (docs/benchmarks.md §4,
"Output-length prediction"): on 1,052 iid lognormal lengths (median 224 x e^(-s^2/2),
s = 0.83, seed 3) it compares the hindsight floor (the best constant chosen on the same lengths)
with two online guessers that know only the lengths before each one: the exact best constant of
those, and the best of their quarter-octave bins' means (the old predictor's search). Standard
library only; about a second.

Usage: python3 bench/output_floor_check.py
"""
import math
import random
import statistics as st


def med_err(c, ys):
    return st.median([abs(c - y) / y for y in ys])


def best_exact(ys):
    cs = sorted(set(ys))
    return min(cs[::max(1, len(cs) // 100)], key=lambda c: med_err(c, ys))


def best_bins(ys):
    bins = {}
    for v in ys:
        bins.setdefault(int(math.floor(4 * math.log2(max(v, 1)))), []).append(v)
    cent = [sum(v) / len(v) for v in bins.values()]
    w = [len(v) for v in bins.values()]
    best, best_e = None, float("inf")
    for c in cent:
        acc = 0
        for e, wi in sorted((abs(c - x) / x, wi) for x, wi in zip(cent, w)):
            acc += wi
            if acc >= 0.5 * sum(w):
                break
        if e < best_e:
            best, best_e = c, e
    return best


random.seed(3)
s = 0.833
y = [max(1, round(math.exp(random.gauss(math.log(224) - s * s / 2, s)))) for _ in range(1052)]
cs = sorted(set(y))
print("hindsight floor %.3f" % min(med_err(c, y) for c in cs[::max(1, len(cs) // 200)]))
for name, f in (("online, exact best constant", best_exact),
                ("online, best bin mean", best_bins)):
    errors, guess = [], 256
    for i in range(len(y)):
        if i >= 8 and (i < 64 or i % 16 == 0):
            guess = f(y[:i])
        errors.append(abs(guess - y[i]) / y[i])
    print("%s %.3f" % (name, st.median(errors)))
