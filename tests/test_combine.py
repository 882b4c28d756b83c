"""Show messages combined with their senders' survey records (pipeline.md 7.2)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from redss_pipeline.core.config import load_config
from redss_pipeline.core.errors import RawDataError
from redss_pipeline.core.records import Record
from redss_pipeline.core.run_context import RunContext
from redss_pipeline.generate.combine import combine_shows_and_surveys, show_flows, survey_flows

CONFIG = load_config()
RUN = RunContext("tester@example.org", datetime(2019, 1, 20, tzinfo=timezone.utc))
LOAD = RUN.step("test/load")


def _show(uid: str, n: int, text: str, **extra) -> Record:
    flow = f"csap_s01e0{n}_activation"
    return Record.create(LOAD, {"avf_phone_id": uid, f"Rqa_S01E0{n} (Value) - {flow}": text, **extra})


def _demog(uid: str, gender: str, **extra) -> Record:
    return Record.create(LOAD, {"avf_phone_id": uid, "Gender (Value) - csap_demog": gender, **extra})


def _evaluation(uid: str, repeated: str) -> Record:
    return Record.create(LOAD, {"avf_phone_id": uid, "Repeated (Value) - csap_evaluation": repeated})


def test_flows_come_from_the_configuration():
    """Shows are the RQA plans' flows in plan order; surveys the other flows in configuration order."""
    assert show_flows(CONFIG) == tuple(f"csap_s01e0{n}_activation" for n in range(1, 5))
    assert survey_flows(CONFIG) == ("csap_demog", "csap_evaluation")


def test_show_records_are_concatenated_in_plan_order():
    """Messages come out in flow order s01e01..s01e04, each file in its own order."""
    files = [[_show("u1", 1, "a"), _show("u2", 1, "b")], [_show("u1", 2, "c")], [], [_show("u3", 4, "d")]]
    combined = combine_shows_and_surveys(files, [[], []], config=CONFIG, run=RUN)
    assert [r["avf_phone_id"] for r in combined] == ["u1", "u2", "u1", "u3"]
    assert combined[2]["Rqa_S01E02 (Value) - csap_s01e02_activation"] == "c"


def test_survey_keys_are_readable_through_every_message_of_the_respondent():
    """Both surveys' answers are attached to each of the sender's messages, sharing one record object."""
    demog = _demog("u1", "female")
    files = [[_show("u1", 1, "a")], [_show("u1", 2, "b")], [_show("u2", 3, "c")], []]
    combined = combine_shows_and_surveys(files, [[demog], [_evaluation("u1", "yes")]], config=CONFIG, run=RUN)
    assert combined[0]["Gender (Value) - csap_demog"] == "female"
    assert combined[1]["Repeated (Value) - csap_evaluation"] == "yes"
    assert "Gender (Value) - csap_demog" not in combined[2]
    shared = [next(layer.data["csap_demog"] for layer in r.layers if "csap_demog" in layer.data) for r in combined[:2]]
    assert shared[0] is demog and shared[1] is demog


def test_history_says_which_survey_a_value_came_through():
    """The audit trail marks a survey value with the survey's flow name."""
    combined = combine_shows_and_surveys(
        [[_show("u1", 1, "a")], [], [], []], [[_demog("u1", "male")], []], config=CONFIG, run=RUN
    )
    (change,) = combined[0].history("Gender (Value) - csap_demog")
    assert (change.value, change.via) == ("male", "csap_demog")


def test_respondent_with_surveys_but_no_message_is_left_out():
    """Survey-only respondents produce no record."""
    combined = combine_shows_and_surveys(
        [[_show("u1", 1, "a")], [], [], []], [[_demog("u1", "m"), _demog("u9", "f")], []], config=CONFIG, run=RUN
    )
    assert [r["avf_phone_id"] for r in combined] == ["u1"]


def test_respondent_twice_in_one_survey_is_an_error():
    """A uid appearing twice in one survey list names the flow's file and the uid."""
    with pytest.raises(RawDataError, match=r"Raw Data/csap_evaluation.json: record u7: .*twice in the csap_evaluation"):
        combine_shows_and_surveys(
            [[], [], [], []], [[], [_evaluation("u7", "yes"), _evaluation("u7", "no")]], config=CONFIG, run=RUN
        )


def test_equal_common_keys_are_accepted():
    """A test_run flag present on both the message and the survey record with the same value is fine."""
    combined = combine_shows_and_surveys(
        [[_show("u1", 1, "a", test_run=True)], [], [], []],
        [[_demog("u1", "m", test_run=True)], []],
        config=CONFIG,
        run=RUN,
    )
    assert combined[0]["test_run"] is True


def test_different_common_keys_are_an_error():
    """A key the message and the survey record both hold with different values is an error naming both."""
    with pytest.raises(RawDataError, match=r"record u1: field 'test_run': the csap_demog survey record"):
        combine_shows_and_surveys(
            [[_show("u1", 1, "a", test_run=False)], [], [], []],
            [[_demog("u1", "m", test_run=True)], []],
            config=CONFIG,
            run=RUN,
        )


def test_wrong_number_of_files_is_refused():
    """The caller must pass one list per configured flow."""
    with pytest.raises(ValueError, match="expected 4 show files"):
        combine_shows_and_surveys([[]], [[], []], config=CONFIG, run=RUN)


def test_two_surveys_disagreeing_on_a_shared_key_is_an_error():
    """The evaluation record must agree with the demographics record on keys both hold."""
    demog = _demog("u1", "m", test_run=True)
    evaluation = Record.create(LOAD, {"avf_phone_id": "u1", "test_run": False})
    with pytest.raises(RawDataError, match=r"field 'test_run': the csap_evaluation survey record .* the csap_demog survey record"):
        combine_shows_and_surveys([[_show("u1", 1, "a")], [], [], []], [[demog], [evaluation]], config=CONFIG, run=RUN)
