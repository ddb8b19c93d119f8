"""Each rule of PROX_SPEC.md's execution sections, shown on a small document.

The document has 20 lines of 5 words each (100 words), so word shares are easy to read.
"""

import pytest

from prox.execution import Action, Policy, Reason, execute_programs

LINES = [f"line{i:02d} alpha beta gamma delta" for i in range(20)]
TEXT = "\n".join(LINES)


def chunk(program: str, text: str = TEXT, **policy):
    return execute_programs(text, None, program, Policy(**policy))


def kept_lines(outcome) -> list[str]:
    return [line.split()[0] for line in outcome.text.split("\n")]


# Doc level: "drop" decides; anything else keeps the document unchanged.

def test_doc_drop_doc_drops():
    outcome = execute_programs(TEXT, "drop_doc()", None)
    assert (outcome.action, outcome.reason, outcome.text) == (Action.DROPPED, Reason.DOC_DROP, TEXT)


def test_doc_keep_doc_keeps_unchanged():
    outcome = execute_programs(TEXT, "keep_doc()", None)
    assert (outcome.action, outcome.reason, outcome.text) == (Action.KEPT, Reason.DOC_KEEP, TEXT)


def test_doc_drop_wins_over_keep_as_in_the_reference():
    assert execute_programs(TEXT, "keep_doc()\ndrop_doc()", None).action is Action.DROPPED


def test_doc_drop_skips_the_chunk_program():
    outcome = execute_programs(TEXT, "drop_doc()", "remove_lines(line_start=0, line_end=0)")
    assert outcome.reason is Reason.DOC_DROP and outcome.operations == ("drop_doc()",)


def test_doc_mentioning_drop_in_prose_keeps_prox_difference():
    outcome = execute_programs(TEXT, "I would drop this document.", None)
    assert outcome.action is Action.KEPT and outcome.reason is Reason.DOC_NO_DECISION


def test_doc_keep_then_chunk_program_runs():
    outcome = execute_programs(TEXT, "keep_doc()", "remove_lines(line_start=0, line_end=0)")
    assert outcome.action is Action.MODIFIED and kept_lines(outcome)[0] == "line01"


# Chunk level, step 1: the program is split into lines.

def test_program_lines_split_on_newline_and_outer_spaces_stripped():
    outcome = chunk("  remove_lines(line_start=0, line_end=0)\nremove_lines(line_start=19, line_end=19)  ")
    assert kept_lines(outcome) == [f"line{i:02d}" for i in range(1, 19)]


# Step 2: remove_lines marks an inclusive range of 0-based lines of the whole document.

def test_remove_lines_range_is_inclusive_and_zero_based():
    outcome = chunk("remove_lines(line_start=2, line_end=4)")
    assert kept_lines(outcome) == [f"line{i:02d}" for i in (0, 1, *range(5, 20))]
    assert outcome.errors == 0


def test_remove_lines_missing_open_paren_counts_one_error():
    outcome = chunk("remove_lines line_start=2, line_end=4")
    assert outcome.errors == 1 and outcome.text == TEXT


def test_remove_lines_non_integer_counts_one_error_and_is_skipped():
    outcome = chunk('remove_lines(line_start="two", line_end=4)\nremove_lines(line_start=0, line_end=0)')
    assert outcome.errors == 1
    assert kept_lines(outcome)[0] == "line01"


def test_remove_lines_missing_close_paren_counts_one_error():
    outcome = chunk("remove_lines(line_start=2, line_end=4")
    assert outcome.errors == 1
    assert [d.category.value for d in outcome.diagnostics] == ["truncated"]


def test_remove_lines_positional_arguments_are_accepted_prox_difference():
    outcome = chunk("remove_lines(2, 4)")
    assert outcome.errors == 0 and len(outcome.text.split("\n")) == 17


# normalize: one argument deletes, two replace, empty or single-space source ignored.

def test_normalize_with_one_argument_deletes_everywhere():
    outcome = chunk('normalize(source_str=" alpha")')
    assert "alpha" not in outcome.text and outcome.words_after == 80


def test_normalize_with_two_arguments_replaces_everywhere():
    outcome = chunk('normalize(source_str="gamma", target_str="GAMMA")')
    assert outcome.text == TEXT.replace("gamma", "GAMMA")


@pytest.mark.parametrize("source", ["", " "])
@pytest.mark.parametrize("arguments", ['source_str="{s}", target_str="x"', 'source_str="{s}"'])
def test_normalize_of_empty_or_single_space_source_is_ignored(source, arguments):
    outcome = chunk("normalize(" + arguments.format(s=source) + ")")
    assert outcome.text == TEXT and outcome.errors == 0
    assert [d.category.value for d in outcome.diagnostics] == ["no_effect"]


def test_normalizations_apply_to_the_whole_text_in_program_order():
    program = 'normalize(source_str="alpha", target_str="beta")\nnormalize(source_str="beta", target_str="omega")'
    assert chunk(program).text == TEXT.replace("alpha beta", "omega omega")


def test_normalize_sees_commas_equals_and_parens_inside_strings_prox_difference():
    text = TEXT + "\nClick here, to = subscribe (now) today please friends"
    outcome = chunk('normalize(source_str="Click here, to = subscribe (now) ", target_str="")', text=text)
    assert outcome.text.endswith("\ntoday please friends")


# remove_lines(all=True) and ignored lines.

def test_remove_all_lines_marks_every_line():
    outcome = chunk("remove_lines(all=True)")
    assert outcome.action is Action.DROPPED and outcome.words_after == 0


def test_keep_chunk_blank_lines_and_prose_are_ignored_without_errors():
    outcome = chunk("keep_chunk()\n\nHere is the program.\n")
    assert (outcome.action, outcome.reason, outcome.errors) == (Action.KEPT, Reason.UNCHANGED, 0)


# Step 3: marked lines are removed after the normalizations; the result is joined with "\n".

def test_normalize_and_removal_combine_and_join_with_newlines():
    outcome = chunk('remove_lines(line_start=1, line_end=16)\nnormalize(source_str="alpha ", target_str="")')
    assert outcome.text == "\n".join(f"line{i:02d} beta gamma delta" for i in (0, 17, 18, 19))


def test_removals_use_the_line_numbers_the_model_saw_prox_difference():
    # the reference would remove "line01"'s text shifted by the newline the normalize adds
    program = ('normalize(source_str="line00 alpha", target_str="line00\\nalpha")\n'
               "remove_lines(line_start=1, line_end=1)")
    outcome = chunk(program)
    assert outcome.text.split("\n")[:3] == ["line00", "alpha beta gamma delta", "line02 alpha beta gamma delta"]


# Step 4: ranges are merged; one past the end counts one error, one starting past it counts one.

def test_range_ending_past_the_last_line_counts_one_error_and_is_clamped():
    outcome = chunk("remove_lines(line_start=10, line_end=30)")
    assert outcome.errors == 1 and kept_lines(outcome) == [f"line{i:02d}" for i in range(10)]


def test_range_starting_past_the_last_line_counts_one_error_and_removes_nothing():
    outcome = chunk("remove_lines(line_start=20, line_end=25)")
    assert outcome.errors == 1 and outcome.text == TEXT and outcome.action is Action.KEPT


def test_touching_ranges_merge_before_counting():
    # (0,2) and (3,30) merge into (0,30): one error, not one per range
    outcome = chunk("remove_lines(line_start=3, line_end=30)\nremove_lines(line_start=0, line_end=2)")
    assert outcome.errors == 1


def test_separate_out_of_range_ranges_count_separately():
    outcome = chunk("remove_lines(line_start=21, line_end=22)\nremove_lines(line_start=24, line_end=25)")
    assert outcome.errors == 2 and outcome.reason is Reason.TOO_MANY_ERRORS


def test_start_after_end_removes_nothing_without_error():
    outcome = chunk("remove_lines(line_start=5, line_end=2)")
    assert outcome.text == TEXT and outcome.errors == 0


# Step 5: the decision.

def test_removing_95_percent_or_more_drops():
    outcome = chunk("remove_lines(line_start=1, line_end=19)")  # 5 of 100 words left: exactly 1 - 0.95
    assert (outcome.action, outcome.reason) == (Action.DROPPED, Reason.REMOVED_ALMOST_ALL)


def test_almost_everything_removed_with_too_many_errors_is_not_that_rule():
    # 2 errors: the threshold_2 rule does not apply, but at most 10 words left still drops
    outcome = chunk("remove_lines(line_start=1, line_end=25)\nremove_lines(line_start=30, line_end=31)")
    assert outcome.errors == 2 and outcome.reason is Reason.TOO_SHORT


def test_ten_words_or_fewer_left_drops():
    text = "\n".join(LINES[:3])  # 15 words; removing one line leaves 10
    outcome = chunk("remove_lines(line_start=0, line_end=0)", text=text)
    assert (outcome.action, outcome.reason) == (Action.DROPPED, Reason.TOO_SHORT)


def test_short_document_is_dropped_even_by_an_empty_program():
    assert chunk("keep_chunk()", text="just a few words here").reason is Reason.TOO_SHORT


def test_result_is_used_when_threshold_1_is_met_and_errors_are_few():
    outcome = chunk("remove_lines(line_start=0, line_end=9)", threshold_1=0.5)
    assert (outcome.action, outcome.reason) == (Action.MODIFIED, Reason.REFINED)


def test_below_threshold_1_keeps_the_original():
    outcome = chunk("remove_lines(line_start=0, line_end=9)", threshold_1=0.6)
    assert (outcome.action, outcome.reason, outcome.text) == (Action.KEPT, Reason.BELOW_THRESHOLD_1, TEXT)


def test_error_op_errors_keep_the_original_text():
    program = "remove_lines(line_start=0, line_end=4)\nremove_lines(line_start=x, line_end=1)\nnormalize(1)"
    outcome = chunk(program)
    assert (outcome.action, outcome.reason, outcome.text, outcome.errors) == (
        Action.KEPT, Reason.TOO_MANY_ERRORS, TEXT, 2)


def test_error_op_is_an_option():
    program = "remove_lines(line_start=0, line_end=4)\nremove_lines(line_start=x, line_end=1)\nnormalize(1)"
    assert chunk(program, error_op=3).action is Action.MODIFIED


def test_extra_diagnostics_do_not_count_unless_strict():
    program = 'remove_lines(line_start=0, line_end=0)\nnormalize(source_str="absent")\nfoo()'
    assert chunk(program).action is Action.MODIFIED
    strict = chunk(program, count_all_diagnostics=True)
    assert strict.errors == 2 and strict.reason is Reason.TOO_MANY_ERRORS


def test_text_without_words_does_not_divide_by_zero():
    outcome = chunk("keep_chunk()", text="\n \n\t")
    assert outcome.action is Action.DROPPED and outcome.reason is Reason.EMPTY_TEXT
    outcome = chunk('normalize(source_str="\\t", target_str="x")', text="\t\n\t")
    assert outcome.action is Action.DROPPED


def test_empty_text_is_dropped_with_its_own_reason():
    assert execute_programs("", "keep_doc()", None).reason is Reason.EMPTY_TEXT


def test_no_program_keeps_the_document():
    outcome = execute_programs(TEXT, None, None)
    assert (outcome.action, outcome.reason, outcome.text) == (Action.KEPT, Reason.NO_PROGRAM, TEXT)


def test_record_has_words_operations_and_diagnostic_counts():
    outcome = chunk('remove_lines(line_start=0, line_end=1)\nkeep_chunk()\nhello world again')
    record = outcome.record()
    assert record["prox_words_before"] == 100 and record["prox_words_after"] == 90
    assert record["prox_operations"] == ["remove_lines(line_start=0, line_end=1)"]
    assert record["prox_diagnostics"]["prose"] == 1 and record["prox_action"] == "modified"
