"""prox: refine pre-training corpora the ProX way (a model writes a program per document)."""

__version__ = "0.1.0"
