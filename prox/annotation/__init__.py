"""Annotation: a teacher model's judgements of documents and chunks, turned into a fine-tuning set
for refiners (prox annotate). Teachers, their prompts (programs/teacher/), the doc-level label rule,
the chunk-level programs and the rewrite diff each have a module."""
