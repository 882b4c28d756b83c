"""The demo's simulated coder: truth from the workspace's answers, seeded mistakes, Coda's label layout."""

from __future__ import annotations

from redss_pipeline.demo.simulated_coder import (
    CoderProfile,
    code_dataset,
    dataset_roles,
    truth_codes,
)
from redss_pipeline.export.coda import message_id


def _message(text: str, labels=()) -> dict:
    return {"MessageID": message_id(text), "Text": text, "CreationDateTimeUTC": "2018-12-08T21:00:00+00:00",
            "Labels": list(labels)}


def _codes(config, message: dict, scheme_name: str) -> list[str]:
    scheme = config.schemes[scheme_name]
    return [scheme.code_by_id(label["CodeID"]).string_value for label in message["Labels"]
            if label["SchemeID"].startswith(scheme.scheme_id)]


def test_truth_ignores_greetings_and_sign_offs():
    assert truth_codes("s01e02", "Asc waa in la dhex geeyo bulshada maxaa yeelay waa walaalaheen mahadsanid") == (
        ("same_identity",), "integrate")
    assert truth_codes("s01e01", "something nobody said") is None


def test_a_perfect_coder_writes_the_truth_as_checked_manual_labels(config):
    """error 0, skip 0: every message gets exactly its meaning; several codes go under duplicate SchemeIDs."""
    roles = dataset_roles(config)["s01e01.json"]
    messages = [_message("They need shelter and clean water"), _message("hello there")]
    coded = code_dataset(messages, roles, profile=CoderProfile(error=0, skip=0))
    assert sorted(_codes(config, coded[0], "s01e01")) == ["access_to_water", "shelter"]
    assert _codes(config, coded[1], "s01e01") == ["NC"]
    label = coded[0]["Labels"][0]
    assert label["Checked"] is True and label["Origin"]["OriginType"] == "Manual"
    assert {lab["SchemeID"] for lab in coded[0]["Labels"]} == {"Scheme-d7eb83ef", "Scheme-d7eb83ef-1"}


def test_survey_suggestions_are_confirmed_and_binary_questions_coded(config):
    roles = dataset_roles(config)["s01e02.json"]
    coded = code_dataset([_message("diinteena ayaa na fareysa inaan soo dhaweyno")], roles,
                         profile=CoderProfile(error=0, skip=0))
    assert _codes(config, coded[0], "s01e02_reasons") == ["religion_commands_it"]
    assert _codes(config, coded[0], "s01e02_integrate_return") == ["integrate"]
    gender = config.schemes["gender"]
    suggestion = {"SchemeID": gender.scheme_id, "CodeID": gender.normal_codes[1].code_id, "Checked": False,
                  "DateTimeUTC": "2019-01-01T00:00:00.000000+00:00",
                  "Origin": {"OriginID": "x", "Name": "Pipeline Auto-Coder", "OriginType": "External"}}
    coded = code_dataset([_message("naag", [suggestion])], dataset_roles(config)["gender.json"],
                         profile=CoderProfile(error=0, skip=0))
    assert coded[0]["Labels"][0]["Checked"] is True
    assert coded[0]["Labels"][1] == suggestion  # the coder's label is prepended, nothing removed


def test_mistakes_and_skips_follow_the_seed_and_the_shares(config):
    roles = dataset_roles(config)["s01e04.json"]
    messages = [_message(f"in loo dhiso guryo joogto ah {i}") for i in range(400)]
    profile = CoderProfile(seed=3, error=0.2, skip=0.1)
    first = code_dataset(messages, roles, profile=profile)
    assert first == code_dataset(messages, roles, profile=profile)
    skipped = sum(1 for m in first if not m["Labels"])
    wrong = sum(1 for m in first if m["Labels"] and _codes(config, m, "s01e04") != ["build_housing"])
    assert 20 <= skipped <= 60 and 45 <= wrong <= 110
    assert code_dataset(messages, roles, profile=CoderProfile(seed=4, error=0.2, skip=0.1)) != first
