"""Bad input for every public function of batchlab.arithmetic and batchlab.validation.

Each case asserts the error type (TypeError for a wrong type, ValueError for a value out of range) and
that the message names the parameter, the value given and the allowed range.
"""

from __future__ import annotations

import html
import math
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from batchlab import arithmetic
from batchlab.arithmetic import TrainingPlan
from batchlab.validation import (
    require_bool,
    require_choice,
    require_float,
    require_int,
    require_positive_float,
)

# Each public callable of arithmetic: valid keyword arguments, and the kind of each argument.
# ("int", minimum) | ("bool",) | ("lr",) (a finite float > 0) | ("rule",)
SPECS = {
    "iterations_per_epoch": (
        dict(n_samples=100, batch_size=10, drop_last=False),
        dict(n_samples=("int", 0), batch_size=("int", 1), drop_last=("bool",)),
    ),
    "batch_bounds": (
        dict(n_samples=100, batch_size=10, drop_last=False),
        dict(n_samples=("int", 0), batch_size=("int", 1), drop_last=("bool",)),
    ),
    "batch_sizes": (
        dict(n_samples=100, batch_size=10, drop_last=False),
        dict(n_samples=("int", 0), batch_size=("int", 1), drop_last=("bool",)),
    ),
    "last_batch_size": (
        dict(n_samples=100, batch_size=10, drop_last=False),
        dict(n_samples=("int", 0), batch_size=("int", 1), drop_last=("bool",)),
    ),
    "samples_dropped": (
        dict(n_samples=100, batch_size=10, drop_last=True),
        dict(n_samples=("int", 0), batch_size=("int", 1), drop_last=("bool",)),
    ),
    "steps_per_epoch": (
        dict(n_samples=100, batch_size=10, drop_last=False, accumulation_steps=2),
        dict(n_samples=("int", 0), batch_size=("int", 1), drop_last=("bool",),
             accumulation_steps=("int", 1)),
    ),
    "total_steps": (
        dict(n_samples=100, batch_size=10, epochs=3, drop_last=False, accumulation_steps=2),
        dict(n_samples=("int", 0), batch_size=("int", 1), epochs=("int", 0), drop_last=("bool",),
             accumulation_steps=("int", 1)),
    ),
    "samples_seen": (
        dict(n_samples=100, batch_size=10, epochs=3, drop_last=False),
        dict(n_samples=("int", 0), batch_size=("int", 1), epochs=("int", 0), drop_last=("bool",)),
    ),
    "epochs_for_steps": (
        dict(target_steps=50, n_samples=100, batch_size=10, drop_last=False),
        dict(target_steps=("int", 0), n_samples=("int", 0), batch_size=("int", 1),
             drop_last=("bool",)),
    ),
    "global_batch_size": (
        dict(batch_size=32, world_size=4, accumulation_steps=2),
        dict(batch_size=("int", 1), world_size=("int", 1), accumulation_steps=("int", 1)),
    ),
    "per_rank_samples": (
        dict(n_samples=100, world_size=4, drop_last=False),
        dict(n_samples=("int", 0), world_size=("int", 1), drop_last=("bool",)),
    ),
    "per_rank_iterations": (
        dict(n_samples=100, batch_size=10, world_size=4, sampler_drop_last=False,
             loader_drop_last=False),
        dict(n_samples=("int", 0), batch_size=("int", 1), world_size=("int", 1),
             sampler_drop_last=("bool",), loader_drop_last=("bool",)),
    ),
    "scaled_learning_rate": (
        dict(base_lr=0.1, base_batch_size=32, batch_size=64, rule="sqrt"),
        dict(base_lr=("lr",), base_batch_size=("int", 1), batch_size=("int", 1), rule=("rule",)),
    ),
    "warmup_learning_rate": (
        dict(step=3, peak_lr=0.1, warmup_steps=10),
        dict(step=("int", 0), peak_lr=("lr",), warmup_steps=("int", 0)),
    ),
    "TrainingPlan": (
        dict(n_samples=100, batch_size=10, epochs=3, drop_last=False, accumulation_steps=2,
             world_size=2),
        dict(n_samples=("int", 0), batch_size=("int", 1), epochs=("int", 0), drop_last=("bool",),
             accumulation_steps=("int", 1), world_size=("int", 1)),
    ),
}

RULES = "'linear', 'sqrt', 'none'"


def bad_values(kind: tuple) -> list[tuple[object, type[Exception], str]]:
    """(bad value, expected error, what the message must say after "<name> must be ")."""
    if kind[0] == "int":
        wanted = re.escape(f"an integer >= {kind[1]}, got ")
        return [
            (kind[1] - 1, ValueError, wanted + str(kind[1] - 1)),
            (-5, ValueError, wanted + "-5"),
            (2.0, TypeError, wanted + r"float 2\.0"),
            (2.5, TypeError, wanted + r"float 2\.5"),
            ("3", TypeError, wanted + "str '3'"),
            (None, TypeError, wanted + "NoneType None"),
            (True, TypeError, wanted + "bool True"),  # a bool is not a count
        ]
    if kind[0] == "bool":
        wanted = re.escape("True or False, got ")
        return [
            (1, TypeError, wanted + "int 1"),
            (0, TypeError, wanted + "int 0"),
            ("yes", TypeError, wanted + "str 'yes'"),
            (None, TypeError, wanted + "NoneType None"),
        ]
    if kind[0] == "lr":
        wanted = re.escape("a finite number > 0, got ")
        return [
            (0, ValueError, wanted + r"0\.0"),
            (-0.1, ValueError, wanted + r"-0\.1"),
            (math.nan, ValueError, wanted + "nan"),
            (math.inf, ValueError, wanted + "inf"),
            (-math.inf, ValueError, wanted + "-inf"),
            ("0.1", TypeError, wanted + "str '0.1'"),
            (None, TypeError, wanted + "NoneType None"),
            (True, TypeError, wanted + "bool True"),
        ]
    assert kind[0] == "rule"
    wanted = re.escape(f"one of {RULES}, got ")
    return [
        ("cubic", ValueError, wanted + "'cubic'"),
        ("Linear", ValueError, wanted + "'Linear'"),  # case matters
        (None, ValueError, wanted + "None"),
        (2, ValueError, wanted + "2"),
    ]


def bad_input_cases():
    for func_name, (valid, kinds) in SPECS.items():
        for param, kind in kinds.items():
            for value, error, wanted in bad_values(kind):
                case_id = f"{func_name}-{param}={value!r}"
                yield pytest.param(func_name, valid, param, value, error, wanted, id=case_id)


def test_specs_cover_every_public_name():
    public = {name for name in arithmetic.__all__ if name != "SCALING_RULES"}
    assert public == set(SPECS)
    for func_name, (valid, kinds) in SPECS.items():
        assert set(valid) == set(kinds), func_name  # every parameter is exercised
        getattr(arithmetic, func_name)(**valid)  # and the valid call works


@pytest.mark.parametrize(("func_name", "valid", "param", "value", "error", "wanted"),
                         list(bad_input_cases()))
def test_bad_input_names_parameter_value_and_allowed_range(func_name, valid, param, value, error,
                                                           wanted):
    func = getattr(arithmetic, func_name)
    with pytest.raises(error, match=rf"^{re.escape(param)} must be {wanted}$"):
        func(**{**valid, param: value})


def test_named_examples_read_well():
    with pytest.raises(ValueError, match=r"^n_samples must be an integer >= 0, got -1$"):
        arithmetic.iterations_per_epoch(-1, 32)
    with pytest.raises(ValueError, match=r"^batch_size must be an integer >= 1, got 0$"):
        arithmetic.iterations_per_epoch(1000, 0)
    with pytest.raises(ValueError, match=r"^epochs must be an integer >= 0, got -1$"):
        arithmetic.total_steps(1000, 32, -1)
    with pytest.raises(ValueError, match=r"^world_size must be an integer >= 1, got 0$"):
        arithmetic.per_rank_samples(1000, 0)
    with pytest.raises(ValueError, match=r"^accumulation_steps must be an integer >= 1, got 0$"):
        arithmetic.global_batch_size(32, 1, 0)
    with pytest.raises(ValueError, match=r"^base_lr must be a finite number > 0, got nan$"):
        arithmetic.scaled_learning_rate(math.nan, 32, 64)
    with pytest.raises(ValueError, match=r"^rule must be one of 'linear', 'sqrt', 'none', got 'x'$"):
        arithmetic.scaled_learning_rate(0.1, 32, 64, rule="x")
    with pytest.raises(TypeError, match=r"^batch_size must be an integer >= 1, got float 32\.0$"):
        arithmetic.iterations_per_epoch(1000, 32.0)


def test_unreachable_step_target_says_why_and_what_is_allowed():
    message = (r"^target_steps=5 can never be reached: with n_samples=10, batch_size=32 and "
               r"drop_last=True an epoch has no batch \(allowed: batch_size <= n_samples when "
               r"drop_last=True\)$")
    with pytest.raises(ValueError, match=message):
        arithmetic.epochs_for_steps(5, 10, 32, drop_last=True)
    assert arithmetic.epochs_for_steps(0, 10, 32, drop_last=True) == 0  # nothing to reach


def test_numpy_integers_are_accepted_as_counts():
    assert arithmetic.iterations_per_epoch(np.int64(1000), np.int32(32)) == 32
    assert type(arithmetic.iterations_per_epoch(np.int64(1000), np.int32(32))) is int
    assert arithmetic.scaled_learning_rate(np.float32(0.5), np.int64(32), 64) == 1.0


# ---------------------------------------------------------------------------------------------------
# batchlab.validation itself
# ---------------------------------------------------------------------------------------------------


def test_require_int():
    assert require_int("n", 5, minimum=0, maximum=5) == 5
    assert require_int("n", 7) == 7
    assert type(require_int("n", np.int16(3))) is int
    with pytest.raises(ValueError, match=r"^n must be an integer >= 0 and <= 5, got 6$"):
        require_int("n", 6, minimum=0, maximum=5)
    with pytest.raises(ValueError, match=r"^n must be an integer <= 5, got 6$"):
        require_int("n", 6, maximum=5)
    with pytest.raises(TypeError, match=r"^n must be an integer, got float 1\.0$"):
        require_int("n", 1.0)
    with pytest.raises(TypeError, match=r"^n must be an integer >= 1, got bool False$"):
        require_int("n", False, minimum=1)
    with pytest.raises(TypeError, match=r"^n must be an integer >= 1, got bool"):
        require_int("n", np.True_, minimum=1)
    with pytest.raises(TypeError, match=r"^n must be an integer >= 1, got list \[1\]$"):
        require_int("n", [1], minimum=1)


def test_require_float():
    assert require_float("x", 3) == 3.0 and type(require_float("x", 3)) is float
    assert require_float("x", np.float64(0.5), minimum=0, maximum=1) == 0.5
    assert require_float("x", 0, minimum=0) == 0.0  # inclusive unless strict_min
    with pytest.raises(ValueError, match=r"^x must be a finite number > 0, got 0\.0$"):
        require_float("x", 0, minimum=0, strict_min=True)
    with pytest.raises(ValueError, match=r"^x must be a finite number >= 0 and <= 1, got 1\.5$"):
        require_float("x", 1.5, minimum=0, maximum=1)
    with pytest.raises(ValueError, match=r"^x must be a finite number, got inf$"):
        require_float("x", math.inf)
    with pytest.raises(ValueError, match=r"^x must be a finite number, got nan$"):
        require_float("x", np.nan)
    with pytest.raises(TypeError, match=r"^x must be a finite number, got str '1'$"):
        require_float("x", "1")
    with pytest.raises(TypeError, match=r"^x must be a finite number, got complex 1j$"):
        require_float("x", 1j)
    with pytest.raises(TypeError, match=r"^x must be a finite number, got bool True$"):
        require_float("x", True)


def test_require_float_of_a_huge_int_is_a_value_error():
    with pytest.raises(ValueError, match=r"^x must be a finite number, got "):
        require_float("x", 10**400)


def test_require_positive_float():
    assert require_positive_float("lr", 1e-9) == 1e-9
    for bad in (0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match=r"^lr must be a finite number > 0, got "):
            require_positive_float("lr", bad)
    with pytest.raises(TypeError, match=r"^lr must be a finite number > 0, got NoneType None$"):
        require_positive_float("lr", None)


def test_require_bool():
    assert require_bool("flag", True) is True
    assert require_bool("flag", False) is False
    for bad, shown in ((1, "int 1"), (None, "NoneType None"), ("True", "str 'True'")):
        with pytest.raises(TypeError, match=rf"^flag must be True or False, got {re.escape(shown)}$"):
            require_bool("flag", bad)


def test_require_bool_accepts_numpy_bools_as_documented():
    assert require_bool("flag", np.True_) is True


def test_require_choice():
    assert require_choice("rule", "sqrt", ("linear", "sqrt")) == "sqrt"
    assert require_choice("k", 2, iter([1, 2])) == 2  # any iterable of choices
    with pytest.raises(ValueError, match=r"^rule must be one of 'linear', 'sqrt', got 'cubic'$"):
        require_choice("rule", "cubic", ("linear", "sqrt"))
    with pytest.raises(ValueError, match=r"^k must be one of 1, 2, got \[1\]$"):
        require_choice("k", [1], (1, 2))


# ---------------------------------------------------------------------------------------------------
# TrainingPlan's text and HTML views
# ---------------------------------------------------------------------------------------------------


class _Cells(HTMLParser):
    """Collect the text of every <td>, row by row."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_cell = False

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag == "td":
            self._in_cell = True
            self.rows[-1].append("")

    def handle_endtag(self, tag):
        if tag == "td":
            self._in_cell = False

    def handle_data(self, data):
        if self._in_cell:
            self.rows[-1][-1] += data


PLAN = TrainingPlan(n_samples=10_000, batch_size=32, epochs=50, drop_last=True,
                    accumulation_steps=2, world_size=3)


def test_plan_rows_are_the_inputs_then_every_derived_number():
    rows = dict(PLAN.rows())
    assert rows["samples N"] == 10_000 and rows["drop_last"] is True
    assert rows["samples per worker"] == 3_334 and rows["padding samples"] == 2
    assert rows["iterations per epoch I"] == 104 and rows["samples dropped per epoch"] == 6
    assert rows["updates per epoch"] == 52 and rows["total updates"] == 2_600
    assert rows["total iterations I×E"] == 5_200
    assert rows["global batch size"] == 192
    assert rows["samples seen"] == 104 * 32 * 50 * 3


def test_plan_str_has_one_aligned_line_per_row_with_thousands_separators():
    lines = str(PLAN).splitlines()
    assert len(lines) == len(PLAN.rows())
    assert lines[0].split() == ["samples", "N", "10,000"]
    assert "drop_last" in lines[3] and lines[3].endswith("True")
    assert lines[-1].endswith("499,200")
    starts = {len(line) - len(line.split("  ")[-1].lstrip()) for line in lines}
    assert len(starts) == 1  # the values start in one column


def test_plan_html_is_a_table_of_the_rows():
    parser = _Cells()
    parser.feed(PLAN.to_html())
    expected = [[label, str(value) if isinstance(value, bool) else f"{value:,}"]
                for label, value in PLAN.rows()]
    assert parser.rows == expected
    assert PLAN._repr_html_() == PLAN.to_html()
    assert html.escape("I×E") in PLAN.to_html()
