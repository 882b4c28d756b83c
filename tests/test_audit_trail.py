"""The compact audit trail, Outputs/traced_data.json (spec pipeline.md section 7.8)."""

from __future__ import annotations

import hashlib
import json
import os
import random

import pytest

from redss_pipeline.core.audit_trail import (
    AuditTrail,
    AuditTrailError,
    AuditTrailWriter,
    encode_segment,
)
from redss_pipeline.core.records import Record, Step

RUN = 1550000000.0
STEP_NAMES = [
    "fetch/csap_s01e01_activation", "fetch/csap_demog", "combine/demog", "translate/show_ids", "translate/rename",
    "translate/raw_keys", "autocode/noise", "autocode/na_labels", "autocode/channels", "autocode/message_ids",
    "autocode/surveys", "autocode/operator", "manual/rqa", "manual/surveys", "manual/locations",
    "analysis/default_consent", "analysis/survey_columns", "analysis/binary", "analysis/matrix",
    "analysis/consent", "analysis/withdrawn_consent",
]
STEPS = {name: Step("analyst@example.org", name, RUN + i) for i, name in enumerate(STEP_NAMES)}
SURVEY_KEYS = ["gender", "mogadishu_sub_district", "age", "idp_camp", "recently_displaced", "hh_language"]
REASONS = [f"reason_{i:02d}" for i in range(16)]
# The 90 "0"/"1" matrix keys stage 3 wrote before the shows' codes were lists (the format-1 file holds them).
MATRIX = sorted(f"rqa_s01e0{show}_{code}" for show in range(1, 5)
                for code in ["NA", "NC", "NIC", "NR", "NS", "STOP", "WS", *REASONS])[:90]
AUTO = {"OriginID": "redss_pipeline.cleaners.gender@1", "Name": "Pipeline Auto-Coder", "OriginType": "External"}
CODER = {"OriginID": "coder.a@example.org", "Name": "Coder A", "OriginType": "Manual"}
FLOW = " - csap_s01e01_activation"


def label(scheme: str, code: str, when: str, checked: bool, origin: dict) -> dict:
    return {"SchemeID": scheme, "CodeID": code, "DateTimeUTC": when, "Checked": checked, "Origin": dict(origin)}


def iso(rng: random.Random, month: str) -> str:
    return f"{month}-{rng.randint(2, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999999):06d}Z"


def respondent(rng: random.Random, withdrawn: bool = False, matrix_keys: bool = False) -> list[Record]:
    """Three message records of one respondent as stage 3 leaves them: raw run, an attached survey record
    shared by the three, ~20 layers and ~120 keys, the shows' codes as four lists written in one layer (with
    ``matrix_keys``, as 90 "0"/"1" keys instead, as stage 3 wrote them before)."""
    phone = f"avf-phone-uuid-{rng.getrandbits(128):032x}"
    answered = iso(rng, "2018-12")
    answers = {q: rng.choice(["f", "m", "25", "hodan", "yes", "no", "somali", "haa", "maya"]) for q in SURVEY_KEYS}
    survey_data = {"avf_phone_id": phone, "created_on": answered, "exit_type": "completed"}
    for q in SURVEY_KEYS:
        name = q.title()
        survey_data |= {f"{name} (Category) - csap_demog": "All Responses", f"{name} (Value) - csap_demog": answers[q],
                        f"{name} (Text) - csap_demog": answers[q], f"{name} (Name) - csap_demog": name,
                        f"{name} (Time) - csap_demog": answered, f"{name} (Run ID) - csap_demog": rng.randint(10**7, 10**8)}
    survey = Record.create(STEPS["fetch/csap_demog"], survey_data)
    messages = []
    for _ in range(3):
        text = " ".join(rng.choice(["waxaan", "rabaa", "nabad", "dowlad", "shaqo", "caafimaad", "guri", "noo"])
                        for _ in range(rng.randint(3, 9)))
        sent = iso(rng, "2018-12")
        run_id = rng.randint(10**7, 10**8)
        codes = rng.sample(range(16), rng.choice([1, 1, 2]))
        coded_at = iso(rng, "2019-01")
        na = label("Scheme-na", "code-NA-3f1a", "2019-02-01T00:00:00+00:00", False, AUTO)
        record = Record.create(STEPS["fetch/csap_s01e01_activation"], {
            "avf_phone_id": phone, "Rqa_S01E01 (Category)" + FLOW: "All Responses", "Rqa_S01E01 (Value)" + FLOW: text,
            "Rqa_S01E01 (Text)" + FLOW: text, "Rqa_S01E01 (Name)" + FLOW: "Rqa_S01E01", "Rqa_S01E01 (Time)" + FLOW: sent,
            "Rqa_S01E01 (Run ID)" + FLOW: run_id, "created_on": sent, "modified_on": sent, "exited_on": sent,
            "exit_type": "completed"})
        updates = [
            ("translate/show_ids", {"rqa_message": text, "show_id": 1}),
            ("translate/rename", {"uid": phone, "rqa_s01e01_run_id": run_id, "sent_on": sent}
             | {f"{q}_raw": answers[q] for q in SURVEY_KEYS} | {f"{q}_time": answered for q in SURVEY_KEYS}),
            ("translate/raw_keys", {"rqa_s01e01_raw": text}),
            ("autocode/noise", {"noise": False}),
            ("autocode/na_labels", {f"rqa_s01e0{s}_coded": [na] for s in (2, 3, 4)}
             | {"rqa_s01e02_integrate_return_coded": na, "rqa_s01e03_yes_no_amb_coded": na}),
            ("autocode/channels", {"sms_ad": "false", "radio_promo": "false", "radio_show": "true", "non_logical_time": "false"}
             | {f"radio_participation_s01e0{s}": "true" if s == 1 else "false" for s in range(1, 5)}),
            ("autocode/message_ids", {"rqa_s01e01_raw_id": hashlib.sha256(text.encode()).hexdigest()}
             | {f"{q}_raw_id": hashlib.sha256(answers[q].encode()).hexdigest() for q in SURVEY_KEYS}),
            ("autocode/surveys", {f"{q}_coded": label(f"Scheme-{q}", f"code-{answers[q]}", "2019-02-01T00:00:00+00:00", False, AUTO)
                                  for q in SURVEY_KEYS}),
            ("autocode/operator", {"operator_coded": label("Scheme-op", "code-hormud", "2019-02-01T00:00:00+00:00", False, AUTO)}),
            ("manual/rqa", {"rqa_s01e01_coded": [label("Scheme-s01e01" + (f"-{i}" if i else ""), f"code-r{c}", coded_at, True, CODER)
                                                 for i, c in enumerate(codes)]}),
            ("manual/surveys", {f"{q}_coded": label(f"Scheme-{q}", f"code-{answers[q]}", "2019-01-15T10:00:00.000Z", True, CODER)
                                for q in SURVEY_KEYS}),
            ("manual/locations", {f"{level}_coded": label(f"Scheme-{level}", "code-hodan", "2019-02-01T00:00:00+00:00", False, AUTO)
                                  for level in ["mogadishu_sub_district", "district", "region", "state", "zone"]}),
            ("analysis/default_consent", {"consent_withdrawn": "false"}),
            ("analysis/survey_columns", answers | {"district": "mogadishu", "region": "banadir", "state": "banadir",
                                                   "zone": "scz", "repeated": "yes", "involved": "no", "operator": "hormud"}),
            ("analysis/binary", {"rqa_s01e02_integrate_return": "NA", "rqa_s01e03_yes_no": "NA"}),
            ("analysis/matrix", {key: "1" if any(MATRIX[c] == key for c in codes) else "0" for key in MATRIX}
             if matrix_keys else {"rqa_s01e01_codes": [REASONS[c] for c in sorted(codes)]}
             | {f"rqa_s01e0{s}_codes": ["NA"] for s in (2, 3, 4)}),
        ]
        record = record.updated(STEPS["combine/demog"], {"demog_survey": survey})
        for step_name, data in updates:
            record = record.updated(STEPS[step_name], data)
        if withdrawn:
            record = record.updated(STEPS["analysis/consent"], {"consent_withdrawn": "true"})
            record = record.updated(STEPS["analysis/withdrawn_consent"], {k: "STOP" for k in record if k != "consent_withdrawn"})
        messages.append(record)
    return messages


@pytest.fixture(scope="module")
def people() -> list[list[Record]]:
    rng = random.Random(7)
    return [respondent(rng, withdrawn=(i == 5)) for i in range(200)]


@pytest.fixture(scope="module")
def trail_path(people, tmp_path_factory):
    path = tmp_path_factory.mktemp("outputs") / "traced_data.json"
    write_in_segments(path, [[m for messages in people for m in messages]])
    return path


def test_realistic_records_cost_under_one_kilobyte_each(people, trail_path):
    """~20 layers and ~120 keys per message, survey shared by 3 messages: under 1 KB per message on disk."""
    message = people[0][0]
    assert 18 <= len(message.layers) <= 22 and 110 <= len(message) <= 130
    records = sum(len(messages) for messages in people)
    assert os.path.getsize(trail_path) / records < 1024


def test_records_and_histories_come_back_equal(people, trail_path):
    """Every record read back equals the one written: values, layers, steps, and each key's history."""
    trail = AuditTrail.load(trail_path)
    written = [m for messages in people for m in messages]
    read = list(trail.records())
    assert len(trail) == len(read) == len(written)
    assert read == written
    for key in ("uid", "rqa_s01e01_raw", "gender_coded", "Gender (Value) - csap_demog", "rqa_s01e01_reason_03"):
        assert read[17].history(key) == written[17].history(key)


def test_records_for_returns_one_persons_messages_sharing_one_survey_record(people, trail_path):
    """The three messages of a person come back in order, their survey record written and rebuilt once."""
    trail = AuditTrail.load(trail_path)
    uid = people[3][0]["uid"]
    records = trail.records_for(uid)
    assert records == people[3]
    surveys = [r.layers[1].data["demog_survey"] for r in records]
    assert surveys[0] is surveys[1] is surveys[2]
    lines = trail_path.read_text(encoding="utf-8").splitlines()
    assert sum(line.startswith('["a",') for line in lines) == len(people)
    assert trail.records_for("avf-phone-uuid-unknown") == []


def test_withdrawn_participant_is_found_by_original_uid(people, trail_path):
    """A withdrawn record's uid reads STOP, yet it is indexed and explained under the uid it had."""
    withdrawn = people[5]
    original = withdrawn[0].history("uid")[0].value
    assert withdrawn[0]["uid"] == "STOP"
    trail = AuditTrail.load(trail_path)
    assert trail.records_for(original) == withdrawn
    assert "STOP" not in trail.ids()
    text = trail.explain(original, "uid")
    assert f'1. "{original}"' in text and '2. "STOP"' in text
    assert "step analysis/withdrawn_consent" in text and 'uid now "STOP"' in text


def test_explain_names_each_value_step_user_and_time(people, trail_path):
    """explain() lists each value a key took with its step, user and UTC time, and where it came from."""
    trail = AuditTrail.load(trail_path)
    record = people[9][1]
    text = trail.explain(record["uid"], "rqa_s01e01_raw")
    assert text.startswith(f'uid "{record["uid"]}", key \'rqa_s01e01_raw\': 3 record(s) in traced_data.json')
    assert f'1. {json.dumps(record["rqa_s01e01_raw"])}' in text
    assert "at 2019-02-12T19:33:25+00:00 by analyst@example.org, step translate/raw_keys" in text
    assert "same value earlier under 'Rqa_S01E01 (Value) - csap_s01e01_activation'" in text
    gender_time = trail.explain(record["uid"], "gender_time")
    assert ("same value earlier under 'created_on' through attached record 'demog_survey', "
            "at 2019-02-12T19:33:21+00:00 by analyst@example.org, step fetch/csap_demog") in gender_time
    survey_key = trail.explain(record["uid"], "Gender (Value) - csap_demog")
    assert "through attached record 'demog_survey'" in survey_key
    assert "key 'no_such_key' was never written in this record" in trail.explain(record["uid"], "no_such_key")


def test_explain_follows_a_value_through_each_step_that_changed_it(tmp_path):
    """A key changed by three steps is explained as three values, oldest first, each with its own step."""
    fetch = Step("fetcher@example.org", "fetch/csap_s01e01_activation", 1548000000.0)
    clean = Step("analyst@example.org", "autocode/noise", "2019-02-01T09:00:00+00:00")
    fix = Step("coder@example.org", "manual/rqa", 1549000000.5)
    record = (Record.create(fetch, {"uid": "u-1", "noise": "unknown"})
              .updated(clean, {"noise": True}).updated(fix, {"noise": False}))
    path = tmp_path / "traced_data.json"
    write_in_segments(path, [[record]])
    lines = AuditTrail.load(path).explain("u-1", "noise").splitlines()
    assert lines[3:10] == [
        '  1. "unknown"',
        "     at 2019-01-20T16:00:00+00:00 by fetcher@example.org, step fetch/csap_s01e01_activation",
        "  2. true",
        "     at 2019-02-01T09:00:00+00:00 by analyst@example.org, step autocode/noise",
        "  3. false",
        "     at 2019-02-01T05:46:40.500000+00:00 by coder@example.org, step manual/rqa",
        "  final value: false",
    ]


def test_explain_traces_a_value_to_earlier_writes_only(tmp_path):
    """A value is traced to a key an earlier write gave it (the raw answer), not to another key of its own write (two
    shows' codes both ["NA"] from one step)."""
    fetch = Step("fetcher@example.org", "fetch/csap_s01e01_activation", 1548000000.0)
    columns = Step("analyst@example.org", "generate/analysis_columns", 1549000000.0)
    record = (Record.create(fetch, {"uid": "u-1", "answer": ["NA"]})
              .updated(columns, {"rqa_s01e01_codes": ["NA"], "rqa_s01e02_codes": ["NA"]}))
    path = tmp_path / "traced_data.json"
    write_in_segments(path, [[record]])
    text = AuditTrail.load(path).explain("u-1", "rqa_s01e02_codes")
    assert "same value earlier under 'answer', at 2019-01-20T16:00:00+00:00 by fetcher@example.org" in text
    assert "same value earlier under 'rqa_s01e01_codes'" not in text


def test_unusual_values_survive_the_round_trip(tmp_path):
    """Numbers, booleans, null, nested and empty containers, -0.0 and repeated values come back unchanged."""
    step = Step("u", "s", 1.0)
    values = {"i": 1, "f": 1.0, "z": -0.0, "t": True, "n": None, "e": {}, "el": [], "nested": {"a": [1, [2, {"b": None}]]},
              "s": "1", "again": "1", "unicode": "Muqdisho \u2013 caafimaad"}
    records = [Record.create(step, values).updated(step, {"i": 2, "copy": values["nested"]}) for _ in range(3)]
    path = tmp_path / "traced_data.json"
    write_in_segments(path, [records], id_key="s")
    back = AuditTrail.load(path).records_for("1")
    assert back == records
    assert type(back[0]["f"]) is float and type(back[0]["t"]) is bool and str(back[2]["z"]) == "-0.0"
    # The file is UTF-8 text: a listener's characters are written as they are, not escaped.
    assert "Muqdisho \u2013 caafimaad" in path.read_text(encoding="utf-8")


def test_labels_met_again_far_apart_or_as_equal_copies_come_back_as_written(tmp_path):
    """A label shared by many messages comes back on each however many other labels came between its uses (the
    encoder remembers the recent labels of each place in a layer), and equal-looking copies holding 1, 1.0 or True keep their
    own type."""
    step = Step("u", "manual/rqa", 1.0)
    labels = [[{"CodeID": f"code-{n}", "Checked": True}] for n in range(40)]
    # Each label again after 39 others, then some after 4 to 33 others; the confidences are new objects each time.
    order = list(range(40)) * 3 + [0, 33, 5, 39, 12]
    confidences = (1, 1.0, True)
    records = [Record.create(step, {"uid": f"u{i}", "rqa_s01e01_coded": labels[n],
                                    "confidence": [{"CodeID": "code-x", "Confidence": confidences[i % 3]}]})
               for i, n in enumerate(order)]
    path = tmp_path / "traced_data.json"
    write_in_segments(path, [records])
    trail = AuditTrail.load(path)
    for i, record in enumerate(records):
        [back] = trail.records_for(f"u{i}")
        assert back == record
        assert type(back["confidence"][0]["Confidence"]) is type(confidences[i % 3])


def test_64_bit_integers_survive_the_round_trip(tmp_path):
    """Integers at both ends of the range the file holds (signed and unsigned 64 bits) come back unchanged."""
    step = Step("u", "s", 1.0)
    values = {"uid": "u1", "low": -(2**63), "high": 2**63 - 1, "unsigned": 2**64 - 1}
    path = tmp_path / "traced_data.json"
    write_in_segments(path, [[Record.create(step, values)]])
    assert AuditTrail.load(path).records_for("u1")[0].to_dict() == values


@pytest.mark.parametrize(("value", "problem"), [
    (float("nan"), "the number nan cannot be written as JSON"),
    (float("-inf"), "the number -inf cannot be written as JSON"),
    (2**64, f"the integer {2**64} is outside the range the file holds \\(64 bits\\)"),
    (-(2**63) - 1, f"the integer {-(2**63) - 1} is outside the range the file holds \\(64 bits\\)"),
    ("caafimaad \ud800", "a text holds a lone surrogate \\(not a character\\) and cannot be written"),
    (["ok", {"deep": "\udfff"}], "a text holds a lone surrogate \\(not a character\\) and cannot be written"),
])
def test_a_value_json_cannot_hold_is_refused_naming_its_key_and_step(tmp_path, value, problem):
    """Values the file does not hold are refused, naming the key and step, and no segment is written: NaN and
    infinities (not JSON), integers outside 64 bits and texts with a lone surrogate (a JSON file can spell one as
    \\ud800; it is not a character, so it has no UTF-8 form)."""
    step = Step("u", "generate/noise", 1.0)
    bad = Record.create(step, {"uid": "u1"}).updated(step, {"score": value})
    path = tmp_path / "traced_data.json"
    with pytest.raises(AuditTrailError, match=rf"^.*traced_data.json: record 0 of its chunk: {problem} under key "
                                              rf"'score', written by step 'generate/noise' \(its first uid was 'u1'\)$"):
        write_in_segments(path, [[bad]])
    assert '["segment"]' not in path.read_text(encoding="utf-8")


def test_a_key_or_step_the_file_cannot_hold_is_named(tmp_path):
    """A key with a lone surrogate is named with the step that wrote it; a step whose time is not a number JSON
    holds is named by its source."""
    path = tmp_path / "traced_data.json"
    step = Step("u", "generate/noise", 1.0)
    with pytest.raises(AuditTrailError, match=r"record 0 of its chunk: the key 'bad\\ud800key' holds a lone surrogate "
                                              r"\(not a character\) and cannot be written in a layer written by step "
                                              r"'generate/noise' \(its first uid was 'u1'\)$"):
        write_in_segments(path, [[Record.create(step, {"uid": "u1"}).updated(step, {"bad\ud800key": "x"})]])
    timeless = Step("u", "generate/noise", float("inf"))
    with pytest.raises(AuditTrailError, match=r"record 0 of its chunk: the number inf cannot be written as JSON in the "
                                              r"step 'generate/noise' by 'u' \(its first uid was 'u1'\)$"):
        write_in_segments(path, [[Record.create(step, {"uid": "u1"}).updated(timeless, {"noise": False})]])


def test_a_value_nested_too_deeply_is_refused_in_one_line(tmp_path):
    """A value nested deeper than the writer's JSON encoder goes is an AuditTrailError naming the record, not a
    crash."""
    deep: list = []
    for _ in range(300):
        deep = [deep]
    path = tmp_path / "traced_data.json"
    with pytest.raises(AuditTrailError, match=r"record 0 of its chunk: a value cannot be written as JSON \(.*\)"):
        write_in_segments(path, [[Record.create(Step("u", "s", 1.0), {"uid": "u1", "deep": deep})]])


def test_damaged_files_are_refused_with_the_line(tmp_path, people):
    """A truncated file, an unknown version or an unknown entry is refused, naming file and line."""
    path = tmp_path / "traced_data.json"
    write_in_segments(path, [people[0]])
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    path.write_text("".join(lines[:-2]), encoding="utf-8")
    with pytest.raises(AuditTrailError, match=r"traced_data.json: line \d+: truncated: no end entry"):
        AuditTrail.load(path)
    path.write_text(text.replace('"redss-audit-trail",2,', '"redss-audit-trail",3,'), encoding="utf-8")
    with pytest.raises(AuditTrailError, match=r"line 2: format version 3 is not supported \(this pipeline reads versions 1, 2\)"):
        AuditTrail.load(path)
    path.write_text("".join(lines[:3] + ['["x",1],\n'] + lines[3:]), encoding="utf-8")
    with pytest.raises(AuditTrailError, match=r"line 4: malformed entry \(ValueError: unknown entry tag 'x'\)"):
        AuditTrail.load(path)
    path.write_text("".join(lines[:2] + lines[3:]), encoding="utf-8")
    with pytest.raises(AuditTrailError, match=r"line 3: an entry 's' before the first segment"):
        AuditTrail.load(path)
    path.write_text('{"not": "a trail"}\n', encoding="utf-8")
    with pytest.raises(AuditTrailError, match=r"line 1: not an audit trail"):
        AuditTrail.load(path)
    # The 2019 pipeline's traced_data.json: records dumped by jsonpickle, an indented list.
    path.write_text('[\n  {\n    "py/object": "core_data_modules.traced_data.TracedData"\n  }\n]\n', encoding="utf-8")
    with pytest.raises(AuditTrailError, match=r"line 2: not an audit trail header \(expected \['redss-audit-trail', "
                                              r"version, options\]\); a traced_data.json of the 2019 pipeline is not "
                                              r"one: stage 3 writes one$"):
        AuditTrail.load(path)
    path.write_text("", encoding="utf-8")
    with pytest.raises(AuditTrailError, match=r"line 1: the file is empty \(a partial copy, or a write that failed\): run stage 3 again$"):
        AuditTrail.load(path)
    cut = len("".join(lines[:6])) + 5  # five characters into the seventh line
    path.write_text(text[:cut], encoding="utf-8")
    with pytest.raises(AuditTrailError, match=r"line 7: truncated in the middle of an entry \(a partial copy"):
        AuditTrail.load(path)
    path.write_text(text.replace('"redss-audit-trail",2,{"id_key":"uid"}', '"redss-audit-trail",3,{"id_key":"uid"},[]'),
                    encoding="utf-8")
    with pytest.raises(AuditTrailError, match=r"line 2: format version 3 is not supported"):
        AuditTrail.load(path)


def test_explain_of_an_unknown_uid_is_an_error(trail_path):
    """Asking about a uid that is not in the file says so, naming the file (not the uid: one given in the wrong
    place may be a phone number; the command line shows the uids it may)."""
    with pytest.raises(AuditTrailError, match=r"traced_data.json: no record whose uid was the one asked for$"):
        AuditTrail.load(trail_path).explain("avf-phone-uuid-nobody", "gender")


def test_equal_survey_records_built_apart_are_written_once(tmp_path):
    """The writer recognises an attached record by its value: two equal survey records made separately (as a
    streamed stage builds them) are written once and both messages read back with it."""
    step = Step("u", "s", 1.0)
    surveys = [Record.create(step, {"uid": "a", "gender": "f"}).updated(Step("u", "clean", 2.0), {"gender": "female"})
               for _ in range(2)]
    messages = [Record.create(step, {"text": f"m{i}"}).updated(step, {"survey": survey})
                for i, survey in enumerate(surveys)]
    path = tmp_path / "traced_data.json"
    write_in_segments(path, [messages])
    assert sum(line.startswith('["a",') for line in path.read_text(encoding="utf-8").splitlines()) == 1
    assert AuditTrail.load(path).records_for("a") == messages


def test_a_layer_shared_by_records_is_written_as_its_equal_copies_are():
    """Steps share one layer object between the records they write the same values on; the writer recognises
    such a layer by its object, among the last few of its shape. The bytes are the same as for records holding
    equal copies, with more shared layers of one shape than it looks through, met in turns, and with labels."""
    step, shared_step = Step("u", "fetch", 1.0), Step("u", "columns", 2.0)
    label_of = [{"CodeID": f"code-{n}", "Checked": n % 2 == 0} for n in range(12)]

    def columns(n: int) -> dict:
        return {"a": str(n), "b": "0", "c": "1", "label": label_of[n]}

    sources = [Record.create(shared_step, columns(n)) for n in range(12)]  # their layers are shared below
    # Each of the 12 met again after the 11 others (beyond the last 8 looked through), then some met again soon.
    order = [n % 12 for n in range(0, 60, 5)] * 2 + [0, 0, 1, 0, 1, 2, 1]
    sharing = [Record.create(step, {"uid": f"p{i}"}).updated(shared_step, sources[n].layers[-1].data)
               for i, n in enumerate(order)]
    copying = [Record.create(step, {"uid": f"p{i}"}).updated(shared_step, columns(n)) for i, n in enumerate(order)]
    assert sharing == copying
    assert sharing[0].layers[-1].data is sharing[12].layers[-1].data  # the very same layer, met again
    assert encode_segment(sharing).data == encode_segment(copying).data


def test_labels_that_differ_only_in_a_number_type_stay_apart(tmp_path):
    """Layers of labels are recognised by value: a Confidence of 1.0 and one of 1 are different values in the
    file, however often the first was written before."""
    step = Step("u", "s", 1.0)
    coded = Step("u", "code", 2.0)
    confidences = [1.0, 1.0, 1.0, 1, True, 1.0]
    records = [Record.create(step, {"uid": f"u{i}"}).updated(coded, {"codes": [{"CodeID": "c", "Confidence": c}]})
               for i, c in enumerate(confidences)]
    path = tmp_path / "traced_data.json"
    write_in_segments(path, [records])
    trail = AuditTrail.load(path)
    back = [trail.records_for(f"u{i}")[0]["codes"][0]["Confidence"] for i in range(len(confidences))]
    assert [(type(value), value) for value in back] == [(type(c), c) for c in confidences]


def test_survey_records_that_differ_only_in_a_number_type_stay_apart(tmp_path):
    """An attached record is recognised by value as the file holds it: 1 and 1.0 are not the same answer."""
    step = Step("u", "s", 1.0)
    surveys = [Record.create(step, {"uid": "a", "age": age}) for age in (18, 18.0, 18)]
    messages = [Record.create(step, {"text": f"m{i}"}).updated(step, {"survey": survey})
                for i, survey in enumerate(surveys)]
    path = tmp_path / "traced_data.json"
    write_in_segments(path, [messages])
    back = AuditTrail.load(path).records_for("a")
    assert [type(message["age"]) for message in back] == [int, float, int]


FORMAT_1_FILE = os.path.join(os.path.dirname(__file__), "audit_trail", "traced_data_format_1.json")


def format_1_people() -> list[list[Record]]:
    """The records in tests/audit_trail/traced_data_format_1.json, written by the version-1 writer: two
    respondents (seed 2019) of three messages each sharing a survey record, the second withdrawn."""
    rng = random.Random(2019)
    return [respondent(rng, matrix_keys=True), respondent(rng, withdrawn=True, matrix_keys=True)]


def test_a_format_1_file_still_reads_and_explains():
    """A trail written in format 1 (before segments) reads back equal and explains a withdrawn participant."""
    kept, withdrawn = format_1_people()
    with open(FORMAT_1_FILE, encoding="utf-8") as handle:
        assert handle.readlines()[1] == '["redss-audit-trail",1,{"id_key":"uid"}],\n'
    trail = AuditTrail.load(FORMAT_1_FILE)
    assert list(trail.records()) == kept + withdrawn
    original = withdrawn[0].history("uid")[0].value
    assert trail.ids() == [kept[0]["uid"], original]
    assert trail.records_for(original) == withdrawn
    text = trail.explain(original, "uid")
    assert text.startswith(f'uid "{original}", key \'uid\': 3 record(s) in traced_data_format_1.json')
    assert f'1. "{original}"' in text and '2. "STOP"' in text and "step analysis/withdrawn_consent" in text
    gender = trail.explain(kept[0]["uid"], "Gender (Value) - csap_demog")
    assert "through attached record 'demog_survey'" in gender


def write_in_segments(path, batches, *, id_key="uid"):
    """Writes a trail the way stage 3 does: each chunk of records encoded as one segment, appended in order."""
    with open(path, "wb") as handle, AuditTrailWriter(handle, id_key=id_key, target=str(path)) as trail:
        for batch in batches:
            trail.write(encode_segment(batch, id_key=id_key, target=str(path)))


def segments_of(path) -> list[str]:
    """The text of each segment of a trail: from its "segment" entry to the next one or the end entry."""
    text = path.read_text(encoding="utf-8")
    body = text[text.index('["segment"],\n'):text.index('["end",')]
    return ['["segment"],\n' + part for part in body.split('["segment"],\n')[1:]]


def test_a_segment_is_the_same_bytes_whatever_came_before_it(people, tmp_path):
    """A chunk's segment depends on its own records only: written after other chunks, after none, or encoded
    on its own (as a worker process would), it is the same bytes."""
    chunk = [m for messages in people[10:14] for m in messages]
    write_in_segments(tmp_path / "alone.json", [chunk])
    write_in_segments(tmp_path / "after.json", [[m for messages in people[:10] for m in messages], people[20], chunk])
    alone, after = segments_of(tmp_path / "alone.json"), segments_of(tmp_path / "after.json")
    assert len(alone) == 1 and len(after) == 3
    assert after[2] == alone[0]
    encoded = encode_segment(chunk, id_key="uid")
    assert encoded.records == len(chunk) and encoded.data.decode("utf-8") == alone[0]


def test_an_empty_chunk_writes_no_segment(people, tmp_path):
    """A chunk whose messages were all filtered out adds nothing to the file, and the rest reads back."""
    batches = [people[0] + people[1], [], people[2]]
    write_in_segments(tmp_path / "traced_data.json", batches)
    assert len(segments_of(tmp_path / "traced_data.json")) == 2
    assert encode_segment([], id_key="uid") == (b"", 0)
    assert list(AuditTrail.load(tmp_path / "traced_data.json").records()) == people[0] + people[1] + people[2]


def test_records_of_many_segments_read_back_equal(people, tmp_path):
    """A trail of several segments reads back equal, each person found in their segment; a survey record
    shared by messages in two segments (a respondent split across chunks) is written in each."""
    path = tmp_path / "traced_data.json"
    split = people[30]
    batches = [[m for messages in people[:30] for m in messages] + split[:2], split[2:] + people[31], people[32]]
    write_in_segments(path, batches)
    written = [m for batch in batches for m in batch]
    trail = AuditTrail.load(path)
    assert len(trail) == len(written) and list(trail.records()) == written
    assert trail.records_for(split[0]["uid"]) == split
    assert trail.records_for(people[32][0]["uid"]) == people[32]
    assert sum(line.startswith('["a",') for line in path.read_text(encoding="utf-8").splitlines()) == 34


def test_a_withdrawn_participant_in_a_later_segment_is_explained_by_first_uid(people, tmp_path):
    """explain() finds a withdrawn participant (uid STOP) by the uid they had, in whichever segment."""
    path = tmp_path / "traced_data.json"
    write_in_segments(path, [people[0] + people[1], people[4] + people[5] + people[6]])
    original = people[5][0].history("uid")[0].value
    trail = AuditTrail.load(path)
    assert trail.records_for(original) == people[5] and "STOP" not in trail.ids()
    text = trail.explain(original, "uid")
    assert "record 1 of 3 (record 10 of traced_data.json; uid now \"STOP\")" in text
    assert f'1. "{original}"' in text and '2. "STOP"' in text and "step analysis/withdrawn_consent" in text


def test_explain_traces_a_value_to_the_keys_it_is_derived_from_only(tmp_path):
    """The "same value earlier" hint names earlier keys holding the value; given the keys a column is derived from,
    only those: a key that merely holds the same value (another flag reading "false") is not where it came from."""
    step = Step("u", "s", 1.0)
    record = Record.create(step, {"uid": "u1", "Gender (Value) - demog": "female"}).updated(
        Step("u", "t", 2.0), {"district_raw": "female"}).updated(Step("u", "v", 3.0), {"gender_raw": "female"})
    path = tmp_path / "traced_data.json"
    write_in_segments(path, [[record]])
    trail = AuditTrail.load(path)
    anywhere = trail.explain("u1", "gender_raw")
    assert "same value earlier under 'Gender (Value) - demog'" in anywhere
    assert "same value earlier under 'district_raw'" in anywhere
    derived = trail.explain("u1", "gender_raw", derived_from=["Gender (Value) - demog"])
    assert "same value earlier under 'Gender (Value) - demog'" in derived
    assert "district_raw" not in derived


def test_a_trail_cut_after_a_segment_is_truncated(people, tmp_path):
    """A trail whose writing stopped between segments (no end entry) is refused as truncated."""
    path = tmp_path / "traced_data.json"
    with open(path, "wb") as handle:
        with pytest.raises(RuntimeError):
            with AuditTrailWriter(handle) as trail:
                trail.write(encode_segment(people[0]))
                trail.write(encode_segment(people[1]))
                raise RuntimeError("interrupted")
    assert path.read_text(encoding="utf-8").count('["segment"]') == 2
    with pytest.raises(AuditTrailError, match=r"traced_data.json: line \d+: truncated: no end entry"):
        AuditTrail.load(path)


def test_a_bad_record_is_named_by_its_number_in_its_chunk_and_its_uid(tmp_path):
    """A value that is not JSON names the file, the record's number in its chunk (the same in whichever process
    the chunk was encoded), the key and step that wrote it, and the first uid it had; nothing is written for that
    chunk."""
    step = Step("u", "s", 1.0)
    good = [Record.create(step, {"uid": f"u{i}"}) for i in range(3)]
    bad = Record.create(step, {"uid": "u9"}).updated(step, {"uid": "STOP", "when": {1}})
    path = tmp_path / "traced_data.json"
    with pytest.raises(AuditTrailError, match=r"^.*traced_data.json: record 1 of its chunk: a value of type set cannot be written "
                                              r"as JSON under key 'when', written by step 's' \(its first uid was 'u9'\)$"):
        write_in_segments(path, [good, [good[0], bad]])
    assert path.read_text(encoding="utf-8").count('["segment"]') == 1 and '["end",' not in path.read_text("utf-8")
    with pytest.raises(AuditTrailError, match=r"^record 1 of its chunk: a value of type set .* \(its first uid was 'u9'\)$"):
        encode_segment([good[1], bad], id_key="uid")
    with pytest.raises(AuditTrailError, match=r"^chunk.json: record 1 of its chunk: expected a Record, found dict$"):
        encode_segment([good[1], {"uid": "x"}], id_key="uid", target="chunk.json")  # type: ignore[list-item]


def test_a_step_time_that_is_no_time_is_a_malformed_entry_when_loading(tmp_path):
    """A step's timestamp out of any date's range (a damaged file) is refused as the file is loaded, naming its line,
    rather than crashing explain when it prints the time."""
    step = Step("u", "generate/noise", 1548000000.0)
    path = tmp_path / "traced_data.json"
    write_in_segments(path, [[Record.create(step, {"uid": "u1"})]])
    lines = path.read_text(encoding="utf-8").splitlines()
    [number] = [n for n, line in enumerate(lines) if line.startswith('["s",')]
    lines[number] = lines[number].replace("1548000000.0", "1e20")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(AuditTrailError, match=rf"traced_data.json: line {number + 1}: malformed entry .*timestamp 1e\+20"):
        AuditTrail.load(path)


def test_a_trail_written_again_after_loading_is_not_read_with_the_old_places(people, tmp_path):
    """Records are rebuilt from the file when asked for: if stage 3 wrote the file again since it was loaded, the
    places read then are no longer those of its records, and the reader says so instead of misreading it."""
    path = tmp_path / "traced_data.json"
    write_in_segments(path, [people[0] + people[1]])
    trail = AuditTrail.load(path)
    uid = people[1][0]["uid"]
    assert trail.records_for(uid) == people[1]
    write_in_segments(path, [people[1] + people[0]])
    with pytest.raises(AuditTrailError, match=r"traced_data.json: the file changed since it was loaded"):
        trail.records_for(uid)
    path.unlink()
    with pytest.raises(AuditTrailError, match=r"traced_data.json: cannot be read"):
        trail.records_for(uid)


def test_characters_some_readers_take_for_line_ends_are_escaped(tmp_path):
    """A listener's NEL, LINE SEPARATOR or PARAGRAPH SEPARATOR (JSON allows them raw in a string) is written
    escaped, so every entry stays one line even for str.splitlines; the texts come back unchanged."""
    step = Step("u", "s", 1.0)
    texts = ["haa\u2028maya", "first\u2029second", "nel\x85here", "plain"]
    records = [Record.create(step, {"uid": f"p{n}", "text": text}) for n, text in enumerate(texts)]
    path = tmp_path / "traced_data.json"
    write_in_segments(path, [records])
    raw = path.read_bytes()
    for character in ("\u2028", "\u2029", "\x85"):
        assert character.encode("utf-8") not in raw
    lines = raw.decode("utf-8").splitlines()
    assert lines[0] == "[" and lines[-1] == "]"
    for line in lines[1:-1]:
        json.loads(line.removesuffix(","))  # each entry is one whole line
    trail = AuditTrail.load(path)
    assert [trail.records_for(f"p{n}")[0]["text"] for n in range(len(texts))] == texts


def test_an_id_key_holding_a_line_break_character_is_escaped_in_the_header(tmp_path):
    """The header is escaped as the entries are: an id key holding LINE SEPARATOR leaves the header one line, and
    the file is read back with that id key."""
    step = Step("u", "s", 1.0)
    id_key = "respondent\u2028id"
    records = [Record.create(step, {id_key: "p1", "text": "hello"})]
    path = tmp_path / "traced_data.json"
    write_in_segments(path, [records], id_key=id_key)
    raw = path.read_bytes()
    assert "\u2028".encode("utf-8") not in raw
    lines = raw.decode("utf-8").splitlines()
    assert json.loads(lines[1].removesuffix(",")) == ["redss-audit-trail", 2, {"id_key": id_key}]
    trail = AuditTrail.load(path)
    assert trail.id_key == id_key
    assert trail.records_for("p1")[0]["text"] == "hello"


def test_a_missing_trail_says_which_stage_writes_it(tmp_path):
    with pytest.raises(AuditTrailError, match=r"traced_data\.json: not found: stage 3 writes it \(3_generate_outputs\.sh\)$"):
        AuditTrail.load(tmp_path / "traced_data.json")
