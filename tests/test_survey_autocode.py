"""Survey answers auto-coded: NA labels, cleaner suggestions, one location suggestion, operator, Coda files
(pipeline.md 7.5)."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import datetime, timezone

import pytest

from redss_pipeline.core.config import PipelineConfig, load_config
from redss_pipeline.core.errors import SchemeError, UuidTableError
from redss_pipeline.core.records import Record
from redss_pipeline.core.run_context import RunContext
from redss_pipeline.core.scratch_database import ScratchDatabase
from redss_pipeline.generate.survey_autocode import SurveyCodaExport, auto_code_surveys

CONFIG = load_config()
RUN = RunContext("tester@example.org", datetime(2019, 1, 20, tzinfo=timezone.utc))
LOAD = RUN.step("test/load")
NA_ID = "code-NA-f93d3eb7"
NC_ID = "code-NC-42f1d983"
NS_ID = "code-NS-2c11b7c9"
MALE = "code-63dcde9a"
LOCATION_FIELDS = ("mogadishu_sub_district_coded", "district_coded", "region_coded", "state_coded", "zone_coded")
T0 = "2018-12-01T10:00:00+00:00"


def _record(uid: str = "avf-phone-uuid-1", **answers: str) -> Record:
    data: dict[str, object] = {"uid": uid, "rqa_s01e01_raw": "a message", "noise": False}
    for raw_field, text in answers.items():
        data[raw_field] = text
        data[raw_field.replace("_raw", "_time")] = T0
    return Record.create(LOAD, data)


def _coded(*records: Record, phone_keys: dict[str, str] | None = None,
           config: PipelineConfig = CONFIG) -> list[Record]:
    """The records auto-coded; every uid is a Hormuud number unless ``phone_keys`` says otherwise."""
    if phone_keys is None:
        phone_keys = {record["uid"]: "252610000001" for record in records}
    return auto_code_surveys(list(records), config=config, run=RUN, phone_keys=phone_keys)


def _coda_files(records: list[Record]) -> dict[str, list[dict]]:
    with ScratchDatabase() as scratch:
        export = SurveyCodaExport(CONFIG, scratch)
        export.store(export.entries(range(len(records)), records))
        return {name: list(messages) for name, messages in export.files().items()}


def _code(record: Record, field: str) -> str | None:
    label = record.get(field)
    return None if label is None else label["CodeID"]


# -- 7.5.1 -------------------------------------------------------------------------------------------------------


def test_absent_and_empty_answers_get_na_labels():
    """An absent or empty answer gives NA (a single label) in every plan reading it; a real answer does not."""
    (record,) = _coded(_record(gender_raw="", age_raw="25"))
    assert record["gender_coded"]["CodeID"] == NA_ID
    assert record["gender_coded"]["SchemeID"] == "Scheme-12cb6f95"
    assert record["gender_coded"]["Origin"]["OriginID"] == "redss_pipeline.survey_autocode.missing_answer@1"
    assert CONFIG.schemes["age"].code_by_id(_code(record, "age_coded")).string_value == "25"  # the cleaner's
    for field in LOCATION_FIELDS + ("idp_camp_coded", "hh_language_coded", "involved_coded"):
        assert record[field]["CodeID"] == NA_ID
    assert record["zone_coded"]["SchemeID"] == "Scheme-b8ce44fb"


# -- 7.5.2 -------------------------------------------------------------------------------------------------------


def test_cleaners_write_unchecked_suggestions_with_their_origin():
    """Gender, age, yes/no and district cleaners suggest the scheme code whose MatchValues hold their result."""
    (record,) = _coded(_record(gender_raw="m", age_raw="afartan", idp_camp_raw="haa", repeated_raw="maya",
                                 mogadishu_sub_district_raw="kismayo", hh_language_raw="af soomaali"))
    gender = record["gender_coded"]
    assert (gender["SchemeID"], gender["CodeID"], gender["Checked"]) == ("Scheme-12cb6f95", MALE, False)
    assert gender["Origin"] == {"OriginID": "redss_pipeline.cleaners.gender@1", "Name": "Pipeline Auto-Coder",
                                "OriginType": "External"}
    assert gender["DateTimeUTC"] == "2019-01-20T00:00:00.000000+00:00"
    assert CONFIG.schemes["age"].code_by_id(_code(record, "age_coded")).string_value == "40"
    assert _code(record, "idp_camp_coded") == "code-dc43b68e"  # yes
    assert CONFIG.schemes["repeated"].code_by_id(_code(record, "repeated_coded")).string_value == "no"
    assert _code(record, "district_coded") == "code-6294f98f"  # kismayo
    assert "mogadishu_sub_district_coded" not in record  # NC writes nothing
    assert "hh_language_coded" not in record and "region_coded" not in record  # no cleaner


def test_nc_result_writes_nothing():
    """A text no cleaner rule recognises leaves the coded field absent."""
    (record,) = _coded(_record(gender_raw="xyz"))
    assert "gender_coded" not in record


@pytest.mark.parametrize("code_id", [NA_ID, NS_ID])
def test_na_and_ns_are_not_overwritten_by_the_cleaner(code_id):
    """Records already coded NA or NS are skipped, even when the cleaner would recognise the text."""
    label = {"SchemeID": "Scheme-12cb6f95", "CodeID": code_id, "DateTimeUTC": T0, "Checked": True,
             "Origin": {"OriginID": "x", "Name": "x", "OriginType": "Manual"}}
    record = _record(gender_raw="m").updated(LOAD, {"gender_coded": label})
    (out,) = _coded(record)
    assert out["gender_coded"] is label


def test_cleaner_result_without_a_code_is_a_scheme_error():
    """A cleaner value missing from the scheme's MatchValues names the scheme, the record and the value."""
    plans = tuple(dataclasses.replace(p, scheme=CONFIG.schemes["zone"]) if p.name == "gender" else p
                  for p in CONFIG.survey_plans)
    config = dataclasses.replace(CONFIG, survey_plans=plans)
    with pytest.raises(SchemeError, match=r"record avf-phone-uuid-1: field 'gender_raw': the gender cleaner gave "
                                          r"'male', which no code of scheme 'Zone'"):
        _coded(_record(gender_raw="m"), config=config)


# -- 7.5.3 -------------------------------------------------------------------------------------------------------


def test_a_sub_district_suggestion_hides_the_district_suggestion():
    """Sub-district found: district_coded = NC with the sub-district SchemeID; a district alone stays."""
    both, district_only = _coded(_record(mogadishu_sub_district_raw="hodan mogadishu"),
                                   _record(mogadishu_sub_district_raw="mogadishu"))
    assert _code(both, "mogadishu_sub_district_coded") == "code-ae4b5ca2"  # hodan
    assert (both["district_coded"]["SchemeID"], both["district_coded"]["CodeID"]) == ("Scheme-07dfc611", NC_ID)
    assert _code(district_only, "district_coded") == "code-2e6192c8"  # mogadishu
    assert "mogadishu_sub_district_coded" not in district_only


def test_a_missing_location_keeps_its_na_district():
    """NA in the sub-district field is not a Normal code, so the district NA stays."""
    (record,) = _coded(_record())
    assert _code(record, "district_coded") == NA_ID


# -- 7.5.4 -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, code_id",
    [
        ("252610000001", "code-c7b32481"),  # hormud
        ("252620000001", "code-605d77ed"),  # somtel (StringValue sometel)
        ("252630000001", "code-3e6ddc70"),  # telesom
        ("252680000001", "code-524167c7"),  # somnet
        ("252690000001", "code-b83b9be1"),  # nationlink
        ("252900000001", "code-450ec146"),  # golis
        ("252910000001", NC_ID),
        ("254700000001", NC_ID),
        ("telegram:252610000001", NC_ID),  # not a phone number, whatever its digits
    ],
)
def test_operator_per_prefix(key, code_id):
    """The operator comes from the first five digits of the phone number; non-phone URNs are NC."""
    (record,) = _coded(_record(), phone_keys={"avf-phone-uuid-1": key})
    assert (record["operator_coded"]["SchemeID"], record["operator_coded"]["CodeID"]) == ("Scheme-f86cff0b", code_id)
    assert record["operator_coded"]["Origin"]["OriginID"] == "redss_pipeline.cleaners.operator@1"


def test_uid_missing_from_the_uuid_table_is_an_error():
    """A uid the table does not know stops the run, naming the uid and no phone number."""
    with pytest.raises(UuidTableError, match=r"record avf-phone-uuid-9: field 'uid': .*not in the phone number") as e:
        _coded(_record(uid="avf-phone-uuid-9"), phone_keys={"avf-phone-uuid-1": "252610000001"})
    assert "2526" not in str(e.value)


# -- 7.5.5 -------------------------------------------------------------------------------------------------------


def test_ids_on_every_record_with_the_answer():
    """Noise messages and empty answers get ids too; the location plans share one id."""
    record = _record(gender_raw="", mogadishu_sub_district_raw="hodan").updated(LOAD, {"noise": True})
    (out,) = _coded(record)
    assert out["gender_raw_id"] == hashlib.sha256(b"").hexdigest()
    assert out["mogadishu_sub_district_raw_id"] == hashlib.sha256(b"hodan").hexdigest()
    assert "age_raw_id" not in out


def test_repeated_survey_answers_become_one_coda_message_each():
    """Answers repeated on a respondent's messages and shared by respondents are exported once, with the
    suggestion; missing answers are left out and NC labels are not exported."""
    records = [
        _record("u1", gender_raw="m", mogadishu_sub_district_raw="hodan mogadishu"),
        _record("u1", gender_raw="m", mogadishu_sub_district_raw="hodan mogadishu"),
        _record("u2", gender_raw="m", mogadishu_sub_district_raw="kismayo"),
        _record("u3", gender_raw="xyz"),
        _record("u4", gender_raw=""),
    ]
    coded = auto_code_surveys(records, config=CONFIG, run=RUN,
                              phone_keys={u: "252610000001" for u in ("u1", "u2", "u3", "u4")})
    files = _coda_files(coded)
    assert list(files) == ["gender.json", "age.json", "idp_camp.json", "recently_displaced.json",
                           "hh_language.json", "repeated.json", "involved.json", "location.json"]
    gender = files["gender.json"]
    assert [(m["Text"], [label["CodeID"] for label in m["Labels"]]) for m in gender] == [("m", [MALE]), ("xyz", [])]
    assert gender[0]["MessageID"] == hashlib.sha256(b"m").hexdigest()
    assert gender[0]["CreationDateTimeUTC"] == T0
    assert gender[0]["Labels"][0]["Origin"]["OriginID"] == "redss_pipeline.cleaners.gender@1"
    location = files["location.json"]
    assert [(m["Text"], [(lab["SchemeID"], lab["CodeID"]) for lab in m["Labels"]]) for m in location] == [
        ("hodan mogadishu", [("Scheme-07dfc611", "code-ae4b5ca2")]),  # one suggestion only
        ("kismayo", [("Scheme-5292e8fb", "code-6294f98f")]),
    ]
    assert files["age.json"] == []
    assert [r["uid"] for r in coded] == ["u1", "u1", "u2", "u3", "u4"]


def test_coda_export_orders_messages_by_answer_time():
    """The earliest answer time comes first."""
    late = _record("u1", involved_raw="haa").updated(LOAD, {"involved_time": "2018-12-20T00:00:00+03:00"})
    early = _record("u2", involved_raw="maya")
    assert [m["Text"] for m in _coda_files(_coded(late, early))["involved.json"]] == ["maya", "haa"]


def test_auto_code_surveys_writes_one_layer_per_record():
    """NA labels, suggestions, operator and ids are one audit layer under one step."""
    (record,) = auto_code_surveys([_record(gender_raw="m")], config=CONFIG, run=RUN,
                                  phone_keys={"avf-phone-uuid-1": "252610000001"})
    assert len(record.layers) == 2
    assert {"gender_coded", "age_coded", "operator_coded", "gender_raw_id"} <= set(record.layers[1].data)
    assert record.history("operator_coded")[-1].step.source == "generate/auto_code_surveys"


def test_respondents_sharing_answers_keep_their_own_operator_and_labels():
    """Respondents sharing answers, with other operators or an NS label already set, each get the labels of
    their own answers and their own operator; the rules' keys are written in the order of 7.5.1-7.5.5."""
    ns = {"SchemeID": "Scheme-12cb6f95", "CodeID": NS_ID, "DateTimeUTC": T0, "Checked": True,
          "Origin": {"OriginID": "coder", "Name": "coder", "OriginType": "Manual"}}
    records = [
        _record("u1", gender_raw="m", mogadishu_sub_district_raw="hodan", age_raw="20"),
        _record("u2", gender_raw="m", mogadishu_sub_district_raw="hodan", age_raw="20"),
        _record("u1", gender_raw="m", mogadishu_sub_district_raw="hodan", age_raw="20"),
        _record("u3", gender_raw="mm", mogadishu_sub_district_raw="hodan", age_raw="20").updated(
            LOAD, {"gender_coded": ns}),
        _record("u3", gender_raw="naag", involved_raw="haa"),
    ]
    coded = _coded(*records, phone_keys={"u1": "252610000001", "u2": "252620000001", "u3": "telegram:1"})
    assert [r["operator_coded"]["CodeID"] for r in coded] == [
        "code-c7b32481", "code-605d77ed", "code-c7b32481", NC_ID, NC_ID]
    assert [_code(r, "gender_coded") for r in coded] == [MALE, MALE, MALE, NS_ID, "code-86a4602c"]  # female
    assert coded[3]["gender_coded"] is ns
    assert [_code(r, "mogadishu_sub_district_coded") for r in coded] == ["code-ae4b5ca2"] * 4 + [NA_ID]  # hodan
    assert [_code(r, "district_coded") for r in coded] == [NC_ID] * 4 + [NA_ID]
    assert [_code(r, "involved_coded") for r in coded] == [NA_ID] * 4 + ["code-1dadd647"]  # yes
    assert coded[4]["gender_raw_id"] == hashlib.sha256(b"naag").hexdigest()
    assert dict(coded[0]) == dict(coded[2])
    written = list(coded[0].layers[-1].data)
    assert written[:5] == ["idp_camp_coded", "recently_displaced_coded", "hh_language_coded", "repeated_coded",
                           "involved_coded"]  # 7.5.1, in plan order
    assert written[-4:] == ["operator_coded", "gender_raw_id", "mogadishu_sub_district_raw_id", "age_raw_id"]


def test_coda_export_takes_the_earliest_time_of_a_shared_answer():
    """An answer given later in the file but earlier in time gives the message its creation time."""
    late = _record("u1", involved_raw="haa").updated(LOAD, {"involved_time": "2018-12-20T00:00:00+03:00"})
    early = _record("u2", involved_raw="haa")
    coded = auto_code_surveys([late, late, early, early], config=CONFIG, run=RUN,
                              phone_keys={"u1": "252610000001", "u2": "252610000002"})
    [message] = _coda_files(coded)["involved.json"]
    assert message["CreationDateTimeUTC"] == T0
