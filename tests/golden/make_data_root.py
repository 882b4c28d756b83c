#!/usr/bin/env python3
"""Writes the golden data root, ``tests/golden/data_root/``: a small REDSS/CSAP data root as the 2019 pipeline
left it (a 2019 ``phone_uuids.json``, six TracedData raw files, coded Coda files as Coda V2's ``get.py`` saves
them), built case by case to exercise every rule of stage 3.

Every record is chosen by hand; the comment beside it names the rule it exercises (spec file and section). The
cells each case must produce are listed in ``tests/golden/README.md`` and declared in ``make_expected.py``.

Run from the project root: ``.venv/bin/python tests/golden/make_data_root.py``. The output is deterministic; the
files are committed, so the test never runs this script.

Conventions:
- times of show messages are written here in East Africa Time (the spec's constants are in +03:00) and stored,
  as Rapid Pro's values are, in UTC with ``+00:00`` (rapid-pro.md 2, step 5);
- people are ``P01`` ..; their uid is ``avf-phone-uuid-000000NN-0000-4000-8000-0000000000NN``;
- phone numbers are fictitious and appear only in ``UUIDs/phone_uuids.json``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

__all__ = ["DATA_ROOT", "PEOPLE", "SHOW_FILES", "SURVEYS", "uid", "message_text", "write_data_root"]

HERE = Path(__file__).resolve().parent
DATA_ROOT = HERE / "data_root"

# -- people: uid and UUID-table key (cleaners.md section 10 for the operator each key gives) -----------------------

PEOPLE: dict[str, str] = {
    "P01": "252610000001",  # 25261 hormud
    "P02": "252620000002",  # 25262 somtel -> StringValue "sometel"
    "P03": "252630000003",  # 25263 telesom
    "P04": "252640000004",  # 25264 hormud
    "P05": "252650000005",  # 25265 somtel
    "P06": "252660000006",  # 25266 somtel
    "P07": "252670000007",  # 25267 nationlink
    "P08": "252680000008",  # 25268 somnet
    "P09": "252690000009",  # 25269 nationlink
    "P10": "252900000010",  # 25290 golis
    "P11": "252910000011",  # 25291: not an operator prefix -> NC
    "P12": "254700000012",  # a Kenyan number -> NC
    # A non-phone URN kept whole (README decision 3; rapid-pro.md 6.2): NC without looking at its digits,
    # which would otherwise read as hormud.
    "P13": "telegram:252610000013",
    "P14": "610000014",  # a national-format number as 2019 normalised it (leading 0 stripped) -> NC
    "P15": "252610000015",
    "P16": "252610000016",
    "P17": "252640000017",
    "P18": "252610000018",
    "P19": "252630000019",
    "P20": "252650000020",
    "P21": "252680000021",
    "P22": "252690000022",
    "P23": "252900000023",
    "P24": "252610000024",
    "P25": "252620000025",
    "P26": "252630000026",
    "P27": "252640000027",
    "P28": "252650000028",
    "P29": "252660000029",
    "P30": "252670000030",
    "P31": "252680000031",
    "P33": "252690000033",
    "P34": "252900000034",
    "P35": "252610000035",
    "P36": "252620000036",
    "P37": "252630000037",
    "P38": "252640000038",
    "P39": "252650000039",
    "P40": "252660000040",
    "P41": "252610000041",
    "P42": "252620000042",
    "P43": "252630000043",
    "P44": "252680000044",
    "P45": "252900000045",
    "P46": "252670000046",
    "P47": "252610000047",
    "P48": "252620000048",
    "P99": "252610000099",  # a test contact (its records carry test_run: true)
}


def uid(person: str) -> str:
    """The de-identified id of a person of this data root."""
    n = int(person[1:])
    return f"avf-phone-uuid-{n:08d}-0000-4000-8000-{n:012d}"


def _utc(eat: str) -> str:
    """An East Africa Time constant as Rapid Pro stores a value time: UTC, Python isoformat."""
    return datetime.fromisoformat(eat).astimezone(timezone.utc).isoformat()


# -- show messages, per flow file in file order (= data order, pipeline.md 7.1) ----------------------------------


@dataclass(frozen=True)
class ShowMessage:
    id: str  # M01 ..; the README and make_expected.py refer to it
    person: str
    time: str | None  # EAT; None for a run without an answer
    text: str | None
    run_id: int
    test_run: bool = False


def _m(id: str, person: str, time: str | None, text: str | None, run_id: int, *, test_run: bool = False):
    return ShowMessage(id, person, time, text, run_id, test_run)


SHOW_FILES: dict[str, list[ShowMessage]] = {
    "csap_s01e01_activation": [
        # Project start, inclusive (7.4.3); radio_promo and week 1 start (section 8). Coded with the S01E01 scheme
        # and its duplicate Scheme-d7eb83ef-1: two codes (coda.md 5.3).
        _m("M01", "P01", "2018-12-02T00:00:00+03:00", "Waxaan u baahanahay shaqo iyo waxbarasho", 1001),
        # One second before the project start: dropped (7.4.3). P15 has no other message, so P15 and P15's
        # survey answers appear nowhere. Its _metadata is a py/id reference to M01's (rapid-pro.md 4.2).
        _m("M02", "P15", "2018-12-01T23:59:59+03:00", "Waxaan rabaa in la i caawiyo", 1002),
        # Last second of radio_promo's first range; a text with quotes and commas (CSV quoting, 9.5).
        _m("M03", "P02", "2018-12-02T19:25:18+03:00", 'We need "jobs", schools, water', 1003),
        # sms_ad start, inclusive; noise ("ok", cleaners.md 2.2).
        _m("M04", "P03", "2018-12-02T19:25:19+03:00", "ok", 1004),
        # Last second of sms_ad's first range; P01's second s01e01 message (';' concatenation); its only label is
        # unchecked -> NR (coda.md 5.3 step 6).
        _m("M05", "P01", "2018-12-02T23:59:59+03:00", "Nabad iyo shaqo ayaan rabnaa", 1005),
        # sms_ad end, exclusive -> radio_promo start; "25" is short but reads as an age: not noise (cleaners.md 2.3).
        _m("M06", "P04", "2018-12-03T00:00:00+03:00", "25", 1006),
        # Noise: "Mahad sanid" (noise pattern 3).
        _m("M07", "P05", "2018-12-04T23:59:59+03:00", "Mahad sanid", 1007),
        # radio_promo end, exclusive -> non-logical; "haa" is a yes: not noise.
        _m("M08", "P06", "2018-12-05T00:00:00+03:00", "haa", 1008),
        # Duplicate texts (one Coda message, coda.md 4 step 3): M10 comes first in the file but M09 was sent
        # earlier, so the Coda message carries M09's time. Last second of radio_show's first range.
        _m("M10", "P08", "2018-12-06T23:59:59+03:00", "Dowladda ha taageerto bulshada", 1010),
        # radio_show start; P07 withdraws consent in the gender survey, so this message is STOP.
        _m("M09", "P07", "2018-12-06T00:00:00+03:00", "Dowladda ha taageerto bulshada", 1009),
        # radio_show end, exclusive -> non-logical; "to" reads as age 70: not noise (cleaners.md 2.5).
        _m("M11", "P09", "2018-12-07T00:00:00+03:00", "to", 1011),
        # Last second of week 1; noise (shorter than 10 characters).
        _m("M12", "P10", "2018-12-08T23:59:59+03:00", "short", 1012),
        # A late reply in the s01e01 flow: participation is by time -> week 2 (section 8).
        _m("M13", "P11", "2018-12-10T08:30:00+03:00", "Waxbarashada carruurta ayaa muhiim ah", 1013),
        # Sent before M13 but later in the file: the Coda file is sorted by time (coda.md 4 step 3). Non-ASCII
        # text (an en dash: \u2013 in Coda JSON) and a time with microseconds. Coded: a code later cleared with
        # SPECIAL-MANUALLY_UNCODED, and a code under the duplicate scheme (coda.md 5.3 steps 3-4).
        _m("M14", "P12", "2018-12-04T10:15:30.250000+03:00", "Nabadgelyo iyo cadaalad \u2013 waa muhiim", 1014),
        # "10": the noise rule keeps the 2019 age check (11..89), so "10" is noise (README, cleaners.md 2.1).
        _m("M15", "P13", "2018-12-03T12:00:00+03:00", "10", 1015),
        # "11": the lowest age the 2019 check accepts: not noise.
        _m("M16", "P14", "2018-12-03T13:00:00+03:00", "11", 1016),
        # P48's first message; the second (M2I) has an empty text.
        _m("M19", "P48", "2018-12-07T12:00:00+03:00", "Guryo ayaan u baahanahay", 1019),
        # A test contact's run: dropped (7.4.1), with its survey answers.
        _m("M17", "P99", "2018-12-03T14:00:00+03:00", "Test message from the team", 1017, test_run=True),
        # A run without an answer: dropped (7.4.2).
        _m("M18", "P02", None, None, 1018),
    ],
    "csap_s01e02_activation": [
        # radio_promo and week 2 start. Reasons: one checked code and one unchecked code under the duplicate
        # scheme: both count (coda.md 5.3 step 6). Binary: integrate.
        _m("M20", "P01", "2018-12-09T00:00:00+03:00", "Waa in la isku daraa bulshada", 2001),
        # Last second of radio_promo's third range. P17: integrate here, return in M22 -> ambivalent (7.7.6).
        _m("M21", "P17", "2018-12-09T19:00:29+03:00", "Dadka barakacay waa walaalaheen", 2002),
        # sms_ad start (second range).
        _m("M22", "P17", "2018-12-09T19:00:30+03:00", "Waa inay ku noqdaan deegaankoodii", 2003),
        # sms_ad end -> radio_promo; "maya" (no) is not noise; nothing coded -> NR, binary NR.
        _m("M23", "P18", "2018-12-10T00:00:00+03:00", "maya", 2004),
        # radio_promo end -> non-logical. Binary label without "Checked" -> unchecked -> NR (coda.md 5.2).
        _m("M24", "P19", "2018-12-12T00:00:00+03:00", "Shaqo ha la siiyo dadka", 2005),
        # radio_show start. Coded STOP: this message is withdrawn in csap_mes.csv, the whole of P20 in
        # csap_ind.csv (7.7.5, 7.7.8).
        _m("M25", "P20", "2018-12-13T00:00:00+03:00", "Stop sending me messages please", 2006),
        # Last second of radio_show; noise ("In sha Allah", pattern 4) -> binary NC.
        _m("M26", "P21", "2018-12-13T23:59:59+03:00", "In sha Allah", 2007),
        # radio_show end -> non-logical; "89": the highest age of the 2019 check: not noise.
        _m("M27", "P22", "2018-12-14T00:00:00+03:00", "89", 2008),
        # Last second of week 2; "90" is outside the 2019 age check: noise.
        _m("M28", "P23", "2018-12-15T23:59:59+03:00", "90", 2009),
        # Short texts that escape the noise flag through one "looks demographic" check each (cleaners.md 2.3):
        # the gender cleaner ("m", which also matches noise pattern 9), the yes/no cleaner alone ("No" is not
        # an only-yes/no answer), the urban/rural cleaner ("town" urban, "tuulo" rural) and the district
        # cleaner ("Baki").
        _m("M2A", "P41", "2018-12-11T10:00:00+03:00", "m", 2010),
        _m("M2B", "P42", "2018-12-11T11:00:00+03:00", "No", 2011),
        _m("M2C", "P43", "2018-12-11T12:00:00+03:00", "town", 2012),
        _m("M2D", "P44", "2018-12-11T13:00:00+03:00", "tuulo", 2013),
        _m("M2E", "P45", "2018-12-11T14:00:00+03:00", "Baki", 2014),
        # P46: a noise message and an uncoded one in the same show: binary NC and NR fold to NR (NR comes first
        # among missing values), and the matrix NC cell folds to 0 ("0" if either is "0"), 7.7.6.
        _m("M2F", "P46", "2018-12-11T15:00:00+03:00", "ok ok", 2015),
        _m("M2G", "P46", "2018-12-11T16:00:00+03:00", "Waa in dadka la caawiyo", 2016),
        # P47: noise in s01e02 and a coded s01e03 message (M3C): binary NC against NA gives NC.
        _m("M2H", "P47", "2018-12-11T17:00:00+03:00", "xx", 2017),
        # An empty answer: kept (it has the raw key), noise (the empty text is noise). In csap_ind.csv the fix-up
        # sets NA to 0 only for a present and non-empty raw text (7.7.7), so P48's s01e02 keeps NA 1 and NC 0.
        _m("M2I", "P48", "2018-12-12T12:00:00+03:00", "", 2018),
    ],
    "csap_s01e03_activation": [
        # C1: a checked "s01e02" label in the WS - Correct Dataset scheme -> show 2, sent_on 2018-12-15T00:00
        # (7.3.2). Sent after 2018-12-23, so it also shows that C1 takes precedence over C2.
        _m("M30", "P24", "2018-12-24T10:00:00+03:00", "Waxaan rabaa in la dhiso guryo", 3001),
        # C1 with an unchecked "s01e02" label: not moved. radio_promo start (sms_ad end).
        _m("M31", "P25", "2018-12-17T00:00:00+03:00", "Dadka waa la takooraa shaqada", 3002),
        # C1 with a label that has no "Checked" key: not moved (README deliberate difference). Last second of a
        # radio_promo range.
        _m("M32", "P26", "2018-12-18T23:59:59+03:00", "Waxaa jira takoor xagga caafimaadka", 3003),
        # C2 at exactly 2018-12-23T00:00:00: not moved (strictly greater). radio_promo and week 4 start.
        _m("M33", "P27", "2018-12-23T00:00:00+03:00", "Maya, ma jiro takoor", 3004),
        # C2 one second later: moved to show 4, keeps its own time. It also has a checked WS label "s01e04",
        # which is not the s01e02 code, so C1 does not apply.
        _m("M34", "P28", "2018-12-23T00:00:01+03:00", "Nabad iyo dowlad wanaagsan", 3005),
        # radio_promo and week 3 start; P01's third show.
        _m("M35", "P01", "2018-12-16T00:00:00+03:00", "Haa, waa la takooraa", 3006),
        # sms_ad start (third range); coded WS in the reasons scheme and in the binary scheme.
        _m("M36", "P17", "2018-12-16T19:00:55+03:00", "Takoor ma jiro, waxaan nahay walaalo", 3007),
        # radio_show start (third range); binary yes: WS then yes folds to ambivalent (WS is not "missing").
        _m("M37", "P17", "2018-12-20T00:00:00+03:00", "Haa waa jiraa takoor", 3008),
        # Last second of radio_promo (fifth range); noise ("a").
        _m("M38", "P29", "2018-12-16T19:00:54+03:00", "a", 3009),
        # Last second of week 3 (not after 2018-12-23, so C2 does not apply).
        _m("M39", "P30", "2018-12-22T23:59:59+03:00", "Dadka barakacay waxaa loo diidaa guryo", 3010),
        # radio_promo end (sixth range) -> non-logical.
        _m("M3A", "P40", "2018-12-19T00:00:00+03:00", "Takoorka waa in la joojiyo", 3011),
        # The day after a radio_show range -> non-logical; P47's second message.
        _m("M3C", "P47", "2018-12-21T10:00:00+03:00", "Maya, waa walaalo", 3012),
    ],
    "csap_s01e04_activation": [
        # Last second of radio_promo (seventh range). P20's other message: not withdrawn in csap_mes.csv.
        _m("M40", "P20", "2018-12-23T19:00:44+03:00", "Waa in la dhiso guryo badan", 4001),
        # sms_ad start (fourth range).
        _m("M41", "P31", "2018-12-23T19:00:45+03:00", "Waa in loo helo dhul", 4002),
        # One second before C3's window: not moved, then outside the project window: dropped.
        _m("M42", "P01", "2019-01-17T12:03:10+03:00", "Farriin daahday mid", 4003),
        # C3 start, inclusive: show 2, sent_on 2018-12-13T00:00 (radio_show).
        _m("M43", "P33", "2019-01-17T12:03:11+03:00", "Waa in la isku dhafo bulshada", 4004),
        # C3 last second: moved.
        _m("M44", "P34", "2019-01-17T12:24:41+03:00", "Dib ha loogu celiyo meeshii ay ka yimaadeen", 4005),
        # C3 end, exclusive: not moved -> dropped.
        _m("M45", "P02", "2019-01-17T12:24:42+03:00", "Farriin daahday laba", 4006),
        # One second before C4's window: dropped.
        _m("M46", "P04", "2019-01-12T09:45:11+03:00", "Farriin daahday saddex", 4007),
        # C4 start, inclusive: show 2, sent_on 2018-12-14T00:00 (non-logical).
        _m("M47", "P35", "2019-01-12T09:45:12+03:00", "Dowladda ha abaabusho guddi", 4008),
        # C4 last second: moved.
        _m("M48", "P36", "2019-01-12T09:51:56+03:00", "Waxay u baahan yihiin gargaar", 4009),
        # C4 end, exclusive: not moved -> dropped.
        _m("M49", "P05", "2019-01-12T09:51:57+03:00", "Farriin daahday afar", 4010),
        # Project end, inclusive: kept, non-logical, no week (README deliberate difference; section 8).
        _m("M50", "P37", "2018-12-31T00:00:00+03:00", "Nabad ayaan u baahanahay dalkeena", 4011),
        # One second after the project end: dropped.
        _m("M51", "P06", "2018-12-31T00:00:01+03:00", "Farriin daahday shan", 4012),
        # radio_show start (fourth range). P38's only message, coded NA by a coder: the singleton-fold quirk
        # (7.7.6) puts the fix-up (NA 0, NC 1) on this message's own csap_mes.csv row.
        _m("M52", "P38", "2018-12-27T00:00:00+03:00", "Waxba kama aqaano arrintaas", 4013),
        # radio_show end -> non-logical. Also coded NA, but P39 has two messages: the csap_mes.csv row keeps
        # NA 1; only csap_ind.csv shows the fix-up.
        _m("M53", "P39", "2018-12-28T00:00:00+03:00", "Ma garanayo waxa la sameeyo", 4014),
        # Last second of week 4.
        _m("M54", "P39", "2018-12-30T23:59:59+03:00", "Diinta ayaa na fartay inaan caawino", 4015),
        # radio_promo end (eighth range) -> non-logical; a text with a newline (CSV quoting).
        _m("M55", "P10", "2018-12-26T00:00:00+03:00", "Line one of my answer\nline two of my answer", 4016),
        # sms_ad end (fourth range) -> radio_promo. P03 answered s01e01 only with noise (M04).
        _m("M56", "P03", "2018-12-24T00:00:00+03:00", "Waa in la xoojiyo garsoorka", 4017),
        # Same text as M40 (one Coda message); P07's second message (withdrawn through the survey).
        _m("M57", "P07", "2018-12-25T12:00:00+03:00", "Waa in la dhiso guryo badan", 4018),
    ],
}


def message_text(message_id: str) -> str:
    """The text of a show message of this data root, by its case id."""
    for messages in SHOW_FILES.values():
        for message in messages:
            if message.id == message_id:
                assert message.text is not None
                return message.text
    raise KeyError(message_id)


# -- survey answers (latest-only files: one record per person, one layer per run) --------------------------------

# (result key, answer, UTC time); an answer may be a pair (Value, Text) when Rapid Pro's value differs from the
# raw input: the pipeline reads (Value) (datasets-and-codebook.md 3).
Answer = tuple[str, "str | tuple[str, str]", str]


@dataclass(frozen=True)
class SurveyRecord:
    person: str
    runs: list[list[Answer]]  # oldest run first
    test_run: bool = False
    py_state: bool = False  # written in the jsonpickle "py/state" variant (rapid-pro.md 4.2)


def _answers(day_hour: str, **answers: "str | tuple[str, str]") -> list[Answer]:
    """Answers of one run at ``day_hour`` (UTC, e.g. "2018-12-03T07:00"), in the flow's question order."""
    offsets = {"gender": 5, "mog_sub_district": 40, "age": 70, "idp_camp": 90, "recently_displaced": 110,
               "hh_language": 130, "repeated": 10, "involved": 40}
    base = datetime.fromisoformat(day_hour + ":00+00:00")
    return [(key, value, (base + timedelta(seconds=offsets[key])).isoformat()) for key, value in answers.items()]


SURVEYS: dict[str, list[SurveyRecord]] = {
    "csap_demog": [
        # Two runs (latest-only merge, rapid-pro.md 2 step 6): the newer run answered only age, so age comes from
        # it ("afartan") and every other answer from the older run.
        SurveyRecord("P01", [
            _answers("2018-12-03T07:00", gender="male", mog_sub_district="hodan", age="sodon iyo shan",
                     idp_camp="haa", recently_displaced="xaa", hh_language="Af-Soomaali"),
            [("age", "afartan", "2018-12-10T06:00:30+00:00")],
        ]),
        # Gender time with microseconds (Coda CreationDateTimeUTC keeps them).
        SurveyRecord("P02", [[("gender", "Female", "2018-12-03T08:00:05.123456+00:00")] + _answers(
            "2018-12-03T08:00", mog_sub_district="Baidoa", age="10", idp_camp="maya", recently_displaced="mayo",
            hh_language="Carabi (\u0627\u0644\u0639\u0631\u0628\u064a\u0629)")]),
        # Written in the py/state variant.
        SurveyRecord("P03", [_answers("2018-12-04T09:00", gender="M", mog_sub_district="Las Anod", age="11",
                                      idp_camp="Yes")], py_state=True),
        # Age: Rapid Pro's value "25", the raw input "I am 25": age_raw is the value.
        SurveyRecord("P04", [_answers("2018-12-04T06:00", gender="F", mog_sub_district="Puntland",
                                      age=("25", "I am 25"), idp_camp="I am not sure")]),
        SurveyRecord("P05", [_answers("2018-12-05T10:00", gender="naag", mog_sub_district="Waqooyi", age="89")]),
        SurveyRecord("P06", [_answers("2018-12-05T11:00", gender="wiil", mog_sub_district="Hodan, Mogadishu",
                                      age="90")]),
        # Gender coded STOP by a coder: all of P07's messages are withdrawn. Age answered with an empty text:
        # NA, and its raw cell is present (so it becomes STOP), unlike the questions P07 never answered.
        SurveyRecord("P07", [_answers("2018-12-06T12:00", gender="Stop", age="")]),
        # The earliest "male": the gender Coda message carries P08's time although P01 comes first in the data.
        SurveyRecord("P08", [_answers("2018-12-02T18:00", gender="male", mog_sub_district="Mogadishu", age="99")]),
        SurveyRecord("P10", [_answers("2018-12-07T13:00", gender="male", mog_sub_district="nairobi", age="100")]),
        SurveyRecord("P11", [_answers("2018-12-11T14:00", gender="Female", mog_sub_district="Nairobi Kenya",
                                      age="toban iyo sideed")]),
        SurveyRecord("P12", [_answers("2018-12-04T15:00", gender="Female", mog_sub_district="Xamar Weyne",
                                      age="labaatan iyo bar")]),
        SurveyRecord("P14", [_answers("2018-12-03T16:00", gender="M")]),
        # P15's only message is outside the project window: these answers appear nowhere.
        SurveyRecord("P15", [_answers("2018-12-01T17:00", gender="Dheddig", age="labaatan")]),
        # P16 answered the surveys but sent no show message: appears nowhere (7.2).
        SurveyRecord("P16", [_answers("2018-12-02T05:00", gender="nin", mog_sub_district="Kismayo",
                                      age="sodon jir")]),
        SurveyRecord("P17", [_answers("2018-12-09T17:00", gender="male", mog_sub_district="hodan",
                                      age="toban iyo sideed")]),
        SurveyRecord("P20", [_answers("2018-12-13T08:00", gender="Female", age="sodon iyo shan")]),
        # The test contact's survey record: tagged like its show record, dropped with it.
        SurveyRecord("P99", [_answers("2018-12-03T11:00", gender="boy", age="lix iyo labaatan")], test_run=True),
    ],
    "csap_evaluation": [
        SurveyRecord("P01", [_answers("2018-12-20T05:00", repeated="haa", involved="haa maya")]),
        SurveyRecord("P03", [_answers("2018-12-21T09:00", repeated="No", involved="may be")]),
        SurveyRecord("P16", [_answers("2018-12-20T06:00", repeated="Yes")]),
        # P17 answered "haa" before P01 did: the repeated Coda message carries P17's time.
        SurveyRecord("P17", [_answers("2018-12-19T17:00", repeated="haa")]),
        SurveyRecord("P19", [_answers("2018-12-22T08:00", involved="haa")]),
    ],
}

# -- coded Coda files (Coded Coda Files/<dataset>.json, as Coda V2's get.py writes them) ----------------------------

CODER = {"OriginID": "coder.a@example.org", "Name": "Coder A", "OriginType": "Manual"}


def coder(scheme_id: str, code_id: str, at: str, checked: bool | None = True) -> dict[str, Any]:
    """A label a coder wrote in Coda's UI (Dart UTC time). ``checked=None`` omits the key."""
    label: dict[str, Any] = {"SchemeID": scheme_id, "CodeID": code_id, "DateTimeUTC": at}
    if checked is not None:
        label["Checked"] = checked
    label["Origin"] = dict(CODER)
    return label


def suggestion(scheme_id: str, code_id: str, cleaner_source: str) -> dict[str, Any]:
    """An auto-code suggestion an earlier 2019 run uploaded (unchecked, External origin)."""
    return {"SchemeID": scheme_id, "CodeID": code_id, "DateTimeUTC": "2019-01-15T08:00:00.123456+00:00",
            "Checked": False,
            "Origin": {"OriginID": cleaner_source, "Name": "Pipeline Auto-Coder", "OriginType": "External"}}


T1, T2, T3 = "2019-01-18T09:00:00.000Z", "2019-01-18T09:05:00.000Z", "2019-01-18T09:10:00.000Z"

S01E01, S01E01_1 = "Scheme-d7eb83ef", "Scheme-d7eb83ef-1"
S01E02, S01E02_1, S01E02_BIN = "Scheme-4f039174", "Scheme-4f039174-1", "Scheme-3205c427"
S01E03, S01E03_BIN, WS_DATASET = "Scheme-5b60cc33", "Scheme-1161eddc", "Scheme-fffffc6e"
S01E04 = "Scheme-3abe50d3"
GENDER, AGE = "Scheme-12cb6f95", "Scheme-4189e74c"
SUB_DISTRICT, DISTRICT, REGION, STATE, ZONE = ("Scheme-07dfc611", "Scheme-5292e8fb", "Scheme-644e3296",
                                                "Scheme-a390e6ce", "Scheme-b8ce44fb")
IDP_CAMP, HH_LANGUAGE = "Scheme-0fe57c6d", "Scheme-e3290e1f"

NA, NC, STOP, WS = "code-NA-f93d3eb7", "code-NC-42f1d983", "code-STOP-08b832a8", "code-WS-adb25603b7af"
GENDER_SOURCE = "/app/core_data_modules/cleaners/somali/demographic_cleaner.py:28:clean_gender"
DISTRICT_SOURCE = "/app/core_data_modules/cleaners/somali/demographic_cleaner.py:44:clean_somalia_district"

# Each entry: (text, creation time as the pipeline uploaded it, labels newest first).
CODED: dict[str, list[tuple[str, str, list[dict[str, Any]]]]] = {
    "s01e01.json": [
        (message_text("M01"), "2018-12-01T21:00:00+00:00", [
            coder(S01E01_1, "code-219e9adc", T2),  # access_to_education, under the duplicate scheme
            coder(S01E01, "code-aaaab0f3", T1),  # job_creation
        ]),
        (message_text("M03"), "2018-12-02T16:25:18+00:00", [coder(S01E01, "code-ac249875", T1)]),  # access_to_water
        # Unchecked only -> NR.
        (message_text("M05"), "2018-12-02T20:59:59+00:00", [coder(S01E01, "code-aaaab0f3", T1, checked=False)]),
        # government_to_support_communities: applies to both M09 and M10 (same text).
        (message_text("M09"), "2018-12-05T21:00:00+00:00", [coder(S01E01, "code-468a63a1", T1)]),
        (message_text("M13"), "2018-12-10T05:30:00+00:00", [coder(S01E01, "code-219e9adc", T1)]),
        (message_text("M19"), "2018-12-07T09:00:00+00:00", [coder(S01E01, "code-6215c2c3", T1)]),  # shelter
        (message_text("M14"), "2018-12-04T07:15:30.250000+00:00", [
            coder(S01E01_1, "code-e1dc9360", T3),  # land
            coder(S01E01, "SPECIAL-MANUALLY_UNCODED", T2, checked=False),  # clears ...
            coder(S01E01, "code-816ad5ac", T1),  # ... peace_and_security
        ]),
        # A message of a dropped run (M02, outside the project window): matches no record, ignored.
        (message_text("M02"), "2018-12-01T20:59:59+00:00", [coder(S01E01, "code-69260ca0", T1)]),
    ],
    "s01e02.json": [
        (message_text("M20"), "2018-12-08T21:00:00+00:00", [
            coder(S01E02_BIN, "code-7b2e4d4b", T3),  # integrate
            coder(S01E02_1, "code-5f84e4b3", T2, checked=False),  # religion_commands_it, unchecked
            coder(S01E02, "code-b4175ee3", T1),  # same_identity
        ]),
        (message_text("M21"), "2018-12-09T16:00:29+00:00", [
            coder(S01E02_BIN, "code-7b2e4d4b", T2), coder(S01E02, "code-38234080", T1)]),
        (message_text("M22"), "2018-12-09T16:00:30+00:00", [
            coder(S01E02_BIN, "code-4350fe6a", T2), coder(S01E02, "code-17eef36e", T1)]),  # return, return_other
        (message_text("M24"), "2018-12-11T21:00:00+00:00", [
            coder(S01E02_BIN, "code-7b2e4d4b", T2, checked=None),  # no "Checked": NR
            coder(S01E02, "code-73a5fd8e", T1)]),  # should_be_given_jobs
        (message_text("M25"), "2018-12-12T21:00:00+00:00", [coder(S01E02, STOP, T1)]),
        # Checked, then unticked: the latest label of the scheme is unchecked and no other is checked -> NR.
        (message_text("M27"), "2018-12-13T21:00:00+00:00", [
            coder(S01E02, "code-73a5fd8e", T2, checked=False), coder(S01E02, "code-73a5fd8e", T1)]),
        # M30 was moved here from the week-3 flow by C1; coders coded it in the s01e02 dataset.
        (message_text("M30"), "2018-12-14T21:00:00+00:00", [
            coder(S01E02_BIN, "code-7b2e4d4b", T2), coder(S01E02, "code-b58b2c3d", T1)]),  # they_are_in_need
        (message_text("M43"), "2018-12-12T21:00:00+00:00", [
            coder(S01E02_BIN, "code-7b2e4d4b", T2), coder(S01E02, "code-38234080", T1)]),
        (message_text("M44"), "2018-12-12T21:00:00+00:00", [
            coder(S01E02_BIN, "code-4350fe6a", T2), coder(S01E02, "code-d3c42a95", T1)]),
        (message_text("M47"), "2018-12-13T21:00:00+00:00", [coder(S01E02, "code-19da0662", T1)]),
        (message_text("M48"), "2018-12-13T21:00:00+00:00", [
            coder(S01E02_BIN, "code-cc669a0a", T2), coder(S01E02, "code-b58b2c3d", T1)]),  # ambivalent
    ],
    "s01e03.json": [
        # C1: checked WS - Correct Dataset label "s01e02".
        (message_text("M30"), "2018-12-24T07:00:00+00:00", [coder(WS_DATASET, "code-9a5f15d6", T1)]),
        # Unchecked "s01e02": not moved.
        (message_text("M31"), "2018-12-16T21:00:00+00:00", [
            coder(WS_DATASET, "code-9a5f15d6", T1, checked=False)]),
        # "s01e02" without a Checked key: not moved; reasons and yes/no coded.
        (message_text("M32"), "2018-12-18T20:59:59+00:00", [
            coder(S01E03_BIN, "code-be86bca5", T3),  # yes
            coder(S01E03, "code-a64a8dd5", T2),  # axes_of_discrimination_access_to_health_care
            coder(WS_DATASET, "code-9a5f15d6", T1, checked=None),
        ]),
        (message_text("M33"), "2018-12-22T21:00:00+00:00", [
            coder(S01E03_BIN, "code-c209a282", T2),  # no
            coder(S01E03, "code-5e688ce8", T1)]),  # reasons_for_lack_of_discrimination_common_identity
        # A checked WS label for another dataset (s01e04) does not trigger C1; C2 moves M34.
        (message_text("M34"), "2018-12-22T21:00:01+00:00", [coder(WS_DATASET, "code-f7a875ee", T1)]),
        (message_text("M35"), "2018-12-15T21:00:00+00:00", [
            coder(S01E03_BIN, "code-be86bca5", T2), coder(S01E03, "code-89cd0dc6", T1)]),
        (message_text("M36"), "2018-12-16T16:00:55+00:00", [
            coder(S01E03_BIN, WS, T2), coder(S01E03, WS, T1)]),
        (message_text("M37"), "2018-12-19T21:00:00+00:00", [
            coder(S01E03_BIN, "code-be86bca5", T2), coder(S01E03, "code-352129d8", T1)]),
        (message_text("M39"), "2018-12-22T20:59:59+00:00", [coder(S01E03, "code-e6364a7c", T1)]),
        # Coded, then the code cleared: nothing left -> NR (coda.md 5.3).
        (message_text("M3A"), "2018-12-18T21:00:00+00:00", [
            coder(S01E03, "SPECIAL-MANUALLY_UNCODED", T2, checked=False),
            coder(S01E03, "code-1b80beba", T1)]),  # axes_of_discrimination_rights_are_violated
        (message_text("M3C"), "2018-12-21T07:00:00+00:00", [
            coder(S01E03_BIN, "code-c209a282", T2),  # no
            coder(S01E03, "code-49e980c2", T1)]),  # reasons_for_lack_of_discrimination_religion
    ],
    "s01e04.json": [
        (message_text("M34"), "2018-12-22T21:00:01+00:00", [coder(S01E04, "code-5e1ce974", T1)]),  # good_governance
        (message_text("M40"), "2018-12-23T16:00:44+00:00", [coder(S01E04, "code-8dee6e7d", T1)]),  # build_housing
        (message_text("M41"), "2018-12-23T16:00:45+00:00", [coder(S01E04, "code-0639b176", T1)]),
        (message_text("M50"), "2018-12-30T21:00:00+00:00", [coder(S01E04, "code-94c43f5c", T1)]),
        (message_text("M52"), "2018-12-26T21:00:00+00:00", [coder(S01E04, NA, T1)]),
        (message_text("M53"), "2018-12-27T21:00:00+00:00", [coder(S01E04, NA, T1)]),
        (message_text("M54"), "2018-12-30T20:59:59+00:00", [coder(S01E04, "code-700ae940", T1)]),  # religion
        (message_text("M55"), "2018-12-25T21:00:00+00:00", [coder(S01E04, "code-646d5b26", T1)]),  # other
        (message_text("M56"), "2018-12-23T21:00:00+00:00", [coder(S01E04, "code-3d0b365b", T1)]),
    ],
    "gender.json": [
        (
            "male", "2018-12-02T18:00:05+00:00",
            [coder(GENDER, "code-63dcde9a", T2), suggestion(GENDER, "code-63dcde9a", GENDER_SOURCE)],
        ),
        ("Female", "2018-12-03T08:00:05.123456+00:00", [coder(GENDER, "code-86a4602c", T1)]),
        # Only the earlier run's suggestion, never checked -> NR.
        ("M", "2018-12-03T16:00:05+00:00", [suggestion(GENDER, "code-63dcde9a", GENDER_SOURCE)]),
        # Checked, then unticked: the newest label is unchecked -> NR (coda.md 5.2).
        ("F", "2018-12-04T06:00:05+00:00", [
            coder(GENDER, "code-86a4602c", T2, checked=False), coder(GENDER, "code-86a4602c", T1)]),
        # A suggestion confirmed by ticking its checkbox (a checked copy) -> female.
        ("naag", "2018-12-05T10:00:05+00:00", [
            coder(GENDER, "code-86a4602c", T1), suggestion(GENDER, "code-86a4602c", GENDER_SOURCE)]),
        ("Stop", "2018-12-06T12:00:05+00:00", [coder(GENDER, STOP, T1)]),
        # The test contact's answer from an earlier run: matches no record, ignored.
        ("boy", "2018-12-03T11:00:05+00:00", [coder(GENDER, "code-63dcde9a", T1)]),
    ],
    "location.json": [
        ("Mogadishu", "2018-12-02T18:00:40+00:00", [suggestion(DISTRICT, "code-2e6192c8", DISTRICT_SOURCE)]),
        ("hodan", "2018-12-03T07:00:40+00:00", [coder(SUB_DISTRICT, "code-ae4b5ca2", T1)]),
        ("Baidoa", "2018-12-03T08:00:40+00:00", [
            coder(DISTRICT, "code-208448a6", T1), suggestion(DISTRICT, "code-208448a6", DISTRICT_SOURCE)]),
        ("Puntland", "2018-12-04T06:00:40+00:00", [coder(STATE, "code-8ba54648", T1)]),  # state only
        # The coder chose a district and left the old sub-district suggestion unchecked: the sub-district is NR,
        # so the district is the first level that is not NR (7.6.4).
        ("Xamar Weyne", "2018-12-04T15:00:40+00:00", [
            coder(DISTRICT, "code-2e6192c8", T1),
            suggestion(SUB_DISTRICT, "code-2e3cedff", "/app/core_data_modules/cleaners/somali/"
                                                      "demographic_cleaner.py:40:clean_mogadishu_sub_district")]),
        ("Las Anod", "2018-12-04T09:00:40+00:00", [coder(REGION, "code-b15551e9", T1)]),  # region sool only
        ("Waqooyi", "2018-12-05T10:00:40+00:00", [coder(ZONE, "code-af3d9e5b", T1)]),  # zone nwz only
        # A sub-district and a district both checked: NIC, even though they are consistent (7.6.4).
        ("Hodan, Mogadishu", "2018-12-05T11:00:40+00:00", [
            coder(DISTRICT, "code-2e6192c8", T2), coder(SUB_DISTRICT, "code-ae4b5ca2", T1)]),
        # A control code: NC at all five levels.
        ("nairobi", "2018-12-07T13:00:40+00:00", [coder(DISTRICT, NC, T1)]),
        # NC at two levels: control codes share their CodeID across schemes, so no NIC -> NC at all five levels.
        ("Nairobi Kenya", "2018-12-11T14:00:40+00:00", [coder(DISTRICT, NC, T2), coder(SUB_DISTRICT, NC, T1)]),
    ],
    "age.json": [
        ("10", "2018-12-03T08:01:10+00:00", [coder(AGE, "code-a3305435", T1)]),
        ("25", "2018-12-04T06:01:10+00:00", [coder(AGE, "code-47558a0f", T1)]),
        ("afartan", "2018-12-10T06:00:30+00:00", [coder(AGE, "code-43536bdb", T1)]),  # 40
    ],
    "idp_camp.json": [
        ("haa", "2018-12-03T07:01:30+00:00", [coder(IDP_CAMP, "code-dc43b68e", T1)]),  # yes
        # A code cleared (SPECIAL-MANUALLY_UNCODED, unchecked) -> NR.
        ("maya", "2018-12-03T08:01:30+00:00", [
            coder(IDP_CAMP, "SPECIAL-MANUALLY_UNCODED", T2, checked=False), coder(IDP_CAMP, "code-5d5708c8", T1)]),
        # WS from a coder passes through as "WS" (coda.md 5.4).
        ("Yes", "2018-12-04T09:01:30+00:00", [coder(IDP_CAMP, WS, T1)]),
    ],
    "hh_language.json": [
        ("Af-Soomaali", "2018-12-03T07:02:10+00:00", [coder(HH_LANGUAGE, "code-23cf3616", T1)]),  # somali
        # NS (coders only) passes through as "NS".
        ("Carabi (\u0627\u0644\u0639\u0631\u0628\u064a\u0629)", "2018-12-03T08:02:10+00:00",
         [coder(HH_LANGUAGE, "code-NS-2c11b7c9", T1)]),
    ],
    # recently_displaced.json, repeated.json and involved.json are missing: nothing coded yet (README).
}

# -- writers ------------------------------------------------------------------------------------------------------

_TRACED_DATA = "core_data_modules.traced_data.traced_data.TracedData"
_METADATA = "core_data_modules.traced_data.traced_data.Metadata"
_FETCH_SOURCE = "fetch_runs.py:135:<module>"
_FETCH_USER = "fetcher@example.org"


def _metadata(timestamp: float) -> dict[str, Any]:
    return {"py/object": _METADATA, "source": _FETCH_SOURCE, "timestamp": timestamp, "user": _FETCH_USER}


def _layer(data: dict[str, Any], metadata: Any, prev: dict[str, Any] | None) -> dict[str, Any]:
    """One TracedData layer; _sha by the rule of rapid-pro.md 4.2."""
    prev_sha = prev["_sha"] if prev is not None else ""
    payload = json.dumps({"data": data, "prev_sha": prev_sha}, sort_keys=True)
    sha = hashlib.sha256(payload.encode("utf-8")).hexdigest()
    return {"_data": data, "_metadata": metadata, "_prev": prev, "_sha": sha, "py/object": _TRACED_DATA}


def _result_keys(result_key: str, flow: str, value: str, text: str, time: str, run_id: int) -> dict[str, Any]:
    k = result_key.title()
    return {
        f"{k} (Category) - {flow}": "All Responses",
        f"{k} (Value) - {flow}": value,
        f"{k} (Text) - {flow}": text,
        f"{k} (Name) - {flow}": k.replace("_", " "),
        f"{k} (Time) - {flow}": time,
        f"{k} (Run ID) - {flow}": run_id,
    }


def _show_records(flow: str, messages: list[ShowMessage]) -> list[dict[str, Any]]:
    result_key = flow.removeprefix("csap_").removesuffix("_activation")
    result_key = "rqa_" + result_key
    records = []
    modified = datetime(2018, 12, 1, tzinfo=timezone.utc)
    for index, message in enumerate(messages):
        data: dict[str, Any] = {"avf_phone_id": uid(message.person)}
        if message.time is not None:
            sent = datetime.fromisoformat(message.time)
            data.update(_result_keys(result_key, flow, message.text, message.text, _utc(message.time),
                                     message.run_id))
            started = sent.astimezone(timezone.utc) - timedelta(minutes=2)
        else:
            started = modified
        # Files are ordered oldest-modified run first (rapid-pro.md 2 step 3): modified_on ascends in file order.
        modified = max(started + timedelta(minutes=3), modified + timedelta(minutes=1))
        data.update({
            "created_on": started.isoformat(),
            "modified_on": modified.isoformat(),
            "exited_on": modified.isoformat(),
            "exit_type": "completed" if message.time is not None else "expired",
        })
        if message.test_run:
            data["test_run"] = True
        metadata: Any = _metadata(1547900000.0 + index)
        if flow == "csap_s01e01_activation" and message.id == "M02":
            # The same Metadata object as the first record's: jsonpickle numbers the top-level list 0, the first
            # record 1 and its _metadata 2 (rapid-pro.md 4.2).
            assert index == 1
            metadata = {"py/id": 2}
        records.append(_layer(data, metadata, None))
    return records


def _survey_records(flow: str, surveys: list[SurveyRecord]) -> list[dict[str, Any]]:
    records = []
    for index, survey in enumerate(surveys):
        layer = None
        for run_number, answers in enumerate(survey.runs):
            data: dict[str, Any] = {"avf_phone_id": uid(survey.person)}
            for key, answer, time in answers:
                value, text = answer if isinstance(answer, tuple) else (answer, answer)
                data.update(_result_keys(key, flow, value, text, time, 5000 + 10 * index + run_number))
            if survey.test_run:
                data["test_run"] = True
            layer = _layer(data, _metadata(1547950000.0 + 10 * index + run_number), layer)
        assert layer is not None
        if survey.py_state:
            layer = {"py/object": _TRACED_DATA, "py/state": {k: v for k, v in layer.items() if k != "py/object"}}
        records.append(layer)
    return records


def _coded_messages(entries: list[tuple[str, str, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    # get.py: json.dumps(indent=2) of the Firestore documents, keys in document order (not sorted).
    messages = []
    for n, (text, created, labels) in enumerate(entries):
        message = {"MessageID": hashlib.sha256(text.encode("utf-8")).hexdigest(), "Text": text,
                   "CreationDateTimeUTC": created, "Labels": labels, "SequenceNumber": 100 + n}
        if n % 3 == 2:
            # Written by the data tools from 2020-07 (coda.md 2); the pipeline ignores it.
            message["LastUpdated"] = "2019-01-18T10:00:00.000000+00:00"
        messages.append(message)
    return messages


def write_data_root(root: Path = DATA_ROOT) -> None:
    """(Re)writes the whole golden data root."""
    if root.exists():
        shutil.rmtree(root)
    (root / "UUIDs").mkdir(parents=True)
    (root / "Raw Data").mkdir()
    (root / "Coded Coda Files").mkdir()

    # The 2019 table: json.dumps defaults, insertion order, no trailing newline (rapid-pro.md 6.1).
    table = {key: uid(person) for person, key in PEOPLE.items()}
    (root / "UUIDs" / "phone_uuids.json").write_text(json.dumps(table), encoding="utf-8")

    def dump_raw(flow: str, records: list[dict[str, Any]]) -> None:
        text = json.dumps(records, sort_keys=True, indent=2, separators=(", ", ": ")) + "\n"
        (root / "Raw Data" / f"{flow}.json").write_text(text, encoding="utf-8")

    for flow, messages in SHOW_FILES.items():
        dump_raw(flow, _show_records(flow, messages))
    for flow, surveys in SURVEYS.items():
        dump_raw(flow, _survey_records(flow, surveys))

    for name, entries in CODED.items():
        text = json.dumps(_coded_messages(entries), indent=2) + "\n"
        (root / "Coded Coda Files" / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write_data_root()
    print(f"wrote {DATA_ROOT}")
