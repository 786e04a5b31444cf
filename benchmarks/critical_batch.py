"""A fuller critical-batch-size sweep than notebook 07 can afford, to check how much its numbers move.

Notebook 07 tunes the learning rate on a grid of factors of 2 with two seeds, to one target (validation
loss <= 0.30), in well under a minute. This script repeats the measurement with a finer grid (factors
of sqrt 2), three seeds and a second, harder target, and prints for each setting: S_min, E_min, B_crit
(the fit of :func:`batchlab.critical.fit_tradeoff`), the learning rate chosen per batch size, and
B_simple (:func:`batchlab.measure.gradients.torch_noise_scale`) of a run stopped at the target at the
batch size nearest B_crit. Counts are exact and seeded; only the seconds depend on the machine.

Usage: ``python benchmarks/critical_batch.py [--quick] [--targets 0.3 0.2]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from batchlab.critical import fit_tradeoff, run_to_target, summarize, tune_to_target
from batchlab.data import load_digits_split, to_tensors
from batchlab.measure.gradients import torch_noise_scale

NOTEBOOK_GRID = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
FINE_GRID = tuple(float(0.05 * 2 ** (k / 2)) for k in range(12))  # 0.05 ... 2.26, factors of sqrt 2


def measure(digits, sizes, grid, target, seeds, start_lr) -> None:
    started = time.perf_counter()
    sweep = tune_to_target(digits, sizes, grid, target, seeds=seeds, start_lr=start_lr)
    seconds = time.perf_counter() - started
    summary = summarize(sweep)
    fit = fit_tradeoff(summary.steps, summary.samples)
    b = summary.batch_sizes
    near = int(b[np.argmin(np.abs(np.log(b / fit.b_crit)))])
    lr = dict(zip(b.tolist(), summary.best_lr.tolist(), strict=True))
    _, model = run_to_target(digits, near, lr[near], target, seed=seeds[0])
    x_train, y_train, _, _ = to_tensors(digits, "cpu")
    b_simple = torch_noise_scale(model, x_train, y_train).b_simple
    grid_name = "x2" if grid == NOTEBOOK_GRID else "x1.41"
    print(f"target {target:.2f}  grid {grid_name:<5} seeds {len(seeds)}: S_min {fit.s_min:6.1f}  "
          f"E_min {fit.e_min:7,.0f}  B_crit {fit.b_crit:5.1f}  B_simple(B={near}) {b_simple:6.1f}  "
          f"runs {len(sweep.runs):3d}  updates {sum(len(r.losses) for r in sweep.runs):6,}  {seconds:6.1f} s")
    print("    S(B): " + "  ".join(f"{x}:{s:.1f}" for x, s in zip(b, summary.steps, strict=True)))
    print("    lr(B): " + "  ".join(f"{x}:{lr[x]:.3g}" for x in b.tolist()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer batch sizes, one target (a smoke run)")
    parser.add_argument("--targets", type=float, nargs="+", default=[0.3, 0.2],
                        help="validation-loss targets (nats)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    digits = load_digits_split()
    sizes = [2**k for k in range(11)] + [digits.n_train]
    if args.quick:
        sizes, args.targets = [4, 64, digits.n_train], [0.6]
    for target in args.targets:
        measure(digits, sizes, NOTEBOOK_GRID, target, (0, 1), 0.1)
        if not args.quick:
            measure(digits, sizes, FINE_GRID, target, (0, 1, 2), 0.1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
