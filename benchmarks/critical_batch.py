"""The full critical-batch-size measurement behind notebook 07, with intervals over seeds.

Notebook 07 runs a small version of this live (few seeds, to stay within its time budget) and prints the
numbers of this script beside its own: this script writes ``src/batchlab/results/critical_batch.json``,
shipped with the package, and ``batchlab.critical.full_benchmark()`` reads it.

Design (issue 21, "Results that hold on any machine"):

* every batch size ``B`` = 1, 2, 4, ..., 1,024 and the full batch ``N = 1,347``, ``drop_last=True`` for every
  ``B`` (no short last batch: every update sees ``B`` samples);
* learning rate tuned per ``B`` by :func:`batchlab.critical.tune_to_target` on the *tuning* seeds, on a grid
  of factors of sqrt 2 (and, for comparison, the notebook's former grid of factors of 2);
* ``S(B)`` and ``E(B)`` then measured at the chosen rates on *held-out* seeds
  (:func:`batchlab.critical.rerun_at_best`), recorded long enough to read both stopping rules: the first
  update under the target, and a running mean over the last 10 % of the updates under it;
* ``B_crit`` with a bootstrap interval over the held-out seeds (:func:`batchlab.critical.b_crit_interval`),
  ``B_simple`` near ``B_crit`` with a bootstrap interval over seeds, and paired verdicts
  (:func:`batchlab.stats.compare_paired`): short batch kept or dropped at ``B = 64``, ``B_crit`` at an easy
  against the hardest target, and which large batch sizes tie for the fewest updates.

Counts are exact and seeded; only seconds depend on the machine (none are stored). About 10 minutes on one
core of a 2-core Xeon (longer on a loaded machine). Usage: ``python benchmarks/critical_batch.py
[--quick] [--out src/batchlab/results/critical_batch.json]`` or ``make critical``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from batchlab.critical import (
    b_crit_interval,
    b_crit_per_seed,
    rate_grid,
    rerun_at_best,
    run_to_target,
    summarize,
    tune_to_target,
)
from batchlab.data import load_digits_split, to_tensors
from batchlab.measure.gradients import torch_noise_scale
from batchlab.stats import compare_paired, seed_interval

TARGET = 0.30  # validation loss, nats
SMOOTHING = 0.1  # the smoothed stopping rule: running mean over the last 10 % of the updates
FINE_GRID = rate_grid(0.025, 2.3, per_doubling=2)  # factors of sqrt 2: 0.025 ... 2.26
COARSE_GRID = rate_grid(0.05, 1.6, per_doubling=1)  # factors of 2: notebook 07's former grid
TUNE_SEEDS = (0, 1, 2, 3, 4)
EVAL_SEEDS = tuple(range(5, 15))  # 10 held-out seeds
EASIER_TARGETS = (1.0, 0.7, 0.5, 0.4)
OUT = Path(__file__).parents[1] / "src" / "batchlab" / "results" / "critical_batch.json"  # full_benchmark()


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what platform knows."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def rule_name(smoothing: float) -> str:
    return "first crossing" if smoothing == 0 else f"running mean over {smoothing:.0%} of S"


def interval(values, statistic=np.mean) -> list[float]:
    """[estimate, low, high] of a per-seed quantity (seeded bootstrap), for the JSON."""
    return [round(v, 4) for v in seed_interval(np.asarray(values, dtype=float), statistic)]


def measure(digits, sizes, grid, tune_smoothing, tune_seeds, eval_seeds, label) -> dict:
    """Tune on ``tune_seeds`` by the rule ``tune_smoothing``; measure S(B) on ``eval_seeds`` (both rules)."""
    started = time.perf_counter()
    sweep = tune_to_target(digits, sizes, grid, TARGET, seeds=tune_seeds, start_lr=0.1, drop_last=True,
                           smoothing=tune_smoothing)
    held = rerun_at_best(digits, sweep, eval_seeds, smoothing=SMOOTHING)
    tuned = summarize(sweep)
    result = {"label": label, "grid": list(grid), "tune_rule": rule_name(tune_smoothing),
              "tune_seeds": list(tune_seeds), "eval_seeds": list(eval_seeds),
              "batch_sizes": tuned.batch_sizes.tolist(), "best_lr": tuned.best_lr.tolist(),
              "best_lr_at_grid_edge": [int(b) for b, lr in zip(tuned.batch_sizes, tuned.best_lr, strict=True)
                                       if lr in (grid[0], grid[-1])],
              "b_crit_on_tuning_seeds": round(fit_b_crit(tuned), 3), "rules": {}}
    for smoothing in sorted({tune_smoothing, 0.0, SMOOTHING}):
        s = summarize(held, smoothing=smoothing)
        estimate, low, high = b_crit_interval(s)
        result["rules"][rule_name(smoothing)] = {
            "smoothing": smoothing, "steps_per_seed": s.steps_per_seed.astype(int).tolist(),
            "mean_steps": np.round(s.steps, 2).tolist(), "missing": list(s.missing),
            "b_crit": [round(estimate, 3), round(low, 3), round(high, 3)]}
    result["seconds"] = round(time.perf_counter() - started, 1)
    rates = dict(zip(result["batch_sizes"], result["best_lr"], strict=True))
    print(f"{label}: {result['seconds']:.0f} s; best lr {rates}")
    for name, r in result["rules"].items():
        print(f"    {name:<32} B_crit {r['b_crit'][0]:6.2f}  ({r['b_crit'][1]:.2f} to {r['b_crit'][2]:.2f})"
              f"   S(B) {r['mean_steps']}")
    print(f"    B_crit on the tuning seeds (their own rule): {result['b_crit_on_tuning_seeds']:.2f};"
          f" best rate at the grid's edge for B = {result['best_lr_at_grid_edge']}")
    result["_held"] = held  # kept for the extra measurements, dropped before writing
    return result


def fit_b_crit(summary) -> float:
    from batchlab.critical import fit_tradeoff

    return fit_tradeoff(summary.steps, summary.samples).b_crit


def extras(digits, main: dict) -> dict:
    """B_simple near B_crit, the short batch at B = 64, B_crit against the target, the flat-hardware tie."""
    held = main["_held"]
    lr = dict(zip(main["batch_sizes"], main["best_lr"], strict=True))
    first = summarize(held, smoothing=0.0)
    b = first.batch_sizes
    b_crit = main["rules"]["first crossing"]["b_crit"][0]
    near = int(b[np.argmin(np.abs(np.log(b / b_crit)))])
    x_train, y_train, _, _ = to_tensors(digits, "cpu")
    from batchlab.models import make_mlp

    at_target, at_start = [], []
    for seed in EVAL_SEEDS:
        _, model = run_to_target(digits, near, lr[near], TARGET, seed=seed, drop_last=True)
        at_target.append(torch_noise_scale(model, x_train, y_train).b_simple)
        at_start.append(torch_noise_scale(make_mlp(seed=seed), x_train, y_train).b_simple)
    kept = [run_to_target(digits, 64, lr[64], TARGET, seed=s, drop_last=False)[0].steps() for s in EVAL_SEEDS]
    dropped = first.steps_per_seed[list(b).index(64)].astype(int).tolist()
    short = compare_paired(kept, dropped, names=("S(64) with the short batch", "S(64) without"))
    targets = {}
    per_seed = {}
    for t in (*EASIER_TARGETS, TARGET):
        s = summarize(held, t, smoothing=0.0)
        per_seed[t] = b_crit_per_seed(s)
        targets[f"{t:.2f}"] = {"b_crit": [round(v, 3) for v in b_crit_interval(s)],
                               "b_crit_per_seed": np.round(per_seed[t], 3).tolist()}
    harder = compare_paired(per_seed[TARGET], per_seed[EASIER_TARGETS[0]],
                            names=(f"B_crit at {TARGET:.2f}", f"B_crit at {EASIER_TARGETS[0]:.2f}"))
    fewest = int(b[np.argmin(first.steps)])
    ties = []
    for i, x in enumerate(b.tolist()):
        c = compare_paired(first.steps_per_seed[i], first.steps_per_seed[list(b).index(fewest)])
        if x == fewest or not c.clear:
            ties.append(x)
    out = {"near_b_crit": near, "b_simple_at_target": interval(at_target),
           "b_simple_at_start": interval(at_start), "b_simple_per_seed": np.round(at_target, 2).tolist(),
           "short_batch_64": {"kept": kept, "dropped": dropped, "verdict": short.verdict("more", "fewer")},
           "targets": targets, "harder_target_verdict": harder.verdict(),
           "fewest_updates_b": fewest, "not_clearly_more_updates_than_fewest": ties}
    print(f"B_simple near B_crit (B = {near}), {len(EVAL_SEEDS)} seeds: {out['b_simple_at_target']}; "
          f"at the start {out['b_simple_at_start']}")
    print(f"short batch at B = 64: {out['short_batch_64']['verdict']}")
    print("B_crit per target: " + ", ".join(f"{t}: {v['b_crit']}" for t, v in targets.items()))
    print(f"harder target: {harder.verdict()}")
    print(f"fewest updates: B = {fewest}; not clearly more updates: {ties}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run, no file")
    parser.add_argument("--out", type=Path, default=OUT, help="where to write the JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    digits = load_digits_split()
    sizes = [2**k for k in range(11)] + [digits.n_train]
    tune_seeds, eval_seeds = TUNE_SEEDS, EVAL_SEEDS
    if args.quick:
        sizes, tune_seeds, eval_seeds = [4, 64, digits.n_train], (0, 1), (2, 3)
    run_to_target(digits, 1, 0.1, TARGET, max_steps=20)  # warm-up: the first run pays PyTorch's start-up
    record = {"cpu": cpu_model(), "torch": torch.__version__,
              "target": TARGET, "smoothing": SMOOTHING, "drop_last": True}
    configs = [("sqrt2 grid, tuned by first crossing", FINE_GRID, 0.0),
               ("x2 grid, tuned by first crossing", COARSE_GRID, 0.0),
               ("sqrt2 grid, tuned by the smoothed rule", FINE_GRID, SMOOTHING)]
    record["sweeps"] = []
    for label, grid, smoothing in configs[:1] if args.quick else configs:
        record["sweeps"].append(measure(digits, sizes, grid, smoothing, tune_seeds, eval_seeds, label))
        if args.quick:
            break
    if not args.quick:
        record["extras"] = extras(digits, record["sweeps"][0])
        for sweep in record["sweeps"]:
            sweep.pop("_held")
        args.out.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
