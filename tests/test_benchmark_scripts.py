"""The benchmark scripts run, and the loop-throughput script's paired statistics are right.

Only that they work: the figures themselves are read from the scripts' output (benchmarks/README.md),
never asserted here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_paired_figures_come_from_each_round_not_from_the_medians():
    loop_throughput = load_script("loop_throughput")
    # Round 2 ran on a machine twice as slow for all three loops: the pairs cancel that out.
    rates = {("dataloader", 32): [100.0, 50.0, 100.0], ("engine", 32): [250.0, 125.0, 200.0],
             ("floor", 32): [300.0, 150.0, 250.0]}
    speedup, overhead = loop_throughput.paired(rates, 32)  # quartiles of (2.5, 2.5, 2.0) and so on
    assert speedup == pytest.approx((2.25, 2.5, 2.5))
    assert overhead == pytest.approx((1 / 6, 1 / 6, (1 / 6 + 0.2) / 2))
    assert loop_throughput.quartiles([3.0]) == (3.0, 3.0, 3.0)


def test_loop_throughput_script_prints_every_table(capsys):
    loop_throughput = load_script("loop_throughput")
    assert loop_throughput.main(["--device", "cpu", "--rounds", "2", "--min-seconds", "0.01",
                                 "--batch-sizes", "8", "64"]) == 0
    out = capsys.readouterr().out
    assert "median of 2 interleaved rounds" in out and "best (least disturbed)" in out
    paired_rows = out.split("paired:")[1].splitlines()[2:4]
    assert [row.split()[0] for row in paired_rows] == ["8", "64"]


def test_loop_throughput_script_takes_the_optimizer(capsys):
    loop_throughput = load_script("loop_throughput")
    assert loop_throughput.main(["--device", "cpu", "--rounds", "1", "--min-seconds", "0.01",
                                 "--batch-sizes", "32", "--optimizer", "adam"]) == 0
    assert "optimizer: adam, learning rate 0.001" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        loop_throughput.main(["--optimizer", "lbfgs"])


def test_loop_throughput_script_rejects_bad_options():
    loop_throughput = load_script("loop_throughput")
    with pytest.raises(SystemExit):
        loop_throughput.main(["--rounds", "0"])
