#!/usr/bin/env python3
"""Writes ``tests/golden/expected/``: the outputs stage 3 must produce on the golden data root.

The expected cells are declared here by hand, case by case, from the spec (``tests/golden/README.md`` gives the
rule behind each). This script only expands the declarations into files in the output formats:

- a message row is declared by its show, channel, week, the codes of its own show and its binary value; the
  other 126 cells follow mechanically (other shows: NA = 1; raw text of its own show only; the person's survey
  cells), then a withdrawn row becomes STOP in every present cell (pipeline.md 9.1);
- an individual of one message is that message row (7.7.6); an individual of several messages is declared in
  full: its channels, weeks, the matrix codes that end up 1 per show, its binary values and which messages'
  texts are concatenated;
- ICR rows are ``random.Random(0).sample`` of the candidates listed here in data order (7.4.9);
- Coda files list each message in its expected order with its expected labels.

Run from the project root: ``.venv/bin/python tests/golden/make_expected.py``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import shutil
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_data_root import PEOPLE, message_text, uid  # noqa: E402

__all__ = ["EXPECTED", "RUN_USER", "RUN_STARTED_AT", "LABEL_TIME", "write_expected"]

HERE = Path(__file__).resolve().parent
EXPECTED = HERE / "expected"

# The fixed clock of the golden run: every label stage 3 creates carries it (README decision 8).
RUN_USER = "golden@example.org"
RUN_STARTED_AT = datetime(2019, 1, 20, 16, 0, 0, 123456, tzinfo=timezone.utc)
LABEL_TIME = "2019-01-20T16:00:00.123456+00:00"

SHOWS = ("s01e01", "s01e02", "s01e03", "s01e04")
CHANNELS = ("sms_ad", "radio_promo", "radio_show")

# The 127 columns of csap_mes.csv and csap_ind.csv, copied from pipeline.md 9.1.
MATRIX = {
    "s01e01": [
        "NA", "NC", "NIC", "NR", "NS", "STOP", "WS", "access_to_education", "access_to_water",
        "availability_of_health_facilities", "committees_to_be_organised_on_displacement", "community_consultation",
        "crowdfunding", "financial_support", "food_assistance", "government_to_support_communities", "job_creation",
        "just_and_transparent_delivery_of_aid", "keep_in_one_place", "land", "other", "peace_and_security",
        "return_to_area_of_origin", "sanitation_and_hygiene", "shelter", "skills_training",
    ],
    "s01e02": [
        "NA", "NC", "NIC", "NR", "NS", "STOP", "WS", "can_contaminate_with_disease", "come_from_a_place_of_need",
        "consult_with_them", "government_to_be_structured_in_right_way", "integrate_other",
        "integration_facilitates_assistance", "integration_strengthens_social_cohesion",
        "necessary_to_end_displacement", "needs_can_be_better_met_in_country_side", "religion_commands_it",
        "remove_for_social_cohesion", "return_other", "same_identity", "should_be_given_jobs",
        "they_are_farmers_pastoralists", "they_are_in_need", "they_put_pressure_on_basic_services",
    ],
    "s01e03": [
        "NA", "NC", "NIC", "NR", "NS", "STOP", "WS", "axes_of_discrimination_access_to_education",
        "axes_of_discrimination_access_to_health_care", "axes_of_discrimination_access_to_housing",
        "axes_of_discrimination_access_to_job_opportunities", "axes_of_discrimination_rights_are_violated",
        "discriminating_actor_community", "discriminating_actor_government", "discriminating_actor_ngos",
        "reasons_for_discrimination_community_feels_superior",
        "reasons_for_discrimination_lack_of_host-idp_interaction",
        "reasons_for_lack_of_discrimination_are_citizens", "reasons_for_lack_of_discrimination_common_identity",
        "reasons_for_lack_of_discrimination_deserve_assistance",
        "reasons_for_lack_of_discrimination_no_displaced_people", "reasons_for_lack_of_discrimination_religion",
    ],
    "s01e04": [
        "NA", "NC", "NIC", "NR", "NS", "STOP", "WS", "allow_them_to_stay_on_current_land", "build_housing",
        "combat_inequality", "good_governance", "other", "peace_and_security", "procure_them_land", "religion",
        "return_and_relocation", "set_up_committee_to_handle", "support_justice_system",
    ],
}
BINARY = {"s01e02": "rqa_s01e02_integrate_return", "s01e03": "rqa_s01e03_yes_no"}
SURVEY_COLUMNS = [
    "gender", "gender_raw", "mogadishu_sub_district", "mogadishu_sub_district_raw", "district", "region", "state",
    "zone", "age", "age_raw", "idp_camp", "idp_camp_raw", "recently_displaced", "recently_displaced_raw",
    "hh_language", "hh_language_raw", "repeated", "repeated_raw", "involved", "involved_raw",
]
COLUMNS = (
    ["uid", "operator", "consent_withdrawn", *CHANNELS, "non_logical_time"]
    + [f"radio_participation_{show}" for show in SHOWS]
    + [f"rqa_{show}_{code}" for show in SHOWS for code in MATRIX[show]]
    + list(BINARY.values())
    + [f"rqa_{show}_raw" for show in SHOWS]
    + SURVEY_COLUMNS
)
PRODUCTION_COLUMNS = ["uid"] + [f"rqa_{show}_raw" for show in SHOWS] + [c for c in SURVEY_COLUMNS if c.endswith("_raw")]
assert len(COLUMNS) == 127 and len(PRODUCTION_COLUMNS) == 13
assert [f"rqa_{s}_{c}" for s in SHOWS for c in MATRIX[s]] == sorted(f"rqa_{s}_{c}" for s in SHOWS for c in MATRIX[s])

# -- people: operator (cleaners.md 10) and survey cells (pipeline.md 7.6, 7.7.2) -------------------------------------

OPERATOR = {
    "P01": "hormud", "P02": "sometel", "P03": "telesom", "P04": "hormud", "P05": "sometel", "P06": "sometel",
    "P07": "nationlink", "P08": "somnet", "P09": "nationlink", "P10": "golis", "P11": "NC", "P12": "NC",
    "P13": "NC", "P14": "NC", "P17": "hormud", "P18": "hormud", "P19": "telesom", "P20": "sometel",
    "P21": "somnet", "P22": "nationlink", "P23": "golis", "P24": "hormud", "P25": "sometel", "P26": "telesom",
    "P27": "hormud", "P28": "sometel", "P29": "sometel", "P30": "nationlink", "P31": "somnet", "P33": "nationlink",
    "P34": "golis", "P35": "hormud", "P36": "sometel", "P37": "telesom", "P38": "hormud", "P39": "sometel",
    "P40": "sometel", "P41": "hormud", "P42": "sometel", "P43": "telesom", "P44": "somnet", "P45": "golis",
    "P46": "nationlink", "P47": "hormud", "P48": "sometel",
}

NA5 = ("NA",) * 5


def _survey(gender="NA", location=NA5, age="NA", idp_camp="NA", recently_displaced="NA", hh_language="NA",
            repeated="NA", involved="NA", **raws: str) -> dict[str, str | None]:
    """A person's 20 survey cells; a raw answer not given is absent (an empty cell that STOP leaves empty)."""
    cells: dict[str, str | None] = {
        "gender": gender, "mogadishu_sub_district": location[0], "district": location[1], "region": location[2],
        "state": location[3], "zone": location[4], "age": age, "idp_camp": idp_camp,
        "recently_displaced": recently_displaced, "hh_language": hh_language, "repeated": repeated,
        "involved": involved,
    }
    for column in SURVEY_COLUMNS:
        if column.endswith("_raw"):
            cells[column] = raws.pop(column, None)
    assert not raws, raws
    return cells


SURVEY: dict[str, dict[str, str | None]] = {
    # Checked codes count; suggestions never checked are NR; the age comes from the newer survey run.
    "P01": _survey("male", ("hodan", "mogadishu", "banadir", "banadir", "scz"), "40", "yes", "NR", "somali", "NR",
                   "NR", gender_raw="male", mogadishu_sub_district_raw="hodan", age_raw="afartan",
                   idp_camp_raw="haa", recently_displaced_raw="xaa", hh_language_raw="Af-Soomaali",
                   repeated_raw="haa", involved_raw="haa maya"),
    # District only -> the levels above it derived, sub-district NC.
    # idp_camp: the code was cleared -> NR; hh_language coded NS.
    "P02": _survey("female", ("NC", "baidoa", "bay", "south west state", "scz"), "10", "NR", "NR", "NS",
                   gender_raw="Female", mogadishu_sub_district_raw="Baidoa", age_raw="10", idp_camp_raw="maya",
                   recently_displaced_raw="mayo",
                   hh_language_raw="Carabi (\u0627\u0644\u0639\u0631\u0628\u064a\u0629)"),
    # Region only; idp_camp coded WS.
    "P03": _survey("NR", ("NC", "NC", "sool", "somaliland", "nwz"), "NR", "WS", repeated="NR", involved="NR",
                   gender_raw="M", mogadishu_sub_district_raw="Las Anod", age_raw="11", idp_camp_raw="Yes",
                   repeated_raw="No", involved_raw="may be"),
    # State only; age_raw is Rapid Pro's (Value), not the raw input.
    "P04": _survey("NR", ("NC", "NC", "NC", "puntland", "nez"), "25", "NR", gender_raw="F",
                   mogadishu_sub_district_raw="Puntland", age_raw="25", idp_camp_raw="I am not sure"),
    # Zone only: kept (README deliberate difference; 2019 gave NC at all five levels).
    "P05": _survey("female", ("NC", "NC", "NC", "NC", "nwz"), "NR", gender_raw="naag",
                   mogadishu_sub_district_raw="Waqooyi", age_raw="89"),
    # Sub-district and district both checked -> NIC at all five levels.
    "P06": _survey("NR", ("NIC",) * 5, "NR", gender_raw="wiil", mogadishu_sub_district_raw="Hodan, Mogadishu",
                   age_raw="90"),
    # Gender STOP (consent withdrawn); an empty age answer is NA with a present raw cell.
    "P07": _survey("STOP", gender_raw="Stop", age_raw=""),
    # A district suggestion nobody checked -> NR at all five levels.
    "P08": _survey("male", ("NR",) * 5, "NR", gender_raw="male", mogadishu_sub_district_raw="Mogadishu",
                   age_raw="99"),
    # NC checked at district level -> NC at all five levels.
    "P10": _survey("male", ("NC",) * 5, "NR", gender_raw="male", mogadishu_sub_district_raw="nairobi",
                   age_raw="100"),
    # NC checked at two levels: no conflict between equal control codes -> NC at all five levels.
    "P11": _survey("female", ("NC",) * 5, "NR", gender_raw="Female", mogadishu_sub_district_raw="Nairobi Kenya",
                   age_raw="toban iyo sideed"),
    # District checked, the sub-district suggestion left unchecked (NR): derived from the district.
    "P12": _survey("female", ("NC", "mogadishu", "banadir", "banadir", "scz"), "NR", gender_raw="Female",
                   mogadishu_sub_district_raw="Xamar Weyne", age_raw="labaatan iyo bar"),
    "P14": _survey("NR", gender_raw="M"),
    "P17": _survey("male", ("hodan", "mogadishu", "banadir", "banadir", "scz"), "NR", repeated="NR",
                   gender_raw="male", mogadishu_sub_district_raw="hodan", age_raw="toban iyo sideed",
                   repeated_raw="haa"),
    "P19": _survey(involved="NR", involved_raw="haa"),
    "P20": _survey("female", age="NR", gender_raw="Female", age_raw="sodon iyo shan"),
}
NO_SURVEY = _survey()  # never answered: NA everywhere, raw cells empty

# -- messages, in csap_mes.csv order (data order, after the filters) ------------------------------------------------


@dataclass(frozen=True)
class Message:
    id: str
    person: str
    show: str  # the show after the corrections (its raw key)
    channel: str | None  # sms_ad / radio_promo / radio_show, None = non-logical time
    week: str | None  # the radio_participation_<week> that is true
    codes: tuple[str, ...]  # the own show's matrix codes that are 1
    binary: str | None = None  # the own show's binary value (shows 2 and 3)
    noise: bool = False
    withdrawn: bool = False


def _msg(id, person, show, channel, week, codes, binary=None, *, noise=False, withdrawn=False) -> Message:
    if show in BINARY:
        assert binary is not None, id
    return Message(id, person, show, channel, week, tuple(codes), binary, noise, withdrawn)


MESSAGES: list[Message] = [
    _msg("M01", "P01", "s01e01", "radio_promo", "s01e01", ["job_creation", "access_to_education"]),
    _msg("M03", "P02", "s01e01", "radio_promo", "s01e01", ["access_to_water"]),
    _msg("M04", "P03", "s01e01", "sms_ad", "s01e01", ["NC"], noise=True),
    _msg("M05", "P01", "s01e01", "sms_ad", "s01e01", ["NR"]),
    _msg("M06", "P04", "s01e01", "radio_promo", "s01e01", ["NR"]),
    _msg("M07", "P05", "s01e01", "radio_promo", "s01e01", ["NC"], noise=True),
    _msg("M08", "P06", "s01e01", None, "s01e01", ["NR"]),
    _msg("M10", "P08", "s01e01", "radio_show", "s01e01", ["government_to_support_communities"]),
    _msg("M09", "P07", "s01e01", "radio_show", "s01e01", ["government_to_support_communities"], withdrawn=True),
    _msg("M11", "P09", "s01e01", None, "s01e01", ["NR"]),
    _msg("M12", "P10", "s01e01", None, "s01e01", ["NC"], noise=True),
    _msg("M13", "P11", "s01e01", "radio_promo", "s01e02", ["access_to_education"]),
    _msg("M14", "P12", "s01e01", "radio_promo", "s01e01", ["land"]),
    _msg("M15", "P13", "s01e01", "radio_promo", "s01e01", ["NC"], noise=True),
    _msg("M16", "P14", "s01e01", "radio_promo", "s01e01", ["NR"]),
    _msg("M19", "P48", "s01e01", None, "s01e01", ["shelter"]),
    _msg("M20", "P01", "s01e02", "radio_promo", "s01e02", ["same_identity", "religion_commands_it"], "integrate"),
    _msg("M21", "P17", "s01e02", "radio_promo", "s01e02", ["integration_strengthens_social_cohesion"], "integrate"),
    _msg("M22", "P17", "s01e02", "sms_ad", "s01e02", ["return_other"], "return"),
    _msg("M23", "P18", "s01e02", "radio_promo", "s01e02", ["NR"], "NR"),
    _msg("M24", "P19", "s01e02", None, "s01e02", ["should_be_given_jobs"], "NR"),
    _msg("M25", "P20", "s01e02", "radio_show", "s01e02", ["STOP"], "NR", withdrawn=True),
    _msg("M26", "P21", "s01e02", "radio_show", "s01e02", ["NC"], "NC", noise=True),
    _msg("M27", "P22", "s01e02", None, "s01e02", ["NR"], "NR"),
    _msg("M28", "P23", "s01e02", None, "s01e02", ["NC"], "NC", noise=True),
    # Short, but each looks demographic: not noise; nothing coded -> NR.
    _msg("M2A", "P41", "s01e02", "radio_promo", "s01e02", ["NR"], "NR"),
    _msg("M2B", "P42", "s01e02", "radio_promo", "s01e02", ["NR"], "NR"),
    _msg("M2C", "P43", "s01e02", "radio_promo", "s01e02", ["NR"], "NR"),
    _msg("M2D", "P44", "s01e02", "radio_promo", "s01e02", ["NR"], "NR"),
    _msg("M2E", "P45", "s01e02", "radio_promo", "s01e02", ["NR"], "NR"),
    _msg("M2F", "P46", "s01e02", "radio_promo", "s01e02", ["NC"], "NC", noise=True),
    _msg("M2G", "P46", "s01e02", "radio_promo", "s01e02", ["NR"], "NR"),
    _msg("M2H", "P47", "s01e02", "radio_promo", "s01e02", ["NC"], "NC", noise=True),
    # The empty text: noise; its raw cell is empty although present.
    _msg("M2I", "P48", "s01e02", None, "s01e02", ["NC"], "NC", noise=True),
    # C1: week-3 flow, show 2, faked time 2018-12-15T00:00 (non-logical, week 2).
    _msg("M30", "P24", "s01e02", None, "s01e02", ["they_are_in_need"], "integrate"),
    _msg("M31", "P25", "s01e03", "radio_promo", "s01e03", ["NR"], "NR"),
    _msg("M32", "P26", "s01e03", "radio_promo", "s01e03", ["axes_of_discrimination_access_to_health_care"], "yes"),
    _msg("M33", "P27", "s01e03", "radio_promo", "s01e04", ["reasons_for_lack_of_discrimination_common_identity"],
         "no"),
    # C2: week-3 flow, show 4, own time.
    _msg("M34", "P28", "s01e04", "radio_promo", "s01e04", ["good_governance"]),
    _msg("M35", "P01", "s01e03", "radio_promo", "s01e03", ["discriminating_actor_community"], "yes"),
    _msg("M36", "P17", "s01e03", "sms_ad", "s01e03", ["WS"], "WS"),
    _msg("M37", "P17", "s01e03", "radio_show", "s01e03", ["discriminating_actor_government"], "yes"),
    _msg("M38", "P29", "s01e03", "radio_promo", "s01e03", ["NC"], "NC", noise=True),
    _msg("M39", "P30", "s01e03", None, "s01e03", ["axes_of_discrimination_access_to_housing"], "NR"),
    # Its only code was cleared -> NR.
    _msg("M3A", "P40", "s01e03", None, "s01e03", ["NR"], "NR"),
    _msg("M3C", "P47", "s01e03", None, "s01e03", ["reasons_for_lack_of_discrimination_religion"], "no"),
    _msg("M40", "P20", "s01e04", "radio_promo", "s01e04", ["build_housing"]),
    _msg("M41", "P31", "s01e04", "sms_ad", "s01e04", ["procure_them_land"]),
    # C3: show 2, faked time 2018-12-13T00:00 (radio_show, week 2).
    _msg("M43", "P33", "s01e02", "radio_show", "s01e02", ["integration_strengthens_social_cohesion"], "integrate"),
    _msg("M44", "P34", "s01e02", "radio_show", "s01e02", ["remove_for_social_cohesion"], "return"),
    # C4: show 2, faked time 2018-12-14T00:00 (non-logical, week 2).
    _msg("M47", "P35", "s01e02", None, "s01e02", ["consult_with_them"], "NR"),
    _msg("M48", "P36", "s01e02", None, "s01e02", ["they_are_in_need"], "ambivalent"),
    # Exactly the project end: non-logical, no week.
    _msg("M50", "P37", "s01e04", None, None, ["peace_and_security"]),
    # Coded NA by a coder; P38's only message, so the individual fix-up lands on this row: NA 0, NC 1.
    _msg("M52", "P38", "s01e04", "radio_show", "s01e04", ["NC"]),
    # Coded NA; P39 has two messages, so this row keeps NA 1.
    _msg("M53", "P39", "s01e04", None, "s01e04", ["NA"]),
    _msg("M54", "P39", "s01e04", None, "s01e04", ["religion"]),
    _msg("M55", "P10", "s01e04", None, "s01e04", ["other"]),
    _msg("M56", "P03", "s01e04", "radio_promo", "s01e04", ["support_justice_system"]),
    _msg("M57", "P07", "s01e04", "radio_promo", "s01e04", ["build_housing"], withdrawn=True),
]

# -- individuals of several messages (7.7.6 fold, 7.7.7 fix-up, 7.7.8 withdrawn) -----------------------------------


@dataclass(frozen=True)
class Individual:
    person: str
    channels: frozenset[str]  # the channel keys (and non_logical_time) true for any of the messages
    weeks: frozenset[str]
    codes: dict[str, tuple[str, ...]]  # per show, the matrix codes that end up 1 (shows never answered: NA)
    binaries: dict[str, str]
    raws: dict[str, tuple[str, ...]]  # per show, the messages whose texts are joined with ";"
    withdrawn: bool = False


def _ind(person, channels, weeks, codes, binaries, raws, withdrawn=False) -> Individual:
    full_codes = {show: tuple(codes.get(show, ("NA",))) for show in SHOWS}
    return Individual(person, frozenset(channels), frozenset(weeks), full_codes, binaries, raws, withdrawn)


INDIVIDUALS: dict[str, Individual] = {
    # NR from the unchecked M05 folds in beside M01's two codes; NA of the answered shows fixed up to 0.
    "P01": _ind("P01", {"sms_ad", "radio_promo"}, {"s01e01", "s01e02", "s01e03"},
                {"s01e01": ("job_creation", "access_to_education", "NR"),
                 "s01e02": ("same_identity", "religion_commands_it"),
                 "s01e03": ("discriminating_actor_community",)},
                {"s01e02": "integrate", "s01e03": "yes"},
                {"s01e01": ("M01", "M05"), "s01e02": ("M20",), "s01e03": ("M35",)}),
    # Answered s01e01 only with noise: NA 0, NC 1 for s01e01.
    "P03": _ind("P03", {"sms_ad", "radio_promo"}, {"s01e01", "s01e04"},
                {"s01e01": ("NC",), "s01e04": ("support_justice_system",)},
                {"s01e02": "NA", "s01e03": "NA"}, {"s01e01": ("M04",), "s01e04": ("M56",)}),
    # Withdrawn through the gender survey: every present cell STOP.
    "P07": _ind("P07", {"radio_show", "radio_promo"}, {"s01e01", "s01e04"},
                {"s01e01": ("government_to_support_communities",), "s01e04": ("build_housing",)},
                {"s01e02": "NA", "s01e03": "NA"}, {"s01e01": ("M09",), "s01e04": ("M57",)}, withdrawn=True),
    "P10": _ind("P10", {"non_logical_time"}, {"s01e01", "s01e04"}, {"s01e01": ("NC",), "s01e04": ("other",)},
                {"s01e02": "NA", "s01e03": "NA"}, {"s01e01": ("M12",), "s01e04": ("M55",)}),
    # integrate + return -> ambivalent; NA, WS, yes -> ambivalent (WS is not a missing value).
    "P17": _ind("P17", {"radio_promo", "sms_ad", "radio_show"}, {"s01e02", "s01e03"},
                {"s01e02": ("integration_strengthens_social_cohesion", "return_other"),
                 "s01e03": ("WS", "discriminating_actor_government")},
                {"s01e02": "ambivalent", "s01e03": "ambivalent"},
                {"s01e02": ("M21", "M22"), "s01e03": ("M36", "M37")}),
    # An RQA STOP on one message withdraws the whole person here.
    "P20": _ind("P20", {"radio_show", "radio_promo"}, {"s01e02", "s01e04"},
                {"s01e02": ("STOP",), "s01e04": ("build_housing",)},
                {"s01e02": "NR", "s01e03": "NA"}, {"s01e02": ("M25",), "s01e04": ("M40",)}, withdrawn=True),
    # Noise (NC) and not coded (NR) in the same show: binary NR; matrix NC 0 ("0" if either is "0"), NR 1.
    "P46": _ind("P46", {"radio_promo"}, {"s01e02"}, {"s01e02": ("NR",)}, {"s01e02": "NR", "s01e03": "NA"},
                {"s01e02": ("M2F", "M2G")}),
    # Binary NC (noise) against NA: NC; s01e02 answered only with noise -> NA 0, NC 1. One message in
    # radio_promo, one at a non-logical time: both true (each key folds by "true if either").
    "P47": _ind("P47", {"radio_promo", "non_logical_time"}, {"s01e02", "s01e03"},
                {"s01e02": ("NC",), "s01e03": ("reasons_for_lack_of_discrimination_religion",)},
                {"s01e02": "NC", "s01e03": "no"}, {"s01e02": ("M2H",), "s01e03": ("M3C",)}),
    # s01e02 answered only with an empty text: the fix-up leaves NA at 1 (the raw text is empty) and NC at 0
    # (NA counts as a 1); binary NC against NA -> NC.
    "P48": _ind("P48", {"non_logical_time"}, {"s01e01", "s01e02"}, {"s01e01": ("shelter",), "s01e02": ("NA",)},
                {"s01e02": "NC", "s01e03": "NA"}, {"s01e01": ("M19",), "s01e02": ("M2I",)}),
    # M53's NA folds with M54's religion, then the fix-up sets NA 0.
    "P39": _ind("P39", {"non_logical_time"}, {"s01e04"}, {"s01e04": ("religion",)}, {"s01e02": "NA", "s01e03": "NA"},
                {"s01e04": ("M53", "M54")}),
}

# -- ICR candidates (7.4.9): non-noise messages of the show, in data order, with their run-id cell ------------------

ICR_CANDIDATES: dict[str, list[tuple[str, str]]] = {
    "s01e01": [("M01", "1001"), ("M03", "1003"), ("M05", "1005"), ("M06", "1006"), ("M08", "1008"),
               ("M10", "1010"), ("M09", "1009"), ("M11", "1011"), ("M13", "1013"), ("M14", "1014"),
               ("M16", "1016"), ("M19", "1019")],
    # Messages moved here from other flows have no rqa_s01e02_run_id: empty cell.
    "s01e02": [("M20", "2001"), ("M21", "2002"), ("M22", "2003"), ("M23", "2004"), ("M24", "2005"),
               ("M25", "2006"), ("M27", "2008"), ("M2A", "2010"), ("M2B", "2011"), ("M2C", "2012"),
               ("M2D", "2013"), ("M2E", "2014"), ("M2G", "2016"), ("M30", ""), ("M43", ""), ("M44", ""),
               ("M47", ""), ("M48", "")],
    "s01e03": [("M31", "3002"), ("M32", "3003"), ("M33", "3004"), ("M35", "3006"), ("M36", "3007"),
               ("M37", "3008"), ("M39", "3010"), ("M3A", "3011"), ("M3C", "3012")],
    "s01e04": [("M34", ""), ("M40", "4001"), ("M41", "4002"), ("M50", "4011"), ("M52", "4013"), ("M53", "4014"),
               ("M54", "4015"), ("M55", "4016"), ("M56", "4017"), ("M57", "4018")],
}

# -- Coda files (coda.md 4): messages in order (creation time ascending after de-duplication) ---------------------

# RQA files: (message, creation time in UTC); no labels.
RQA_CODA: dict[str, list[tuple[str, str]]] = {
    "s01e01.json": [
        ("M01", "2018-12-01T21:00:00+00:00"), ("M03", "2018-12-02T16:25:18+00:00"),
        ("M05", "2018-12-02T20:59:59+00:00"), ("M06", "2018-12-02T21:00:00+00:00"),
        ("M16", "2018-12-03T10:00:00+00:00"), ("M14", "2018-12-04T07:15:30.250000+00:00"),
        ("M08", "2018-12-04T21:00:00+00:00"),
        ("M09", "2018-12-05T21:00:00+00:00"),  # M10, the same text sent later, is the same Coda message
        ("M11", "2018-12-06T21:00:00+00:00"), ("M19", "2018-12-07T09:00:00+00:00"),
        ("M13", "2018-12-10T05:30:00+00:00"),
    ],
    "s01e02.json": [
        ("M20", "2018-12-08T21:00:00+00:00"), ("M21", "2018-12-09T16:00:29+00:00"),
        ("M22", "2018-12-09T16:00:30+00:00"), ("M23", "2018-12-09T21:00:00+00:00"),
        ("M2A", "2018-12-11T07:00:00+00:00"), ("M2B", "2018-12-11T08:00:00+00:00"),
        ("M2C", "2018-12-11T09:00:00+00:00"), ("M2D", "2018-12-11T10:00:00+00:00"),
        ("M2E", "2018-12-11T11:00:00+00:00"), ("M2G", "2018-12-11T13:00:00+00:00"),
        ("M24", "2018-12-11T21:00:00+00:00"),
        # Equal creation times keep data order: M25 (s01e02 flow) before M43 and M44 (s01e04 flow, C3).
        ("M25", "2018-12-12T21:00:00+00:00"), ("M43", "2018-12-12T21:00:00+00:00"),
        ("M44", "2018-12-12T21:00:00+00:00"),
        ("M27", "2018-12-13T21:00:00+00:00"), ("M47", "2018-12-13T21:00:00+00:00"),
        ("M48", "2018-12-13T21:00:00+00:00"),
        ("M30", "2018-12-14T21:00:00+00:00"),  # C1's faked 2018-12-15T00:00+03:00
    ],
    "s01e03.json": [
        ("M35", "2018-12-15T21:00:00+00:00"), ("M36", "2018-12-16T16:00:55+00:00"),
        ("M31", "2018-12-16T21:00:00+00:00"), ("M32", "2018-12-18T20:59:59+00:00"),
        ("M3A", "2018-12-18T21:00:00+00:00"), ("M37", "2018-12-19T21:00:00+00:00"),
        ("M3C", "2018-12-21T07:00:00+00:00"),
        ("M39", "2018-12-22T20:59:59+00:00"), ("M33", "2018-12-22T21:00:00+00:00"),
    ],
    "s01e04.json": [
        ("M34", "2018-12-22T21:00:01+00:00"),
        ("M40", "2018-12-23T16:00:44+00:00"),  # M57, the same text sent later, is the same Coda message
        ("M41", "2018-12-23T16:00:45+00:00"), ("M56", "2018-12-23T21:00:00+00:00"),
        ("M55", "2018-12-25T21:00:00+00:00"), ("M52", "2018-12-26T21:00:00+00:00"),
        ("M53", "2018-12-27T21:00:00+00:00"), ("M54", "2018-12-30T20:59:59+00:00"),
        ("M50", "2018-12-30T21:00:00+00:00"),
    ],
}

GENDER, AGE = "Scheme-12cb6f95", "Scheme-4189e74c"
SUB_DISTRICT, DISTRICT = "Scheme-07dfc611", "Scheme-5292e8fb"
IDP_CAMP, RECENTLY_DISPLACED = "Scheme-0fe57c6d", "Scheme-e1aa9330"
REPEATED, INVOLVED = "Scheme-0ea6e7d2", "Scheme-7940c638"


def _origin(cleaner: str) -> str:
    return f"redss_pipeline.cleaners.{cleaner}@1"  # README decision 10


# Survey files: (text, creation time, [(SchemeID, CodeID, cleaner)]) - the unchecked suggestion of this run, or none
# when the cleaner said NC. Records of people who are absent from the outputs (P15, P16, the test contact)
# contribute nothing; an answer given by several people is one message with the earliest time.
SURVEY_CODA: dict[str, list[tuple[str, str, list[tuple[str, str, str]]]]] = {
    "gender.json": [
        ("male", "2018-12-02T18:00:05+00:00", [(GENDER, "code-63dcde9a", "gender")]),  # P08's time
        ("Female", "2018-12-03T08:00:05.123456+00:00", [(GENDER, "code-86a4602c", "gender")]),
        ("M", "2018-12-03T16:00:05+00:00", [(GENDER, "code-63dcde9a", "gender")]),  # P14's time
        ("F", "2018-12-04T06:00:05+00:00", [(GENDER, "code-86a4602c", "gender")]),
        ("naag", "2018-12-05T10:00:05+00:00", [(GENDER, "code-86a4602c", "gender")]),
        ("wiil", "2018-12-05T11:00:05+00:00", [(GENDER, "code-63dcde9a", "gender")]),
        ("Stop", "2018-12-06T12:00:05+00:00", []),  # the gender cleaner says NC
    ],
    # One suggestion per message: a sub-district, else a district (the district NC label is not exported).
    "location.json": [
        ("Mogadishu", "2018-12-02T18:00:40+00:00", [(DISTRICT, "code-2e6192c8", "somalia_district")]),
        ("hodan", "2018-12-03T07:00:40+00:00", [(SUB_DISTRICT, "code-ae4b5ca2", "mogadishu_sub_district")]),
        ("Baidoa", "2018-12-03T08:00:40+00:00", [(DISTRICT, "code-208448a6", "somalia_district")]),
        ("Puntland", "2018-12-04T06:00:40+00:00", []),
        ("Las Anod", "2018-12-04T09:00:40+00:00", []),
        ("Xamar Weyne", "2018-12-04T15:00:40+00:00", [(SUB_DISTRICT, "code-2e3cedff", "mogadishu_sub_district")]),
        ("Waqooyi", "2018-12-05T10:00:40+00:00", []),
        ("Hodan, Mogadishu", "2018-12-05T11:00:40+00:00",
         [(SUB_DISTRICT, "code-ae4b5ca2", "mogadishu_sub_district")]),
        ("nairobi", "2018-12-07T13:00:40+00:00", []),
        ("Nairobi Kenya", "2018-12-11T14:00:40+00:00", []),
    ],
    # The new age auto-coder: 10..99, whole Somali number words (README deliberate difference; cleaners.md 5.5).
    # P07's empty answer is NA: not exported.
    "age.json": [
        ("99", "2018-12-02T18:01:10+00:00", [(AGE, "code-36856c7f", "age")]),
        ("10", "2018-12-03T08:01:10+00:00", [(AGE, "code-a3305435", "age")]),  # 2019: NC
        ("25", "2018-12-04T06:01:10+00:00", [(AGE, "code-47558a0f", "age")]),
        ("11", "2018-12-04T09:01:10+00:00", [(AGE, "code-da61caa4", "age")]),
        ("labaatan iyo bar", "2018-12-04T15:01:10+00:00", []),  # 22.5: not an integer
        ("89", "2018-12-05T10:01:10+00:00", [(AGE, "code-a23c339b", "age")]),
        ("90", "2018-12-05T11:01:10+00:00", [(AGE, "code-40cb634b", "age")]),  # 2019: NC
        ("100", "2018-12-07T13:01:10+00:00", []),
        ("toban iyo sideed", "2018-12-09T17:01:10+00:00", [(AGE, "code-1c301f52", "age")]),  # 18; 2019: NC
        ("afartan", "2018-12-10T06:00:30+00:00", [(AGE, "code-43536bdb", "age")]),  # 40; 2019: 44
        ("sodon iyo shan", "2018-12-13T08:01:10+00:00", [(AGE, "code-47411ccc", "age")]),  # 35; 2019: NC
    ],
    "idp_camp.json": [
        ("haa", "2018-12-03T07:01:30+00:00", [(IDP_CAMP, "code-dc43b68e", "yes_no")]),
        ("maya", "2018-12-03T08:01:30+00:00", [(IDP_CAMP, "code-5d5708c8", "yes_no")]),
        ("I am not sure", "2018-12-04T06:01:30+00:00", []),
        ("Yes", "2018-12-04T09:01:30+00:00", [(IDP_CAMP, "code-dc43b68e", "yes_no")]),
    ],
    "recently_displaced.json": [
        ("xaa", "2018-12-03T07:01:50+00:00", [(RECENTLY_DISPLACED, "code-2b565901", "yes_no")]),
        ("mayo", "2018-12-03T08:01:50+00:00", [(RECENTLY_DISPLACED, "code-d67739e0", "yes_no")]),
    ],
    # No cleaner: messages without labels.
    "hh_language.json": [
        ("Af-Soomaali", "2018-12-03T07:02:10+00:00", []),
        ("Carabi (\u0627\u0644\u0639\u0631\u0628\u064a\u0629)", "2018-12-03T08:02:10+00:00", []),
    ],
    "repeated.json": [
        ("haa", "2018-12-19T17:00:10+00:00", [(REPEATED, "code-78dac7e5", "yes_no")]),  # P17's time
        ("No", "2018-12-21T09:00:10+00:00", [(REPEATED, "code-5a42e72d", "yes_no")]),
    ],
    "involved.json": [
        ("haa maya", "2018-12-20T05:00:40+00:00", [(INVOLVED, "code-1dadd647", "yes_no")]),  # yes is tested first
        ("may be", "2018-12-21T09:00:40+00:00", [(INVOLVED, "code-3a40a492", "yes_no")]),
        ("haa", "2018-12-22T08:00:40+00:00", [(INVOLVED, "code-1dadd647", "yes_no")]),
    ],
}

# -- expansion ------------------------------------------------------------------------------------------------------


def _matrix_cells(show: str, ones: tuple[str, ...]) -> dict[str, str]:
    for code in ones:
        assert code in MATRIX[show], (show, code)
    return {f"rqa_{show}_{code}": "1" if code in ones else "0" for code in MATRIX[show]}


def _common_cells(person: str) -> dict[str, str | None]:
    return {"uid": uid(person), "operator": OPERATOR[person], "consent_withdrawn": "false"}


def _time_cells(flags: set[str] | frozenset[str], weeks: set[str] | frozenset[str]) -> dict[str, str]:
    """``flags``: the channel keys and ``non_logical_time`` that are true."""
    cells = {key: "true" if key in flags else "false" for key in (*CHANNELS, "non_logical_time")}
    cells.update({f"radio_participation_{show}": "true" if show in weeks else "false" for show in SHOWS})
    return cells


def _withdrawn(row: dict[str, str | None]) -> dict[str, str | None]:
    """7.7.8: every present cell becomes STOP, except consent_withdrawn = true; absent cells stay empty."""
    out = {key: (None if value is None else "STOP") for key, value in row.items()}
    out["consent_withdrawn"] = "true"
    return out


def message_row(message: Message) -> dict[str, str | None]:
    row = _common_cells(message.person)
    row.update(_time_cells({message.channel or "non_logical_time"}, {message.week} if message.week else set()))
    for show in SHOWS:
        row.update(_matrix_cells(show, message.codes if show == message.show else ("NA",)))
    for show, column in BINARY.items():
        row[column] = message.binary if show == message.show else "NA"
    for show in SHOWS:
        row[f"rqa_{show}_raw"] = message_text(message.id) if show == message.show else None
    row.update(SURVEY.get(message.person, NO_SURVEY))
    return _withdrawn(row) if message.withdrawn else row


def individual_row(individual: Individual) -> dict[str, str | None]:
    row = _common_cells(individual.person)
    row.update(_time_cells(individual.channels, individual.weeks))
    for show in SHOWS:
        row.update(_matrix_cells(show, individual.codes[show]))
    for show, column in BINARY.items():
        row[column] = individual.binaries[show]
    for show in SHOWS:
        ids = individual.raws.get(show)
        row[f"rqa_{show}_raw"] = ";".join(message_text(i) for i in ids) if ids else None
    row.update(SURVEY.get(individual.person, NO_SURVEY))
    return _withdrawn(row) if individual.withdrawn else row


# -- coding quality (coding-quality.md 4 and 5) ----------------------------------------------------------------------

# No second-coder file in this data root: the agreement file holds its header only.
AGREEMENT_COLUMNS = ["show", "scheme", "code", "units", "not_coded_by_both", "prevalence", "percent_agreement",
                     "cohen_kappa", "krippendorff_alpha", "alpha_ci_low", "alpha_ci_high", "mean_code_alpha"]

# Progress, counted by hand from the Coda files above (messages) and data_root/Coded Coda Files (a checked current
# label in one of the dataset's schemes; cleared and unticked labels and unchecked suggestions do not count).
PROGRESS_COLUMNS = ["dataset", "messages", "coded", "coded_percent", "wrong_scheme", "not_coded"]
CODING_PROGRESS = [
    # M01 M03 M14 (land, under -1; its S01E01 code was cleared) M09 M19 M13; M05 unchecked only -> 6/11
    ("s01e01", 11, 6, "54.5", 0, 0),
    # M20 M21 M22 M24 M25 (STOP) M30 M43 M44 M47 M48; M27 unticked -> 10/18
    ("s01e02", 18, 10, "55.6", 0, 0),
    # M32 M33 M35 M36 (WS, reasons and yes/no) M37 M39 M3C; M31 unchecked WS-dataset label, M3A cleared -> 7/9
    ("s01e03", 9, 7, "77.8", 1, 0),
    ("s01e04", 9, 9, "100.0", 0, 0),  # every message, M52 and M53 with a checked NA
    ("gender", 7, 4, "57.1", 0, 0),  # male, Female, naag, Stop; M (suggestion), F (unticked), wiil (absent) not
    # every text but Mogadishu (an unchecked suggestion); nairobi and Nairobi Kenya checked NC
    ("location", 10, 9, "90.0", 0, 2),
    ("age", 11, 3, "27.3", 0, 0),  # 10, 25, afartan
    ("idp_camp", 4, 2, "50.0", 1, 0),  # haa, Yes (WS); maya cleared
    ("recently_displaced", 2, 0, "0.0", 0, 0),  # no coded file
    ("hh_language", 2, 2, "100.0", 0, 0),  # Af-Soomaali, and the Arabic text coded NS
    ("repeated", 2, 0, "0.0", 0, 0),  # no coded file
    ("involved", 3, 0, "0.0", 0, 0),  # no coded file
    ("Total", 88, 52, "59.1", 2, 2),
]


def _write_csv(path: Path, columns: list[str], rows: list[dict[str, str | None]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            assert set(row) >= set(columns), set(columns) - set(row)
            writer.writerow(["" if row[c] is None else row[c] for c in columns])


def _write_coda(path: Path, messages: list[dict]) -> None:
    times = [datetime.fromisoformat(m["CreationDateTimeUTC"]) for m in messages]
    assert times == sorted(times), path  # the declared order is the spec's order
    assert len({m["MessageID"] for m in messages}) == len(messages), path
    path.write_text(json.dumps(messages, sort_keys=True, indent=2, separators=(", ", ": ")), encoding="utf-8")


def _coda_message(text: str, created: str, labels: list[tuple[str, str, str]]) -> dict:
    return {
        "MessageID": hashlib.sha256(text.encode("utf-8")).hexdigest(), "Text": text, "CreationDateTimeUTC": created,
        "Labels": [
            {"SchemeID": scheme, "CodeID": code, "DateTimeUTC": LABEL_TIME, "Checked": False,
             "Origin": {"OriginID": _origin(cleaner), "Name": "Pipeline Auto-Coder", "OriginType": "External"}}
            for scheme, code, cleaner in labels
        ],
    }


def write_expected(root: Path = EXPECTED) -> None:
    """(Re)writes every expected output file."""
    if root.exists():
        shutil.rmtree(root)
    (root / "ICR").mkdir(parents=True)
    (root / "Coda Files").mkdir()

    rows = [message_row(m) for m in MESSAGES]
    _write_csv(root / "csap_mes.csv", COLUMNS, rows)

    people = list(dict.fromkeys(m.person for m in MESSAGES))  # in the order of each person's first message
    counts = {p: sum(1 for m in MESSAGES if m.person == p) for p in people}
    assert {p for p in people if counts[p] > 1} == set(INDIVIDUALS)
    individuals = [
        individual_row(INDIVIDUALS[p]) if counts[p] > 1 else next(r for m, r in zip(MESSAGES, rows) if m.person == p)
        for p in people
    ]
    _write_csv(root / "csap_ind.csv", COLUMNS, individuals)

    production = [row for m, row in zip(MESSAGES, rows) if not m.noise and not m.withdrawn]
    _write_csv(root / "csap_prod.csv", PRODUCTION_COLUMNS, production)

    for show, candidates in ICR_CANDIDATES.items():
        assert len(candidates) < 200  # fewer than the sample size: a permutation of all candidates
        sample = random.Random(0).sample(candidates, len(candidates))
        _write_csv(root / "ICR" / f"{show}.csv", [f"rqa_{show}_run_id", f"rqa_{show}_raw"],
                   [{f"rqa_{show}_run_id": run_id, f"rqa_{show}_raw": message_text(m)} for m, run_id in sample])

    for name, entries in RQA_CODA.items():
        _write_coda(root / "Coda Files" / name, [_coda_message(message_text(m), t, []) for m, t in entries])
    for name, survey_entries in SURVEY_CODA.items():
        _write_coda(root / "Coda Files" / name, [_coda_message(*entry) for entry in survey_entries])

    # The second coder's ICR Coda files (coding-quality.md 1): every candidate is sampled (fewer than 200), so they
    # hold the RQA files' messages with the same (earliest) creation times and no labels; the export rule orders
    # them by creation time with ties in sample order (coda.md 4.3), where the RQA files keep data order.
    (root / "ICR" / "Coda Files").mkdir()
    for show, candidates in ICR_CANDIDATES.items():
        created = {message_text(m): t for m, t in RQA_CODA[f"{show}.json"]}
        sample = random.Random(0).sample(candidates, len(candidates))
        texts = list(dict.fromkeys(message_text(m) for m, _ in sample))
        texts.sort(key=lambda text: datetime.fromisoformat(created[text]))  # stable
        _write_coda(root / "ICR" / "Coda Files" / f"{show}.json", [_coda_message(t, created[t], []) for t in texts])

    (root / "Analysis").mkdir()
    _write_csv(root / "Analysis" / "icr_agreement.csv", AGREEMENT_COLUMNS, [])
    _write_csv(root / "Analysis" / "coding_progress.csv", PROGRESS_COLUMNS,
               [dict(zip(PROGRESS_COLUMNS, map(str, row))) for row in CODING_PROGRESS])


if __name__ == "__main__":
    assert set(OPERATOR) == {m.person for m in MESSAGES}
    assert set(SURVEY) <= set(PEOPLE)
    write_expected()
    print(f"wrote {EXPECTED}")
