"""Every control of every widget app has an accessible name, checked without a browser.

A screen reader announces a control by its accessible name. ipywidgets gives a control one through public
traits: a slider's, text box's or toggle group's ``description`` becomes its visible label (the label
element names the control), a button's ``description`` is its text, and a ``tooltip`` becomes its
``title`` (the fallback name of a control without text, such as an icon-only button). This test builds
each app of the collection as a notebook does, walks its widget tree (``children``, recursively) and
requires a non-empty description or tooltip on every button and every control that holds a value.
The static copy's figure has alt text (the app's name and what it shows): checked in the last test.
"""

from __future__ import annotations

import ipywidgets as widgets
import pytest
from test_critical import synthetic_sweep

from batchlab.apps.calculator import FixedStepsApp, FormulaCalculatorApp, LearningRateApp
from batchlab.apps.critical import CriticalBatchApp
from batchlab.apps.landscape import LandscapeApp
from batchlab.apps.simulator import TrainingSimulatorApp
from batchlab.apps.stepper import BatchStepperApp
from batchlab.apps.sweep import SweepExplorerApp
from batchlab.data import load_digits_split
from batchlab.experiments import SweepConfig, run_sweep

# Widgets that show text and take no input: their content is what a screen reader reads.
DISPLAYS = (widgets.HTML, widgets.HTMLMath, widgets.Label)


def sweep_app() -> SweepExplorerApp:
    data = load_digits_split().take(48)
    config = SweepConfig(batch_sizes=(4, 16, 48), epochs=1, lr=0.1, base_batch_size=16, hidden=(8,),
                         seeds=(0,))
    return SweepExplorerApp(run_sweep(data, config), data)


# Each app of the collection, built as its notebook builds it (small data where it trains).
APPS = {
    "BatchStepperApp": lambda: BatchStepperApp(),
    "FormulaCalculatorApp": lambda: FormulaCalculatorApp(n_samples=1_000, batch_size=32, epochs=10),
    "FixedStepsApp": lambda: FixedStepsApp(),
    "LearningRateApp": lambda: LearningRateApp(),
    "LandscapeApp": lambda: LandscapeApp(),
    "SweepExplorerApp": sweep_app,
    "TrainingSimulatorApp": lambda: TrainingSimulatorApp(data=load_digits_split(), device="cpu"),
    "CriticalBatchApp": lambda: CriticalBatchApp(synthetic_sweep()),
}


def walk(widget: widgets.Widget):
    """The widget and every widget below it (``children``, recursively), depth first."""
    yield widget
    for child in getattr(widget, "children", ()):
        yield from walk(child)


def is_control(widget: widgets.Widget) -> bool:
    """A button, or a widget that holds a value a learner can change or read (sliders, toggles, text
    boxes, check boxes, progress bars, the play control), as opposed to a display of text."""
    return isinstance(widget, widgets.Button) or (
        isinstance(widget, widgets.ValueWidget) and not isinstance(widget, DISPLAYS))


def unnamed(root: widgets.Widget) -> list[str]:
    """The controls under ``root`` without a description or a tooltip, as readable names."""
    return [f"{type(w).__name__}(value={getattr(w, 'value', None)!r})" for w in walk(root)
            if is_control(w) and not (getattr(w, "description", "") or "").strip()
            and not (getattr(w, "tooltip", None) or "").strip()]


@pytest.mark.parametrize("name", list(APPS))
def test_every_control_of_the_app_has_an_accessible_name(name) -> None:
    app = APPS[name]()
    try:
        controls = [w for w in walk(app.widget) if is_control(w)]
        assert controls, f"{name}: no controls found (did the widget tree change shape?)"
        assert unnamed(app.widget) == [], f"{name}: controls without a description or tooltip"
    finally:
        app.close()


def test_the_walk_finds_an_unnamed_control() -> None:
    box = widgets.VBox([widgets.HBox([widgets.IntSlider(description="B"), widgets.Button(icon="stop")]),
                        widgets.HTML("text")])
    assert unnamed(box) == ["Button(value=None)"]
    box.children[0].children[1].tooltip = "Stop training"
    assert unnamed(box) == []


def test_the_static_copy_of_a_figure_has_alt_text() -> None:
    app = FormulaCalculatorApp()
    try:
        html = app._repr_mimebundle_()["text/html"]
    finally:
        app.close()
    assert "<img " in html
    alt = html.split("alt='", 1)[1].split("'", 1)[0]
    assert alt.strip() and alt != "FormulaCalculatorApp", f"alt text {alt!r} does not say what it shows"


def test_figure_alt_reads_the_figure_and_names_bad_input() -> None:
    from matplotlib.figure import Figure

    from batchlab.apps.live import figure_alt

    fig = Figure()
    assert figure_alt(fig, "DemoApp") == "DemoApp figure"
    ax = fig.add_subplot()
    ax.set_xlabel("updates")
    ax.set_ylabel("loss")
    assert figure_alt(fig, "DemoApp") == "DemoApp figure: loss against updates"
    ax.set_title("Loss per update")
    assert figure_alt(fig, "DemoApp") == "DemoApp figure: Loss per update"
    with pytest.raises(TypeError, match="fig must be a matplotlib Figure"):
        figure_alt("a figure", "DemoApp")
    with pytest.raises(ValueError, match="name must be a non-empty str, got ''"):
        figure_alt(fig, "")
