"""Drop probabilities at the doc stage, with the transformers engine and a tiny Llama whose first token
is always one of the two decision tokens (drop_doc()'s or keep_doc()'s), which one depending on the
document: a random Llama with one hidden dimension held constant and read only by those two tokens.
- every judged document has metadata.doc_drop_probability in [0, 1], counted in stats.json;
- under --constrained the greedy program is drop_doc() exactly where the probability is at least 0.5;
- --drop-threshold 0.5 (one token per document) writes what that greedy run writes, both stages;
- a higher threshold never drops more (prox apply, from the stored probabilities);
- `prox apply --drop-threshold P` on a run equals a refine run with P; a rerun with another
  threshold is refused, as other changed settings are.
The same probabilities from vLLM and its server: test_vllm_engine.py.
"""

import json

import pytest
from conftest import read_output, run_prox

from prox.prompts.decisions import decision_tokens

pytest.importorskip("llguidance", reason="llguidance comes with vLLM's CPU build (make test installs it)")
pytestmark = pytest.mark.slow
DOCUMENTS = 6


@pytest.fixture(scope="module")
def decision_model(tmp_path_factory, llama_tokenizer):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=32000, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
                         bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    decisions = list(decision_tokens(llama_tokenizer).ids)
    with torch.no_grad():  # dimension 0 is 1 in every embedding and nothing writes to it
        model.model.embed_tokens.weight[:, 0] = 1.0
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight[0, :] = 0.0
            layer.mlp.down_proj.weight[0, :] = 0.0
        model.lm_head.weight[:, 0] = 0.0
        model.lm_head.weight[decisions, 0] = 100.0  # only the decision tokens read it: they lead
        model.lm_head.weight[decisions, 1:] *= 200.0  # and which of them leads varies with the document
    folder = tmp_path_factory.mktemp("decision-llama")
    model.save_pretrained(folder)
    llama_tokenizer.save_pretrained(folder)
    return folder


def refine(model, out, *extra, check=True):
    return run_prox("refine", "--input", "samples/web-documents.jsonl", "--output", str(out), "--doc-model",
                    str(model), "--chunk-model", str(model), "--engine", "transformers", "--dtype", "float32",
                    "--limit", str(DOCUMENTS), "--batch-size", str(DOCUMENTS), "--keep-raw", "--constrained", *extra,
                    check=check)


def apply(run, out, *extra):
    return run_prox("apply", "--input", str(run), "--output", str(out), "--text-key", "metadata.raw_content", *extra)


def outcomes(out) -> dict:
    """What happened to each document, by id (the doc program itself may differ: apply decides anew)."""
    kept, dropped = read_output(out)
    return {row["id"]: (row["text"], row["metadata"]["prox_action"], row["metadata"]["prox_reason"],
                        tuple(row["metadata"]["prox_operations"])) for row in kept + dropped}


def metadata(out) -> dict:
    kept, dropped = read_output(out)
    return {row["id"]: row["metadata"] for row in kept + dropped}


@pytest.fixture(scope="module")
def greedy(decision_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("greedy") / "out"
    refine(decision_model, out)
    return out


@pytest.fixture(scope="module")
def at_half(decision_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("threshold") / "out"
    refine(decision_model, out, "--drop-threshold", "0.5")
    return out


def test_the_greedy_decision_is_drop_where_the_probability_is_at_least_one_half(greedy):
    documents = metadata(greedy)
    assert len(documents) == DOCUMENTS
    probabilities = [m["doc_drop_probability"] for m in documents.values()]
    assert all(0.0 <= p <= 1.0 for p in probabilities)
    assert any(p >= 0.5 for p in probabilities) and any(p < 0.5 for p in probabilities)
    for m in documents.values():
        assert m["doc_program"] == ("drop_doc()" if m["doc_drop_probability"] >= 0.5 else "keep_doc()")
    stats = json.loads((greedy / "stats.json").read_text())["doc_drop_probabilities"]
    assert stats["judged"] == DOCUMENTS == sum(stats["histogram"].values())
    assert stats["histogram"]["0.9-1.0"] == sum(p >= 0.9 for p in probabilities)


def test_a_threshold_of_one_half_writes_what_the_greedy_run_writes(greedy, at_half):
    assert outcomes(at_half) == outcomes(greedy)
    threshold, free = metadata(at_half), metadata(greedy)
    for key, m in threshold.items():
        assert m["doc_program"] == free[key]["doc_program"] and m["chunk_program"] == free[key]["chunk_program"]
        assert m["doc_drop_probability"] == pytest.approx(free[key]["doc_drop_probability"], abs=1e-5)
    settings = json.loads((at_half / "logs" / "settings.json").read_text())
    assert settings["policy"]["drop_threshold"] == 0.5


def test_a_higher_threshold_never_drops_more_and_apply_equals_refine(decision_model, at_half, tmp_path):
    dropped = []
    for threshold in ("0.0", "0.3", "0.7", "1.0"):
        apply(at_half, tmp_path / threshold, "--drop-threshold", threshold)
        dropped.append(len(read_output(tmp_path / threshold)[1]))
    assert dropped == sorted(dropped, reverse=True) and dropped[0] == DOCUMENTS > dropped[-1]
    refine(decision_model, tmp_path / "refined-0.3", "--drop-threshold", "0.3")
    assert outcomes(tmp_path / "0.3") == outcomes(tmp_path / "refined-0.3")
    kept_now = [m for m in metadata(tmp_path / "0.7").values() if m["prox_reason"] == "drop_threshold_keep"]
    assert all(m["doc_drop_probability"] < 0.7 and m["chunk_program"] is None for m in kept_now)


def test_a_rerun_with_another_threshold_is_refused(decision_model, at_half):
    result = refine(decision_model, at_half, "--drop-threshold", "0.6", check=False)
    assert result.returncode != 0 and "policy.drop_threshold: 0.5 -> 0.6" in result.stdout + result.stderr


def test_the_rules_engine_has_no_probabilities_to_threshold(tmp_path):
    result = run_prox("refine", "--engine", "rules", "--input", "samples/web-documents.jsonl", "--output",
                      str(tmp_path / "out"), "--drop-threshold", "0.5", check=False)
    assert result.returncode == 2 and "--drop-threshold needs a model at the doc stage" in result.stderr
