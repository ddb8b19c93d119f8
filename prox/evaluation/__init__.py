"""Evaluating refiners against an annotated set (prox eval): the metrics, and where the programs
scored come from (a model asked now, or a finished run's stored programs)."""
