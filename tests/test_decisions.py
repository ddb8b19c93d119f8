"""The doc decision as a probability, without a model: the decision tokens of the published refiners'
tokenizer, the probability from two log-probabilities, the threshold in the interpreter, and the
histogram of stats.json."""

import math

import pytest

from prox.execution import Action, Policy, Reason, execute_programs
from prox.pipeline.run_guard import setting_differences
from prox.pipeline.stats import Tally
from prox.prompts.decisions import decision_tokens

TEXT = "A page about fish.\n" * 20


def test_the_published_tokenizer_decides_at_drop_and_keep(llama_tokenizer):
    tokens = decision_tokens(llama_tokenizer)
    assert (tokens.drop_call, tokens.keep_call) == ("drop_doc()", "keep_doc()")
    assert llama_tokenizer.convert_ids_to_tokens(list(tokens.ids)) == ["▁drop", "▁keep"]


@pytest.mark.parametrize("drop, keep", [(-0.1, -2.5), (-3.0, -3.0), (-9999.0, -0.01), (-0.01, -9999.0), (0.0, -800.0)])
def test_the_probability_is_the_drop_share_of_the_two(llama_tokenizer, drop, keep):
    probability = decision_tokens(llama_tokenizer).drop_probability((drop, keep))
    assert 0.0 <= probability <= 1.0
    shift = max(drop, keep)  # the same, computed the long way where it does not overflow
    expected = math.exp(drop - shift) / (math.exp(drop - shift) + math.exp(keep - shift))
    assert probability == pytest.approx(expected, abs=1e-12)


def test_the_threshold_decides_in_place_of_the_doc_program():
    at = Policy(drop_threshold=0.5)
    assert execute_programs(TEXT, "keep_doc()", None, at, drop_probability=0.5).reason is Reason.DOC_DROP
    assert execute_programs(TEXT, "drop_doc()", "keep_chunk()", at, drop_probability=0.2).action is Action.KEPT
    kept = execute_programs(TEXT, "drop_doc()", None, at, drop_probability=0.49)
    assert (kept.action, kept.reason, kept.operations) == (Action.KEPT, Reason.THRESHOLD_KEEP, ("keep_doc()",))
    assert kept.words_after == kept.words_before == 80
    assert execute_programs(TEXT, "drop_doc()", None, at, drop_probability=None).reason is Reason.DOC_DROP
    assert execute_programs(TEXT, "drop_doc()", None, Policy(), drop_probability=0.1).reason is Reason.DOC_DROP


def test_the_histogram_counts_judged_documents_in_tenths_and_merges():
    def record(probability=None):
        metadata = {"prox_action": "kept", "prox_reason": "doc_program_keep", "prox_diagnostics": {}}
        return metadata | ({} if probability is None else {"doc_drop_probability": probability})

    shard = Tally()
    for probability in (0.0, 0.05, 0.1, 0.55, 0.999, 1.0, None):
        shard.add(record(probability))
    histogram = shard.summary()["doc_drop_probabilities"]
    assert histogram["judged"] == 6
    assert {k: v for k, v in histogram["histogram"].items() if v} == {"0.0-0.1": 2, "0.1-0.2": 1, "0.5-0.6": 1,
                                                                      "0.9-1.0": 2}
    run = Tally()
    run.absorb(shard.summary())
    run.absorb({k: v for k, v in shard.summary().items() if k != "doc_drop_probabilities"})  # an older summary
    assert run.summary()["doc_drop_probabilities"] == {"judged": 6, "histogram": histogram["histogram"]}


def test_a_setting_added_later_and_left_off_is_no_change():
    before = {"policy": {"threshold_2": 0.95}}
    assert setting_differences(before, {"policy": {"threshold_2": 0.95, "drop_threshold": None}}) == []
    assert setting_differences(before, {"policy": {"threshold_2": 0.95, "drop_threshold": 0.4}}) == [
        "policy.drop_threshold: (not set) -> 0.4"]
