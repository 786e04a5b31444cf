"""batchlab: see and measure batches, epochs and iterations in neural-network training.

Modules, one idea each (import the one you need; importing ``batchlab`` itself is cheap):

* :mod:`batchlab.arithmetic`: N, B, E, I and every number derived from them;
* :mod:`batchlab.data`: the digits data set and a device-resident batch iterator;
* :mod:`batchlab.models`: the small classifiers the notebooks train;
* :mod:`batchlab.training`: the training engine;
* :mod:`batchlab.measure`: measurements (throughput, memory, gradient noise, sharpness);
* :mod:`batchlab.plots`: plot builders that take data and return or update matplotlib artists;
* :mod:`batchlab.apps`: the widget apps of the notebooks;
* :mod:`batchlab.exercises`: self-check exercises.
"""

__version__ = "0.1.0"
