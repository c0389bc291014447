"""Pure, stateless signal extractors and threshold predicates used by the curation stages.

Importing the package registers every signal in ``SIGNALS``. A stage typically does::

    signal = get_signal("blur"); signal.setup()
    frames = read_frames(clip, sample_indices(n_frames, signal.sampling), ...)
    value = signal.compute(frames, fps)
    passed = evaluate({signal.name: value}, thresholds)[signal.name]
"""

from filters import motion, ocr, photometric  # noqa: F401  (registers the signals)
from filters.base import SIGNALS, FilterError, Sampling, Signal, evenly_spaced, get_signal, sample_indices
from filters.thresholds import FilterThresholds, duration_ok, evaluate, reject_reasons, resolution_ok

__all__ = [
    "SIGNALS",
    "FilterError",
    "FilterThresholds",
    "Sampling",
    "Signal",
    "duration_ok",
    "evaluate",
    "evenly_spaced",
    "get_signal",
    "reject_reasons",
    "resolution_ok",
    "sample_indices",
]
