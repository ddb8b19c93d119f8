"""The refiner-training loop on real documents: annotate (rules teacher), train a tiny model on the CPU,
evaluate it, refine with it; and prox eval of a finished run against annotations."""

import gzip
import json

import pyarrow.parquet as pq
import pytest
from conftest import ROOT, random_llama, run_prox

from prox.training.examples import build_examples, key_spans

DCLM = ROOT / "samples" / "dclm-labeled-281.jsonl.gz"


@pytest.fixture(scope="module")
def annotated(tmp_path_factory):
    """40 short real pages (so that whole prompts fit a short training context), annotated by the rules."""
    folder = tmp_path_factory.mktemp("annotated")
    rows = [json.loads(line) for line in gzip.open(DCLM, "rt")]
    short = [{"id": f"dclm-{i}", "text": r["text"]} for i, r in enumerate(rows) if len(r["text"]) < 800][:40]
    documents = folder / "documents.jsonl"
    documents.write_text("".join(json.dumps(row) + "\n" for row in short))
    run_prox("annotate", "--teacher", "rules", "-i", str(documents), "-o", str(folder / "data"),
             "--validation-share", "0.25")
    return documents, folder / "data"


def test_key_tokens_weigh_more(llama_tokenizer):
    completion = 'remove_lines(line_start=3, line_end=12)\nnormalize(source_str=" Read more", target_str="")'
    spans = [completion[a:b] for a, b in key_spans(completion)]
    assert spans == ["remove_lines", "3", "12", "normalize", '" Read more"', '""']
    row = {"prompt_token_ids": [1, 2, 3], "completion": completion}
    (example,), too_long = build_examples([row], llama_tokenizer, key_token_weight=4.0)
    assert too_long == 0 and build_examples([row], llama_tokenizer, max_length=len(example.input_ids) - 1) == ([], 1)
    assert example.input_ids[:3] == [1, 2, 3] and example.input_ids[-1] == llama_tokenizer.eos_token_id
    assert example.weights[:3] == [0.0, 0.0, 0.0] and set(example.weights[3:]) == {1.0, 4.0}
    pieces = llama_tokenizer.convert_ids_to_tokens(example.input_ids[3:-1])
    weighed = "".join(p for p, w in zip(pieces, example.weights[3:-1], strict=True) if w == 4.0)
    assert "line_start" not in weighed and "remove" in weighed and "Read" in weighed


def test_batched_loss_equals_each_example_alone(tmp_path, llama_tokenizer):
    """Left padding, position ids and the last positions' logits give each example's own loss."""
    import torch
    from transformers import AutoModelForCausalLM

    from prox.training.fine_tune import Collator, weighted_loss

    model = AutoModelForCausalLM.from_pretrained(random_llama(tmp_path / "model", llama_tokenizer))
    rows = [{"prompt_token_ids": list(range(5, 45)), "completion": "keep_doc()"},
            {"prompt_token_ids": list(range(7, 19)), "completion": "remove_lines(line_start=3, line_end=12)"}]
    examples, _ = build_examples(rows, llama_tokenizer, key_token_weight=2.0)
    collate = Collator(0)
    with torch.no_grad():
        batched, _ = weighted_loss(model, collate(examples))
        alone = [weighted_loss(model, collate([e]))[0] for e in examples]
        full_logits = model(torch.tensor([examples[0].input_ids])).logits[0, :-1]
    weights = [torch.tensor(e.weights[1:]) for e in examples]
    expected = sum(loss * w.sum() for loss, w in zip(alone, weights, strict=True)) / sum(w.sum() for w in weights)
    assert torch.allclose(batched, expected, atol=1e-5)
    by_hand = torch.nn.functional.cross_entropy(full_logits, torch.tensor(examples[0].input_ids[1:]),
                                                reduction="none")
    assert torch.allclose(alone[0], (by_hand * weights[0]).sum() / weights[0].sum(), atol=1e-5)


def test_annotate_train_eval_refine(tmp_path, annotated, llama_tokenizer):
    documents, data = annotated
    base = random_llama(tmp_path / "base", llama_tokenizer, context=2048)
    trained = tmp_path / "trained"
    result = run_prox("train", "--data", str(data), "--base", str(base), "-o", str(trained), "--stage", "doc",
                      "--max-steps", "12", "--batch-size", "4", "--micro-batch-size", "4", "--learning-rate", "1e-2",
                      "--max-length", "512", "--key-token-weight", "3", "--logging-steps", "4")
    losses = [float(line.split("'loss': '")[1].split("'")[0]) for line in result.stdout.splitlines()
              if "'loss':" in line]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert json.loads((trained / "prox-train.json").read_text())["settings"]["key_token_weight"] == 3.0

    figures = json.loads(run_prox("eval", "--data", str(data), "--model", str(trained), "--engine", "transformers",
                                  "--max-new-tokens", "8", "--json").stdout)
    doc = figures["doc"]
    validation = pq.read_table(data / "doc" / "validation").num_rows
    assert list(figures) == ["doc"] and doc["examples"] == validation
    assert 0 <= doc["f1"] <= 100 and doc["paper_f1"] == 82.6

    out = tmp_path / "refined"
    run_prox("refine", "--engine", "transformers", "--doc-model", str(trained), "--stage", "doc", "-i",
             str(documents), "-o", str(out), "--limit", "6")
    stats = json.loads((out / "stats.json").read_text())
    assert stats["input"] == 6 == stats["doc_drop_probabilities"]["judged"]


def test_eval_scores_a_finished_run(tmp_path, annotated):
    documents, data = annotated
    out = tmp_path / "rules-run"
    run_prox("refine", "--engine", "rules", "-i", str(documents), "-o", str(out))
    figures = json.loads(run_prox("eval", "--data", str(data), "--programs", str(out), "--split", "train",
                                  "--json").stdout)
    train = {stage: pq.read_table(data / stage / "train").num_rows for stage in ("doc", "chunk")}
    # the rules teacher's annotations are the rules engine's programs: full agreement
    assert figures["doc"]["f1"] == 100 and figures["doc"]["examples"] == train["doc"]
    assert figures["chunk"]["f1"] == 100 and figures["chunk"]["failures"] == {}
    assert figures["chunk"]["examples"] + figures["chunk"]["without_program"] == train["chunk"]
    assert figures["chunk"]["without_program"] > 0  # chunks of documents the doc stage dropped
