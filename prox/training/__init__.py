"""Training refiners on an annotated set (prox train): examples with per-token loss weights, and
the fine-tuning run (transformers' Trainer)."""
