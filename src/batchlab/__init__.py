"""batchlab: see and measure batches, epochs and iterations in neural-network training.

The names a notebook needs come from here: ``from batchlab import train, make_mlp, load_digits_split``.
Importing ``batchlab`` itself is cheap: each name is imported from its module on first use.

Modules, one idea each:

* :mod:`batchlab.arithmetic`: N, B, E, I, A, W and every number derived from them;
* :mod:`batchlab.data`: the digits data set and a device-resident batch iterator;
* :mod:`batchlab.models`: the small classifiers the notebooks train;
* :mod:`batchlab.training`: the training loop of notebook 05 (:mod:`batchlab.history` holds what a run
  records, :mod:`batchlab.optim` the optimizers and the warm-up);
* :mod:`batchlab.experiments`: sweeps that train many models (notebook 04);
* :mod:`batchlab.stats`: paired-seed comparisons with intervals and verdicts (notebook 04 on);
* :mod:`batchlab.critical`: steps and samples to a target, the critical batch size (notebook 07);
* :mod:`batchlab.distributed`: data parallelism on several processes (notebook 08);
* :mod:`batchlab.line_fit`: a two-parameter problem whose loss surface can be drawn whole (notebook 03);
* :mod:`batchlab.measure`: measurements (throughput, memory, gradient noise, sharpness);
* :mod:`batchlab.plots`: plot helpers that take data and return or update matplotlib artists;
* :mod:`batchlab.apps`: the widget apps of the notebooks;
* :mod:`batchlab.exercises`: self-check exercises.
"""

from importlib import import_module

__version__ = "0.1.0"

# module -> the names ``batchlab`` gives from it ("arithmetic" is the module itself)
_MODULES = {
    "batchlab.arithmetic": ("arithmetic",),
    "batchlab.training": ("train", "evaluate"),
    "batchlab.history": ("History", "Callback", "TimedCallback"),
    "batchlab.models": ("make_mlp", "count_parameters"),
    "batchlab.data": ("load_digits_split", "load_digit_images", "to_tensors", "BatchIterator", "DigitsSplit"),
    "batchlab.devices": ("default_device", "describe_device"),
    "batchlab.exercises": ("NumericExercise", "ChoiceExercise"),
    "batchlab.plots.style": ("apply_style", "batch_size_color"),
    "batchlab.plots.training": ("LiveTrainingPlot",),
    "batchlab.apps.stepper": ("BatchStepperApp",),
    "batchlab.apps.calculator": ("FormulaCalculatorApp", "FixedStepsApp", "LearningRateApp"),
    "batchlab.apps.landscape": ("LandscapeApp",),
    "batchlab.apps.sweep": ("SweepExplorerApp",),
    "batchlab.apps.simulator": ("TrainingSimulatorApp",),
    "batchlab.apps.critical": ("CriticalBatchApp",),
}
_EXPORTS = {name: module for module, names in _MODULES.items() for name in names}  # name -> its module
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    """Import ``name`` from its module on first use (PEP 562), so ``import batchlab`` stays cheap."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'batchlab' has no attribute {name!r}")
    module = import_module(_EXPORTS[name])
    value = module if _EXPORTS[name] == f"batchlab.{name}" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
