"""Folding messages to individuals, the fix-up and withdrawn consent on both files (pipeline.md 7.7.6-7.7.8)."""

from __future__ import annotations

from typing import Any

import pytest
from record_csv import analysis_cells

from redss_pipeline.core.code_scheme import CodeScheme
from redss_pipeline.core.errors import RawDataError
from redss_pipeline.core.labels import make_label
from redss_pipeline.core.records import Record
from redss_pipeline.generate.analysis_columns import ShowCodes, add_analysis_columns, determine_consent
from redss_pipeline.generate.individuals import SplitRespondent, fold_individuals


def _label(scheme: CodeScheme, string_value: str) -> dict[str, Any]:
    code = next(c for c in scheme.codes if c.string_value == string_value)
    return make_label(scheme, code, origin_id="test", label_time="2019-01-20T10:00:00.000000+00:00", checked=True)


def _message(config, run, uid: str, show: str, text: str, reasons=("NR",), binary: str = "NR", surveys=None,
             noise: bool = False, **extra) -> Record:
    """An analysed message of ``show``: every coded field set, then the analysis columns and consent."""
    surveys = surveys or {}
    data: dict[str, Any] = {"uid": uid, "noise": noise, "sent_on": "2018-12-05T10:00:00+03:00",
                            "sms_ad": "false", "radio_promo": "true", "radio_show": "false",
                            "non_logical_time": "false", **extra}
    for plan in config.rqa_plans:
        own = plan.name == show
        data[plan.coded_field] = [_label(plan.scheme, r) for r in reasons] if own else [_label(plan.scheme, "NA")]
        if own:
            data[plan.raw_field] = text
        if plan.binary is not None:
            data[plan.binary.coded_field] = _label(plan.binary.scheme, binary if own else "NA")
    for plan in config.survey_plans:
        data[plan.coded_field] = _label(plan.scheme, surveys.get(plan.name, "NA"))
    data[config.operator.coded_field] = _label(config.operator.scheme, "hormud")
    record = Record.create(run.step("test/load"), data)
    [record] = determine_consent(add_analysis_columns([record], config=config, run=run), config=config, run=run)
    return record


def test_individuals_come_in_order_of_first_message(config, run):
    """One individual per uid, ordered by each uid's first message."""
    messages = [_message(config, run, u, "s01e01", "x") for u in ("b", "a", "b", "c", "a")]
    _, individuals = fold_individuals(messages, config=config, run=run)
    assert [i["uid"] for i in individuals] == ["b", "a", "c"]


def test_raw_texts_are_joined_with_semicolons(config, run):
    """A show's texts are joined in message order; a show the respondent never answered stays absent."""
    messages = [_message(config, run, "u1", "s01e01", "first"), _message(config, run, "u1", "s01e02", "middle"),
                _message(config, run, "u1", "s01e01", "last")]
    _, [individual] = fold_individuals(messages, config=config, run=run)
    assert individual["rqa_s01e01_raw"] == "first;last"
    assert individual["rqa_s01e02_raw"] == "middle"
    assert "rqa_s01e03_raw" not in individual


def test_matrix_fold_ors_reasons_and_ands_not_coded(config, run):
    """Reasons are 1 if any message has them; NC stays 1 only if every message is NC."""
    messages = [_message(config, run, "u1", "s01e01", "hi", reasons=("NC",), noise=True),
                _message(config, run, "u1", "s01e01", "land please", reasons=("land",)),
                _message(config, run, "u2", "s01e01", "ok", reasons=("NC",), noise=True),
                _message(config, run, "u2", "s01e01", "yes", reasons=("NC",), noise=True)]
    _, individuals = fold_individuals(messages, config=config, run=run)
    assert individuals[0]["rqa_s01e01_codes"] == ["land"]
    assert individuals[1]["rqa_s01e01_codes"] == ["NC"]
    first, second = (analysis_cells(config, individual) for individual in individuals)
    assert (first["rqa_s01e01_land"], first["rqa_s01e01_NC"], first["rqa_s01e01_NA"]) == ("1", "0", "0")
    assert (second["rqa_s01e01_land"], second["rqa_s01e01_NC"]) == ("0", "1")


def test_bool_keys_are_true_if_any_message_is(config, run):
    """Channel keys fold with "or"."""
    messages = [_message(config, run, "u1", "s01e01", "a"),
                _message(config, run, "u1", "s01e01", "b", radio_show="true", radio_promo="false")]
    _, [individual] = fold_individuals(messages, config=config, run=run)
    assert (individual["radio_show"], individual["radio_promo"], individual["sms_ad"]) == ("true", "true", "false")


@pytest.mark.parametrize(
    ("first", "second", "folded"),
    [
        ("NR", "STOP", "STOP"),
        ("NA", "NC", "NC"),
        ("NS", "NA", "NA"),
        ("NIC", "NR", "NR"),
        ("NR", "integrate", "integrate"),
        ("return", "NA", "return"),
        ("integrate", "integrate", "integrate"),
        ("integrate", "return", "ambivalent"),
        ("ambivalent", "return", "ambivalent"),
        ("return", "ambivalent", "ambivalent"),
        ("WS", "return", "ambivalent"),
    ],
)
def test_binary_fold_priority_and_ambivalence(config, run, first, second, folded):
    """Missing values keep the strongest (STOP > NR > NIC > NC > NA > NS); two answers differ -> ambivalent."""
    messages = [_message(config, run, "u1", "s01e02", "a", reasons=("same_identity",), binary=first),
                _message(config, run, "u1", "s01e02", "b", reasons=("same_identity",), binary=second)]
    _, [individual] = fold_individuals(messages, config=config, run=run)
    assert individual["rqa_s01e02_integrate_return"] == folded


def test_binary_fold_of_an_absent_value_keeps_the_other(config, run):
    """A binary column one message lacks folds to the other message's value, even NS."""
    messages = [_message(config, run, "u1", "s01e02", "a", reasons=("same_identity",), binary="NS"),
                _message(config, run, "u1", "s01e01", "b")]
    no_binary = messages[1].to_dict()
    del no_binary["rqa_s01e02_integrate_return"]
    messages[1] = Record.create(run.step("test/load"), no_binary)
    _, [individual] = fold_individuals(messages, config=config, run=run)
    assert individual["rqa_s01e02_integrate_return"] == "NS"


def test_keys_without_a_rule_become_merged(config, run):
    """noise, times, labels and other unexported keys fold to "MERGED"."""
    messages = [_message(config, run, "u1", "s01e01", "a"), _message(config, run, "u1", "s01e02", "b")]
    _, [individual] = fold_individuals(messages, config=config, run=run)
    assert individual["noise"] == "MERGED"
    assert individual["sent_on"] == "MERGED"
    assert individual["rqa_s01e01_coded"] == "MERGED"
    assert individual["gender"] == "NA"
    assert individual["uid"] == "u1"


def test_equal_keys_that_differ_are_an_error(config, run):
    """A survey column that differs between a respondent's messages is an error naming uid and key."""
    messages = [_message(config, run, "u1", "s01e01", "a", surveys={"gender": "male"}),
                _message(config, run, "u1", "s01e01", "b", surveys={"gender": "female"})]
    with pytest.raises(RawDataError, match=r"record u1: field 'gender': the respondent's messages disagree"):
        fold_individuals(messages, config=config, run=run)


def test_fix_up_repairs_na_and_nc_across_shows(config, run):
    """A show answered only with noise ends NA 0, NC 1; a coded show NA 0; a show never answered keeps NA 1."""
    messages = [_message(config, run, "u1", "s01e01", "land please", reasons=("land",)),
                _message(config, run, "u1", "s01e02", "ok", reasons=("NC",), binary="NC", noise=True)]
    _, [individual] = fold_individuals(messages, config=config, run=run)
    cells = analysis_cells(config, individual)
    assert (cells["rqa_s01e01_NA"], cells["rqa_s01e01_NC"], cells["rqa_s01e01_land"]) == ("0", "0", "1")
    assert (cells["rqa_s01e02_NA"], cells["rqa_s01e02_NC"]) == ("0", "1")
    assert (cells["rqa_s01e03_NA"], cells["rqa_s01e03_NC"]) == ("1", "0")
    assert cells["rqa_s01e02_integrate_return"] == "NC"
    assert [individual[f"rqa_s01e0{n}_codes"] for n in (1, 2, 3)] == [["land"], ["NC"], ["NA"]]


def test_fix_up_ignores_an_empty_text(config, run):
    """An empty raw text does not clear NA, and since NA still counts as a code, NC is not added."""
    record = Record.create(run.step("test/load"), {"uid": "u1", "rqa_s01e01_raw": "", "rqa_s01e01_codes": ["NA"]})
    _, [fixed] = fold_individuals([record], config=config, run=run)
    assert fixed is record
    cells = analysis_cells(config, fixed)
    assert (cells["rqa_s01e01_NA"], cells["rqa_s01e01_NC"]) == ("1", "0")


def test_single_message_respondent_is_its_own_individual_and_gets_the_fix_up(config, run):
    """2019 quirk: a one-message respondent's individual is the message record, so the fix-up shows in
    csap_mes.csv too (here a show with every matrix column 0 gets NC = 1 on the message row)."""
    message = _message(config, run, "u1", "s01e01", "a", reasons=("land",))
    message = message.updated(run.step("test/odd"), {"rqa_s01e03_codes": []})
    other = _message(config, run, "u2", "s01e01", "b", reasons=("land",))
    messages, individuals = fold_individuals([message, other], config=config, run=run)
    assert analysis_cells(config, messages[0])["rqa_s01e03_NC"] == "1"
    assert individuals[0] is messages[0]
    assert analysis_cells(config, message)["rqa_s01e03_NC"] == "0"
    assert messages[1] is other


def test_folded_messages_are_not_changed_by_the_fix_up(config, run):
    """Messages of a respondent with several messages keep their own values; only the individual is fixed."""
    messages = [_message(config, run, "u1", "s01e01", "land please", reasons=("land",)),
                _message(config, run, "u1", "s01e02", "ok", reasons=("NC",), noise=True)]
    result, _ = fold_individuals(messages, config=config, run=run)
    assert result[0] is messages[0] and result[1] is messages[1]


def test_withdrawn_consent_stops_one_message_and_the_whole_individual(config, run):
    """An RQA STOP withdraws that message in the messages file and the whole respondent in the individuals."""
    messages = [_message(config, run, "u1", "s01e01", "stop", reasons=("STOP",)),
                _message(config, run, "u1", "s01e02", "fine", reasons=("same_identity",)),
                _message(config, run, "u2", "s01e01", "hello", reasons=("STOP",))]
    result, individuals = fold_individuals(messages, config=config, run=run)
    assert [m["uid"] for m in result] == ["STOP", "u1", "STOP"]
    assert result[1]["rqa_s01e02_raw"] == "fine"
    assert individuals[0]["consent_withdrawn"] == "true"
    assert individuals[0]["uid"] == "STOP"
    assert individuals[0]["rqa_s01e01_raw"] == "STOP"
    assert individuals[0]["rqa_s01e02_codes"] == "STOP"
    cells = analysis_cells(config, individuals[0])
    assert {cells[column] for column in cells if column.startswith("rqa_s01e02_")} == {"STOP"}
    assert "rqa_s01e03_raw" not in individuals[0]
    assert individuals[1] is result[2]
    assert individuals[1]["uid"] == "STOP"


def test_codes_missing_from_one_message_count_as_no_code(config, run):
    """A show's codes one message lacks fold as if its matrix columns were "0" there (2019 behaviour), and that
    message takes no part in the NC rule: the other two are NC, so the individual is NC."""
    messages = [_message(config, run, "u1", "s01e01", "a", reasons=("NC",), noise=True),
                _message(config, run, "u1", "s01e01", "b", reasons=("land",)),
                _message(config, run, "u1", "s01e01", "c", reasons=("NC",), noise=True)]
    data = messages[1].to_dict()
    del data["rqa_s01e01_codes"]
    messages[1] = Record.create(run.step("test/load"), data)
    _, [individual] = fold_individuals(messages, config=config, run=run)
    assert individual["rqa_s01e01_codes"] == ["NC"]
    cells = analysis_cells(config, individual)
    assert (cells["rqa_s01e01_land"], cells["rqa_s01e01_NC"], cells["rqa_s01e01_NA"]) == ("0", "1", "0")


def test_codes_of_stop_on_one_message_fold_to_stop(config, run):
    """A show's codes that read STOP on one message fold to STOP, whatever the other messages hold (2019 folded each
    matrix column to STOP when one message's was)."""
    messages = [_message(config, run, "u1", "s01e01", "a", reasons=("land",)),
                _message(config, run, "u1", "s01e01", "b", reasons=("NC",), noise=True)]
    messages[1] = messages[1].updated(run.step("test/odd"), {"rqa_s01e01_codes": "STOP"})
    _, [individual] = fold_individuals(messages, config=config, run=run)
    assert individual["rqa_s01e01_codes"] == "STOP"
    cells = analysis_cells(config, individual)
    assert (cells["rqa_s01e01_land"], cells["rqa_s01e01_NC"], cells["rqa_s01e02_NA"]) == ("STOP", "STOP", "1")


def test_reasons_of_several_messages_are_in_scheme_order(config, run):
    """The folded codes list each code once, in the order of the scheme (shelter comes before land in it)."""
    messages = [_message(config, run, "u1", "s01e01", "a", reasons=("land",)),
                _message(config, run, "u1", "s01e01", "b", reasons=("shelter", "land"))]
    _, [individual] = fold_individuals(messages, config=config, run=run)
    assert individual["rqa_s01e01_codes"] == ["shelter", "land"]


def test_show_codes_are_put_in_scheme_order_once_each(config):
    """The scheme's values given come once each in the scheme's order (shelter, land, NR, STOP in s01e01's);
    values the scheme lacks are left out, and any iterable will do."""
    show = ShowCodes(next(plan for plan in config.rqa_plans if plan.name == "s01e01"))
    given = iter(["STOP", "land", "not a code", "shelter", "land", "NR"])
    assert show.in_scheme_order(given) == ["shelter", "land", "NR", "STOP"]
    assert show.in_scheme_order(["not a code"]) == [] and show.in_scheme_order([]) == []


def test_codes_other_than_a_list_or_stop_are_an_error(config, run):
    """A show's codes holding anything but a list or STOP names the uid and the key."""
    messages = [_message(config, run, "u1", "s01e01", "a"), _message(config, run, "u1", "s01e01", "b")]
    messages[1] = messages[1].updated(run.step("test/break"), {"rqa_s01e01_codes": "yes"})
    with pytest.raises(RawDataError, match=r"record u1: field 'rqa_s01e01_codes': a show's codes must be a list"):
        fold_individuals(messages, config=config, run=run)


def test_a_respondent_split_over_chunks_folds_to_the_same_individual(config, run):
    """A heavy sender's messages come in pieces: texts are still joined in message order, the matrix still ORs,
    every message is written once, and the individual is ordered by the first message's position."""
    split = SplitRespondent(config=config, run=run)
    first = _message(config, run, "u1", "s01e01", "first", reasons=("NC",), noise=True)
    middle = _message(config, run, "u1", "s01e02", "middle", reasons=("NC",), noise=True)
    last = _message(config, run, "u1", "s01e01", "last", reasons=("land",))
    assert split.add([10], [first]) == ([], [])  # alone so far: held back
    assert split.add([25], [middle]) == ([10, 25], [first, middle])
    positions, messages, [(position, individual)] = split.finish([40], [last])
    assert (positions, messages, position) == ([40], [last], 10)
    assert individual["rqa_s01e01_raw"] == "first;last"
    assert individual["rqa_s01e02_raw"] == "middle"
    cells = analysis_cells(config, individual)
    assert (cells["rqa_s01e01_land"], cells["rqa_s01e01_NC"]) == ("1", "0")
    assert individual["noise"] == "MERGED"


def test_a_split_respondent_left_with_one_message_gets_the_fix_up_on_it(config, run):
    """Pieces whose messages were all filtered out: the one message left is the individual, and the fix-up of a
    single-message respondent lands on its message row (here NC = 1 for a show with every matrix column 0)."""
    split = SplitRespondent(config=config, run=run)
    message = _message(config, run, "u1", "s01e01", "a", reasons=("land",))
    message = message.updated(run.step("test/odd"), {"rqa_s01e03_codes": []})
    assert split.add([7], [message]) == ([], [])
    assert split.add([], []) == ([], [])
    positions, [written], [(position, individual)] = split.finish([], [])
    assert (positions, position) == ([7], 7)
    assert written["rqa_s01e03_codes"] == ["NC"] and individual is written


def test_a_split_respondent_who_withdrew_is_stopped_in_every_piece(config, run):
    """Withdrawn consent: the STOP message reads STOP in its piece, and the whole individual reads STOP."""
    split = SplitRespondent(config=config, run=run)
    stop = _message(config, run, "u1", "s01e01", "stop", reasons=("STOP",))
    fine = _message(config, run, "u1", "s01e02", "fine", reasons=("same_identity",))
    _, written = split.add([1, 2], [stop, fine])
    assert [m["uid"] for m in written] == ["STOP", "u1"]
    _, [later], [(_, individual)] = split.finish([3], [fine])
    assert later["uid"] == "u1"
    assert (individual["uid"], individual["consent_withdrawn"], individual["rqa_s01e02_raw"]) == ("STOP", "true", "STOP")


@pytest.mark.parametrize(
    "pieces, folded",
    [
        ([["NR"], ["integrate", "NA"], ["return"]], "ambivalent"),  # NR+integrate = integrate, +NA, +return
        ([["NS"], ["NIC", "NA"], ["NA"]], "NIC"),  # the strongest missing value, across the pieces
        ([["integrate"], ["NR"], ["integrate"]], "integrate"),
    ],
)
def test_the_binary_fold_runs_from_the_left_across_pieces(config, run, pieces, folded):
    """The binary rule is pairwise from the left (7.7.6): a split respondent's pieces give the same value."""
    split = SplitRespondent(config=config, run=run)
    position = 0
    for number, piece in enumerate(pieces):
        messages = [_message(config, run, "u1", "s01e02", f"text {number}", reasons=("same_identity",), binary=b)
                    for b in piece]
        positions = list(range(position, position + len(messages)))
        position += len(messages)
        if number < len(pieces) - 1:
            split.add(positions, messages)
        else:
            _, _, [(_, individual)] = split.finish(positions, messages)
    assert individual["rqa_s01e02_integrate_return"] == folded
