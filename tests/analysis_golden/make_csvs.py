"""Writes the hand-made csap_mes.csv / csap_ind.csv of the analysis golden test (tests/analysis_golden/).

Six people and thirteen messages, each written out below with only the cells that differ from "nothing said"
(every show NA, every survey NA, no channel or week). The expected tables in expected/ were worked out by hand
from this description (see README.md beside it), not by the analysis code.

Run: .venv/bin/python tests/analysis_golden/make_csvs.py
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "src"))

from redss_pipeline.core.config import load_config
from redss_pipeline.export.analysis_files import analysis_columns

W1, W2, W3, W4 = (f"radio_participation_s01e0{n}" for n in (1, 2, 3, 4))

# Person: uid suffix, demographics (gender, age, region), and their row in csap_ind.csv (codes per show).
PEOPLE = {
    "A": {"gender": "male", "age": "20", "region": "banadir",
          "shows": {"s01e01": ["food_assistance", "job_creation"], "s01e02": ["NR"]}},
    "B": {"gender": "female", "age": "16", "region": "bay",
          "shows": {"s01e01": ["NC"], "s01e02": ["same_identity"], "s01e03": ["WS"]},
          "binary": {"rqa_s01e02_integrate_return": "integrate"}},
    "C": {"shows": {"s01e01": ["food_assistance", "NR"], "s01e04": ["peace_and_security"]}},
    "D": "withdrawn",
    "E": {"gender": "male", "age": "40", "region": "banadir", "shows": {}},
    "F": {"gender": "female", "age": "25", "region": "NC",
          "shows": {"s01e01": ["NS"], "s01e03": ["discriminating_actor_government"],
                     "s01e04": ["peace_and_security", "other"]},
          "binary": {"rqa_s01e03_yes_no": "yes"}},
}

# Messages in csv order: person, show, codes, text, week, channel (None: no channel).
MESSAGES = [
    ("A", "s01e01", ["food_assistance", "job_creation"], "msg A1", W1, "sms_ad"),
    ("A", "s01e02", ["NR"], "msg A2", W2, "radio_show"),
    ("B", "s01e01", ["NC"], "ok", W1, "radio_promo"),
    ("B", "s01e02", ["same_identity"], "msg B2", W2, "radio_show"),
    ("B", "s01e03", ["WS"], "msg B3", W3, None),
    ("C", "s01e01", ["food_assistance", "NR"], "msg C1", W1, "sms_ad"),
    ("C", "s01e04", ["peace_and_security"], "msg C4", W4, "radio_show"),
    ("D", None, None, None, None, None),
    ("D", None, None, None, None, None),
    ("F", "s01e01", ["NS"], "", W1, None),
    ("F", "s01e03", ["discriminating_actor_government"], "msg F3", W3, "sms_ad"),
    ("F", "s01e04", ["peace_and_security", "other"], "msg F4", W4, "radio_promo"),
    ("A", "s01e01", ["job_creation"], "msg A1b", W1, "radio_show"),
]


def blank_row(config, columns: list[str], person: str) -> dict[str, str]:
    row = {column: "NA" for column in columns}
    row.update({"uid": f"avf-phone-uuid-golden-{person}", "operator": "hormud", "consent_withdrawn": "false",
                "non_logical_time": "false"})
    for key in (*config.channels, *config.weeks):
        row[key] = "false"
    for plan in config.rqa_plans:
        for code in plan.scheme.codes:
            row[plan.analysis_prefix + code.string_value] = "1" if code.string_value == "NA" else "0"
        row[plan.raw_field] = ""
    for plan in config.survey_plans:
        row[plan.raw_field] = ""
    return row


def set_codes(config, row: dict[str, str], show: str, codes: list[str]) -> None:
    plan = config.rqa_plan(show)
    row[plan.analysis_prefix + "NA"] = "0"
    for code in codes:
        row[plan.analysis_prefix + code] = "1"


def withdrawn_row(columns: list[str]) -> dict[str, str]:
    row = {column: "STOP" for column in columns}
    row["consent_withdrawn"] = "true"
    return row


def main() -> None:
    config = load_config()
    columns = analysis_columns(config)
    messages = []
    for person, show, codes, text, week, channel in MESSAGES:
        if PEOPLE[person] == "withdrawn":
            messages.append(withdrawn_row(columns))
            continue
        row = blank_row(config, columns, person)
        spec = PEOPLE[person]
        row.update({k: spec[k] for k in ("gender", "age", "region") if k in spec})
        set_codes(config, row, show, codes)
        row[config.rqa_plan(show).raw_field] = text
        for key, value in spec.get("binary", {}).items():
            if key.startswith(f"rqa_{show}"):
                row[key] = value
        row[week] = "true"
        if channel:
            row[channel] = "true"
        messages.append(row)
    individuals = []
    for person, spec in PEOPLE.items():
        if spec == "withdrawn":
            individuals.append(withdrawn_row(columns))
            continue
        row = blank_row(config, columns, person)
        row.update({k: spec[k] for k in ("gender", "age", "region") if k in spec})
        for show, codes in spec["shows"].items():
            set_codes(config, row, show, codes)
        row.update(spec.get("binary", {}))
        individuals.append(row)
    for name, rows in (("csap_mes.csv", messages), ("csap_ind.csv", individuals)):
        with open(HERE / name, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows([row[c] for c in columns] for row in rows)


if __name__ == "__main__":
    main()
