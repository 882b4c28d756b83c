"""Analysis columns, consent and the withdrawn-consent overwrite on message records (pipeline.md 7.7.1-7.7.5, 7.7.8)."""

from __future__ import annotations

from typing import Any

import pytest
from record_csv import analysis_cells

from redss_pipeline.core.code_scheme import CodeScheme
from redss_pipeline.core.errors import RawDataError, SchemeError
from redss_pipeline.core.labels import make_label
from redss_pipeline.core.records import Record
from redss_pipeline.generate.analysis_columns import (
    add_analysis_columns,
    determine_consent,
    matrix_keys,
    withdraw_consent,
)


def _label(scheme: CodeScheme, string_value: str) -> dict[str, Any]:
    code = next(c for c in scheme.codes if c.string_value == string_value)
    return make_label(scheme, code, origin_id="test", label_time="2019-01-20T10:00:00.000000+00:00", checked=True)


def _message(config, run, uid: str, show: str, reasons=("NR",), binary: str = "NR", surveys=None,
             operator: str = "hormud", **extra) -> Record:
    """A message of ``show`` with every coded field set: NA for the other shows, the given codes for its own."""
    surveys = surveys or {}
    data: dict[str, Any] = {"uid": uid, "noise": False, **extra}
    for plan in config.rqa_plans:
        own = plan.name == show
        data[plan.coded_field] = [_label(plan.scheme, r) for r in reasons] if own else [_label(plan.scheme, "NA")]
        if own:
            data[plan.raw_field] = f"text of {uid}"
        if plan.binary is not None:
            data[plan.binary.coded_field] = _label(plan.binary.scheme, binary if own else "NA")
    for plan in config.survey_plans:
        data[plan.coded_field] = _label(plan.scheme, surveys.get(plan.name, "NA"))
    data[config.operator.coded_field] = _label(config.operator.scheme, operator)
    return Record.create(run.step("test/load"), data)


def _analysed(messages, config, run):
    return determine_consent(add_analysis_columns(messages, config=config, run=run), config=config, run=run)


def test_matrix_columns_are_one_for_the_codes_of_the_message(config, run):
    """The own show's coded reasons give "1", every other reason "0"; other shows have only NA = "1". The record
    holds each show's codes once; the columns are rendered from them."""
    message = _message(config, run, "u1", "s01e02", reasons=("religion_commands_it", "same_identity"))
    [result] = add_analysis_columns([message], config=config, run=run)
    assert result["rqa_s01e02_codes"] == ["same_identity", "religion_commands_it"]  # in the order of the scheme
    assert result["rqa_s01e01_codes"] == ["NA"]
    assert "rqa_s01e02_same_identity" not in result
    cells = analysis_cells(config, result)
    assert cells["rqa_s01e02_same_identity"] == "1"
    assert cells["rqa_s01e02_religion_commands_it"] == "1"
    assert cells["rqa_s01e02_should_be_given_jobs"] == "0"
    assert cells["rqa_s01e02_NA"] == "0"
    assert cells["rqa_s01e01_NA"] == "1"
    assert [cells[k] for k in matrix_keys(config.rqa_plan("s01e01"))].count("1") == 1
    assert sum(cells[k] == "1" for p in config.rqa_plans for k in matrix_keys(p)) == 5


def test_there_are_90_matrix_keys(config):
    """Every code of the four reasons schemes gets a column: 7 control codes + 19, 17, 15 and 11 reasons."""
    assert [len(matrix_keys(p)) for p in config.rqa_plans] == [26, 24, 22, 18]


def test_survey_binary_and_operator_columns_are_string_values(config, run):
    """Survey, binary and operator columns hold the code's StringValue (Somtel's is "sometel")."""
    message = _message(config, run, "u1", "s01e03", reasons=("discriminating_actor_ngos",), binary="yes",
                       surveys={"gender": "female", "age": "25", "district": "mogadishu", "involved": "NR"},
                       operator="sometel")
    [result] = add_analysis_columns([message], config=config, run=run)
    assert (result["gender"], result["age"], result["district"], result["involved"]) == (
        "female", "25", "mogadishu", "NR")
    assert result["idp_camp"] == "NA"
    assert result["rqa_s01e03_yes_no"] == "yes"
    assert result["rqa_s01e02_integrate_return"] == "NA"
    assert result["operator"] == "sometel"
    assert result["consent_withdrawn"] == "false"


def test_unknown_code_id_names_record_and_field(config, run):
    """A label whose CodeID its scheme lacks is an error naming the uid and the coded field."""
    message = _message(config, run, "u7", "s01e01")
    bad = message.updated(run.step("test/break"), {"gender_coded": {**message["gender_coded"], "CodeID": "code-x"}})
    with pytest.raises(SchemeError, match=r"record u7: field 'gender_coded': CodeID 'code-x' is not a code"):
        add_analysis_columns([bad], config=config, run=run)


def test_a_bad_label_after_good_records_is_still_an_error(config, run):
    """Records with codes met before reuse their columns; one with a code its scheme lacks, a show field holding
    one label, or a reason that is no label, after good records with the same other codes, is still an error."""
    good = _message(config, run, "u1", "s01e01", reasons=("land",))
    unknown = _message(config, run, "u2", "s01e01", reasons=("land",)).updated(
        run.step("test/break"), {"gender_coded": {**good["gender_coded"], "CodeID": "code-x"}})
    with pytest.raises(SchemeError, match=r"record u2: field 'gender_coded': CodeID 'code-x' is not a code"):
        add_analysis_columns([good, good, unknown], config=config, run=run)
    one_label = good.updated(run.step("test/break"), {"uid": "u3", "rqa_s01e01_coded": good["rqa_s01e01_coded"][0]})
    with pytest.raises(RawDataError, match=r"record u3: field 'rqa_s01e01_coded': .* list of labels"):
        add_analysis_columns([good, one_label], config=config, run=run)
    not_a_label = good.updated(run.step("test/break"), {"uid": "u4", "rqa_s01e01_coded": ["land"]})
    with pytest.raises(RawDataError, match=r"record u4: field 'rqa_s01e01_coded': expected a label"):
        add_analysis_columns([good, not_a_label], config=config, run=run)


def test_survey_stop_withdraws_every_message_of_the_respondent(config, run):
    """A survey coded STOP (here a location level) marks all of that respondent's messages, no one else's."""
    messages = [
        _message(config, run, "u1", "s01e01", reasons=("land",), surveys={"zone": "STOP"}),
        _message(config, run, "u2", "s01e01", reasons=("land",)),
        _message(config, run, "u1", "s01e04", reasons=("religion",), surveys={"zone": "STOP"}),
    ]
    result = _analysed(messages, config, run)
    assert [m["consent_withdrawn"] for m in result] == ["true", "false", "true"]


def test_show_stop_withdraws_only_that_message(config, run):
    """A reasons STOP or a binary STOP marks that message only; the respondent's other messages stay."""
    messages = [
        _message(config, run, "u1", "s01e01", reasons=("STOP",)),
        _message(config, run, "u1", "s01e02", reasons=("same_identity",), binary="STOP"),
        _message(config, run, "u1", "s01e04", reasons=("religion",)),
    ]
    result = _analysed(messages, config, run)
    assert [m["consent_withdrawn"] for m in result] == ["true", "true", "false"]
    assert analysis_cells(config, result[0])["rqa_s01e01_STOP"] == "1"


def test_consent_history_shows_false_then_true(config, run):
    """The audit trail shows the default "false" and the later "true", each by its own step."""
    [result] = _analysed([_message(config, run, "u1", "s01e01", reasons=("STOP",))], config, run)
    history = result.history("consent_withdrawn")
    assert [(c.step.source, c.value) for c in history] == [
        ("generate/analysis_columns", "false"), ("generate/consent", "true")]


def test_withdrawn_message_is_stop_in_present_keys_only(config, run):
    """Every key the withdrawn record has becomes STOP except consent_withdrawn; absent keys stay absent."""
    [result] = _analysed([_message(config, run, "u1", "s01e01", reasons=("STOP",))], config, run)
    [stopped] = withdraw_consent([result], run=run)
    assert stopped["consent_withdrawn"] == "true"
    assert stopped["uid"] == "STOP"
    assert stopped["rqa_s01e01_raw"] == "STOP"
    assert stopped["noise"] == "STOP"
    assert stopped["gender"] == "STOP"
    assert stopped["rqa_s01e02_codes"] == "STOP"
    cells = analysis_cells(config, stopped)
    assert {cells[k] for p in config.rqa_plans for k in matrix_keys(p)} == {"STOP"}
    assert "rqa_s01e02_raw" not in stopped
    assert "gender_raw" not in stopped


def test_withdrawal_reaches_attached_survey_keys(config, run):
    """Survey answers readable through the message are overwritten on the message as well."""
    step = run.step("test/load")
    survey = Record.create(step, {"gender_raw": "naag"})
    message = Record.create(step, {"uid": "u1", "consent_withdrawn": "true"}).updated(step, {"csap_demog": survey})
    [stopped] = withdraw_consent([message], run=run)
    assert stopped["gender_raw"] == "STOP"
    assert survey["gender_raw"] == "naag"


def test_records_that_did_not_withdraw_are_unchanged(config, run):
    """A record with consent "false" comes back as the very same object."""
    [result] = _analysed([_message(config, run, "u1", "s01e01", reasons=("land",))], config, run)
    assert withdraw_consent([result], run=run)[0] is result


def test_missing_coded_field_names_record_and_field(config, run):
    """A record without one of the coded fields is an error naming the uid and the field."""
    data = _message(config, run, "u3", "s01e01").to_dict()
    del data["rqa_s01e04_coded"]
    with pytest.raises(RawDataError, match=r"record u3: field 'rqa_s01e04_coded': coded field is missing"):
        add_analysis_columns([Record.create(run.step("test/load"), data)], config=config, run=run)


def test_show_field_must_hold_a_list(config, run):
    """A reasons field holding one label instead of a list is an error naming the field."""
    message = _message(config, run, "u4", "s01e01")
    bad = message.updated(run.step("test/break"), {"rqa_s01e01_coded": message["rqa_s01e01_coded"][0]})
    with pytest.raises(RawDataError, match=r"record u4: field 'rqa_s01e01_coded': .* list of labels"):
        add_analysis_columns([bad], config=config, run=run)


def test_messages_with_the_same_codes_share_their_columns(config, run):
    """Messages whose labels are other objects with the same codes get equal columns in one shared layer; a
    message repeating the very label objects of an earlier one gets the same; other codes get their own."""
    first = _message(config, run, "u1", "s01e01", reasons=("land",), surveys={"gender": "male"})
    same_codes = _message(config, run, "u2", "s01e01", reasons=("land",), surveys={"gender": "male"})
    same_objects = Record.create(run.step("test/load"), {**first.to_dict(), "uid": "u3"})
    other = _message(config, run, "u4", "s01e01", reasons=("shelter",), surveys={"gender": "female"})
    results = add_analysis_columns([first, same_codes, same_objects, other], config=config, run=run)
    layers = [r.layers[-1].data for r in results]
    assert layers[0] is layers[1] is layers[2]
    assert [(r["uid"], r["rqa_s01e01_codes"], r["gender"]) for r in results] == [
        ("u1", ["land"], "male"), ("u2", ["land"], "male"), ("u3", ["land"], "male"), ("u4", ["shelter"], "female")]


def test_matrix_cells_of_absent_codes_are_empty_and_other_shows_unaffected(config, run):
    """A record without a show's codes has empty cells in that show's matrix columns only (a key a record lacks is
    an empty cell, as for every column)."""
    [result] = add_analysis_columns([_message(config, run, "u1", "s01e01", reasons=("land",))], config=config, run=run)
    data = result.to_dict()
    del data["rqa_s01e02_codes"]
    cells = analysis_cells(config, Record.create(run.step("test/load"), data))
    assert {cells[k] for k in matrix_keys(config.rqa_plan("s01e02"))} == {""}
    assert cells["rqa_s01e01_land"] == "1" and cells["rqa_s01e03_NA"] == "1"
