"""Merging the coded Coda files into the records (pipeline.md 7.6.1-7.6.3)."""

from __future__ import annotations

from typing import Any

import pytest

from redss_pipeline.core.errors import CodaFileError
from redss_pipeline.core.labels import control_label, make_label
from redss_pipeline.core.records import Record
from redss_pipeline.export.coda import CodedMessages, message_id
from redss_pipeline.generate.manual_codes import NOISE_NOT_CODED_ORIGIN, apply_manual_codes
from redss_pipeline.generate.runner import CodedMessageCounts

CODER = {"OriginID": "coder@example.org", "Name": "Coder", "OriginType": "Manual"}


def _code_id(scheme, string_value: str) -> str:
    return next(c.code_id for c in scheme.codes if c.string_value == string_value)


def _coder_label(scheme, string_value: str, *, scheme_id: str | None = None, checked: bool | None = True,
                 time: str = "2019-01-20T10:00:00.000Z") -> dict[str, Any]:
    label = {"SchemeID": scheme_id or scheme.scheme_id, "CodeID": _code_id(scheme, string_value),
             "DateTimeUTC": time, "Origin": CODER}
    if checked is not None:
        label["Checked"] = checked
    return label


def _coded(name: str, messages: dict[str, list[dict[str, Any]]]) -> CodedMessages:
    """A coded file: text -> labels, newest first (as Coda writes them)."""
    return CodedMessages.from_json(
        [{"MessageID": message_id(text), "Text": text, "CreationDateTimeUTC": "2018-12-05T07:00:00+00:00",
          "Labels": labels} for text, labels in messages.items()],
        path=f"Coded Coda Files/{name}",
    )


def _message(config, run, show: str, text: str, *, noise: bool = False, surveys: dict[str, str] | None = None,
             suggestions: dict[str, str] | None = None) -> Record:
    """A message as stage 3 holds it before the manual codes: NA for other shows, own show uncoded; survey
    answers with ids, NA where unanswered, and any unchecked auto-code suggestions."""
    surveys = surveys or {}
    suggestions = suggestions or {}
    label_time = run.label_time
    data: dict[str, Any] = {"uid": "u1", "noise": noise}
    for plan in config.rqa_plans:
        if plan.name == show:
            data[plan.raw_field] = text
            if not noise:
                data[plan.id_field] = message_id(text)
        else:
            data[plan.coded_field] = [control_label(plan.scheme, "NA", origin_id="na", label_time=label_time)]
            if plan.binary is not None:
                data[plan.binary.coded_field] = control_label(plan.binary.scheme, "NA", origin_id="na",
                                                              label_time=label_time)
    for plan in config.survey_plans:
        answer = surveys.get(plan.raw_field)
        if answer is None:
            data[plan.coded_field] = control_label(plan.scheme, "NA", origin_id="na", label_time=label_time)
            continue
        data[plan.raw_field] = answer
        data[plan.id_field] = message_id(answer)
        if plan.name in suggestions:
            code = plan.scheme.code_for_match_value(suggestions[plan.name])
            data[plan.coded_field] = make_label(plan.scheme, code, origin_id="cleaner", label_time=label_time)
    return Record.create(run.step("test/load"), data)


def _value(record, field: str, scheme) -> str:
    return scheme.code_by_id(record[field]["CodeID"]).string_value


def test_reasons_from_duplicate_schemes_are_all_kept(config, run):
    """A checked reason under the scheme and another under its duplicate ``-1`` both land in the list."""
    plan = config.rqa_plan("s01e01")
    text = "we need water and schools"
    coded = _coded("s01e01.json", {text: [
        _coder_label(plan.scheme, "access_to_water", scheme_id=plan.scheme.scheme_id + "-1"),
        _coder_label(plan.scheme, "access_to_education"),
    ]})
    [result] = apply_manual_codes([_message(config, run, "s01e01", text)], config=config, run=run,
                                  coded_files={"s01e01.json": coded})
    assert [plan.scheme.code_by_id(lab["CodeID"]).string_value for lab in result["rqa_s01e01_coded"]] == [
        "access_to_education", "access_to_water"]


def test_unchecked_reasons_are_not_reviewed(config, run):
    """Reasons nobody checked become [NR]."""
    plan = config.rqa_plan("s01e04")
    text = "peace first"
    coded = _coded("s01e04.json", {text: [_coder_label(plan.scheme, "peace_and_security", checked=False)]})
    [result] = apply_manual_codes([_message(config, run, "s01e04", text)], config=config, run=run,
                                  coded_files={"s01e04.json": coded})
    assert [plan.scheme.code_by_id(lab["CodeID"]).string_value for lab in result["rqa_s01e04_coded"]] == ["NR"]


def test_binary_scheme_is_read_from_the_same_file(config, run):
    """The show's binary question comes from the show's file; its reasons too; the other shows stay NA."""
    plan = config.rqa_plan("s01e02")
    text = "they should go home"
    coded = _coded("s01e02.json", {text: [_coder_label(plan.binary.scheme, "return"),
                                          _coder_label(plan.scheme, "return_other")]})
    [result] = apply_manual_codes([_message(config, run, "s01e02", text)], config=config, run=run,
                                  coded_files={"s01e02.json": coded})
    assert _value(result, "rqa_s01e02_integrate_return_coded", plan.binary.scheme) == "return"
    assert [plan.scheme.code_by_id(lab["CodeID"]).string_value for lab in result["rqa_s01e02_coded"]] == ["return_other"]
    s03 = config.rqa_plan("s01e03")
    assert _value(result, "rqa_s01e03_yes_no_amb_coded", s03.binary.scheme) == "NA"


def test_missing_coded_file_means_nothing_is_reviewed(config, run):
    """A show whose file is not in the mapping is NR, reasons and binary alike."""
    plan = config.rqa_plan("s01e03")
    [result] = apply_manual_codes([_message(config, run, "s01e03", "some long text")], config=config, run=run,
                                  coded_files={})
    assert [plan.scheme.code_by_id(lab["CodeID"]).string_value for lab in result["rqa_s01e03_coded"]] == ["NR"]
    assert _value(result, "rqa_s01e03_yes_no_amb_coded", plan.binary.scheme) == "NR"


def test_noise_is_not_coded(config, run):
    """A noise message's own show becomes [NC] and its binary NC, even if its text was coded; others stay NA."""
    plan = config.rqa_plan("s01e02")
    text = "ok"
    coded = _coded("s01e02.json", {text: [_coder_label(plan.scheme, "same_identity")]})
    [result] = apply_manual_codes([_message(config, run, "s01e02", text, noise=True)], config=config, run=run,
                                  coded_files={"s01e02.json": coded})
    [label] = result["rqa_s01e02_coded"]
    assert plan.scheme.code_by_id(label["CodeID"]).string_value == "NC"
    assert label["Origin"]["OriginID"] == NOISE_NOT_CODED_ORIGIN
    assert label["DateTimeUTC"] == run.label_time
    assert _value(result, "rqa_s01e02_integrate_return_coded", plan.binary.scheme) == "NC"
    assert [config.rqa_plan("s01e01").scheme.code_by_id(lab["CodeID"]).string_value
            for lab in result["rqa_s01e01_coded"]] == ["NA"]


def test_survey_labels_checked_count_and_suggestions_become_nr(config, run):
    """A checked survey label stands; an unchecked auto-code suggestion becomes NR; an unanswered one stays NA."""
    gender = next(p for p in config.survey_plans if p.name == "gender")
    age = next(p for p in config.survey_plans if p.name == "age")
    message = _message(config, run, "s01e01", "text of the show", surveys={"gender_raw": "naag", "age_raw": "25"},
                       suggestions={"gender": "female", "age": "25"})
    files = {"gender.json": _coded("gender.json", {"naag": [_coder_label(gender.scheme, "female")]}),
             "age.json": _coded("age.json", {"25": [_coder_label(age.scheme, "25", checked=None)]})}
    [result] = apply_manual_codes([message], config=config, run=run, coded_files=files)
    assert _value(result, "gender_coded", gender.scheme) == "female"
    assert result["gender_coded"]["Checked"] is True
    assert _value(result, "age_coded", age.scheme) == "NR"
    assert _value(result, "idp_camp_coded", next(p for p in config.survey_plans if p.name == "idp_camp").scheme) == "NA"


def test_location_levels_read_location_json_each_with_its_own_scheme(config, run):
    """The five location plans import from location.json by exact SchemeID."""
    plans = {p.name: p for p in config.survey_plans}
    answer = "baydhabo"
    coded = _coded("location.json", {answer: [_coder_label(plans["district"].scheme, "baidoa")]})
    message = _message(config, run, "s01e01", "text of the show", surveys={"mogadishu_sub_district_raw": answer},
                       suggestions={"district": "baidoa"})
    [result] = apply_manual_codes([message], config=config, run=run, coded_files={"location.json": coded})
    assert _value(result, "district_coded", plans["district"].scheme) == "baidoa"
    for name in ("mogadishu_sub_district", "region", "state", "zone"):
        assert _value(result, plans[name].coded_field, plans[name].scheme) == "NR"


def test_each_record_gets_one_update_and_order_is_kept(config, run):
    """The step writes one audit layer per record, and records keep their order."""
    messages = [_message(config, run, "s01e01", "first text here"), _message(config, run, "s01e04", "x", noise=True)]
    result = apply_manual_codes(messages, config=config, run=run, coded_files={})
    assert [len(r.layers) for r in result] == [2, 2]
    assert [r.layers[-1].step.source for r in result] == ["generate/manual_codes"] * 2
    assert result[0]["rqa_s01e01_raw"] == "first text here"
    assert result[1]["rqa_s01e04_raw"] == "x"


def test_unknown_code_in_a_coded_file_names_file_and_message(config, run):
    """A coder label with a CodeID the scheme lacks is an error naming the coded file and the message."""
    plan = next(p for p in config.survey_plans if p.name == "gender")
    bad = {**_coder_label(plan.scheme, "male"), "CodeID": "code-unknown"}
    message = _message(config, run, "s01e01", "text of the show", surveys={"gender_raw": "lab"})
    with pytest.raises(CodaFileError, match=r"Coded Coda Files/gender.json: record MessageID"):
        apply_manual_codes([message], config=config, run=run,
                           coded_files={"gender.json": _coded("gender.json", {"lab": [bad]})})


def test_survey_codes_reach_every_respondent_with_that_answer(config, run):
    """Records sharing an answer get its coded label; a different answer or an unanswered survey gets its own."""
    gender = next(p for p in config.survey_plans if p.name == "gender")
    files = {"gender.json": _coded("gender.json", {"naag": [_coder_label(gender.scheme, "female")],
                                                   "lab": [_coder_label(gender.scheme, "male", checked=False)]})}
    messages = [
        _message(config, run, "s01e01", "one text here", surveys={"gender_raw": "naag"}, suggestions={"gender": "female"}),
        _message(config, run, "s01e02", "two text here", surveys={"gender_raw": "lab"}, suggestions={"gender": "male"}),
        _message(config, run, "s01e03", "three text here"),
        _message(config, run, "s01e04", "four text here", surveys={"gender_raw": "naag"}, suggestions={"gender": "female"}),
    ]
    result = apply_manual_codes(messages, config=config, run=run, coded_files=files)
    assert [_value(r, "gender_coded", gender.scheme) for r in result] == ["female", "NR", "NA", "female"]
    assert result[0]["gender_coded"] is result[3]["gender_coded"]
    assert result[2]["gender_coded"] is messages[2]["gender_coded"]


def test_the_first_problem_reported_is_that_of_the_earliest_import(config, run):
    """With bad codes in two shows' files, the error names the first show's file (imports run show by show),
    even when the other show's bad message comes first."""
    s01e01, s01e02 = config.rqa_plan("s01e01"), config.rqa_plan("s01e02")
    bad_one = {**_coder_label(s01e01.scheme, "land"), "CodeID": "code-unknown-1"}
    bad_two = {**_coder_label(s01e02.scheme, "same_identity"), "CodeID": "code-unknown-2"}
    messages = [_message(config, run, "s01e02", "second show text"), _message(config, run, "s01e01", "first show")]
    files = {"s01e01.json": _coded("s01e01.json", {"first show": [bad_one]}),
             "s01e02.json": _coded("s01e02.json", {"second show text": [bad_two]})}
    with pytest.raises(CodaFileError, match=r"Coded Coda Files/s01e01.json: .*code-unknown-1"):
        apply_manual_codes(messages, config=config, run=run, coded_files=files)


def test_messages_sharing_a_text_share_the_merged_list(config, run):
    """Two messages with one coded text get the same list object; a binary show's binary field is merged too."""
    plan = config.rqa_plan("s01e02")
    text = "they are our brothers"
    coded = _coded("s01e02.json", {text: [_coder_label(plan.scheme, "same_identity"),
                                          _coder_label(plan.binary.scheme, "integrate")]})
    messages = [_message(config, run, "s01e02", text), _message(config, run, "s01e02", text)]
    first, second = apply_manual_codes(messages, config=config, run=run, coded_files={"s01e02.json": coded})
    assert [_value_of(label, plan.scheme) for label in first[plan.coded_field]] == ["same_identity"]
    assert first[plan.coded_field] is second[plan.coded_field]
    assert _value(first, plan.binary.coded_field, plan.binary.scheme) == "integrate"
    assert list(first.layers[-1].data)[:2] == [plan.coded_field, plan.binary.coded_field]


def _value_of(label, scheme) -> str:
    return scheme.code_by_id(label["CodeID"]).string_value


def test_a_show_problem_is_reported_before_a_survey_problem(config, run):
    """The shows are imported before the surveys: a bad show code is reported even when a bad survey code
    belongs to an earlier message."""
    gender = next(p for p in config.survey_plans if p.name == "gender")
    s01e04 = config.rqa_plan("s01e04")
    bad_gender = {**_coder_label(gender.scheme, "male"), "CodeID": "code-unknown-gender"}
    bad_show = {**_coder_label(s01e04.scheme, "NA"), "CodeID": "code-unknown-show"}
    messages = [_message(config, run, "s01e01", "first message", surveys={"gender_raw": "lab"}),
                _message(config, run, "s01e04", "later message")]
    files = {"gender.json": _coded("gender.json", {"lab": [bad_gender]}),
             "s01e04.json": _coded("s01e04.json", {"later message": [bad_show]})}
    with pytest.raises(CodaFileError, match=r"Coded Coda Files/s01e04.json: .*code-unknown-show"):
        apply_manual_codes(messages, config=config, run=run, coded_files=files)
    del files["s01e04.json"]
    with pytest.raises(CodaFileError, match=r"Coded Coda Files/gender.json: .*code-unknown-gender"):
        apply_manual_codes(messages, config=config, run=run, coded_files=files)


def test_progress_counts_leave_out_missing_answers_as_the_coda_file_does(config, run):
    """The "manual codes" progress line counts, per Coda dataset, the exported messages with a code and the NR
    ones among them. An empty survey answer has a message id but is a missing answer (NA), which gender.json
    leaves out (coda.md 4, rule 4), so it is counted nowhere. Hand-worked: a checked "male", an unchecked
    suggestion (NR after the import) and an empty answer give 2 messages, 1 of them NR."""
    gender = next(plan for plan in config.survey_plans if plan.coda_file == "gender.json")
    step = run.step("test")

    def message(answer: str, code: str) -> Record:
        scheme = gender.scheme
        label = (control_label(scheme, code, origin_id="test", label_time=run.label_time) if code in ("NA", "NR")
                 else make_label(scheme, next(c for c in scheme.codes if c.string_value == code),
                                 origin_id="test", label_time=run.label_time, checked=True))
        return Record.create(step, {"uid": "u", gender.raw_field: answer, gender.id_field: message_id(answer),
                                    gender.coded_field: label})

    counts: dict[str, list[int]] = {}
    CodedMessageCounts(config).count([message("male", "male"), message("mwl", "NR"), message("", "NA")], counts)
    assert counts["gender.json"] == [2, 1]
    assert counts["s01e01.json"] == [0, 0]  # no message of the chunk was exported to it
