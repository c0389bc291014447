"""Deterministic sample corpus: synthetic videos made from bundled photos, with exact ground truth."""

from curation.corpus.build import CorpusError, build_corpus
from curation.corpus.truth import TruthError, load_masks, load_truth

__all__ = ["CorpusError", "TruthError", "build_corpus", "load_masks", "load_truth"]
