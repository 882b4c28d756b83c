#!/usr/bin/env python3
"""A stage-2-like data root in the 2019 raw layout, made independently of the project's synthetic workspace.

Usage: bench/make_2019_root.py <data-root> [--messages N] [--seed S]

The project's own benchmark data (bench_generate.py) replicates the demo workspace. This script gives stage 3 a
differently shaped input, closer to the 2019 files: most people answered the demographics survey (some changed
an answer later, so their survey record has two layers), some answered the evaluation, each person sent a few
messages spread over the four shows, a share of them noise, a few outside the project window, a few in the
correction windows. The raw files use the ``py/state`` variant of the 2019 TracedData layout and ``py/id``
references for the shared metadata, written with the json module rather than the project's writer; a coded Coda
file is added for one show and for gender, so the manual-code merge has work to do.

The UUID table is filled through the project's stage-1 API (its storage is the project's business).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT / "src"))

from redss_pipeline.deidentify.uuid_table import create_uuid_table, open_uuid_table  # noqa: E402

TRACED_DATA = "core_data_modules.traced_data.traced_data.TracedData"
METADATA = "core_data_modules.traced_data.traced_data.Metadata"
EAT = timezone(timedelta(hours=3))

SHOWS = [  # (flow, result key, first day of the week)
    ("csap_s01e01_activation", "rqa_s01e01", datetime(2018, 12, 2, tzinfo=EAT)),
    ("csap_s01e02_activation", "rqa_s01e02", datetime(2018, 12, 9, tzinfo=EAT)),
    ("csap_s01e03_activation", "rqa_s01e03", datetime(2018, 12, 16, tzinfo=EAT)),
    ("csap_s01e04_activation", "rqa_s01e04", datetime(2018, 12, 23, tzinfo=EAT)),
]
DEMOG = [  # (result key, answers)
    ("gender", ["male", "female", "lab", "dheddig", "rag", "naag", "M", "F", "xx"]),
    ("mog_sub_district", ["hodan", "wadajir", "karaan", "yaqshid", "hawl wadaag", "dharkenley", "baidoa",
                          "kismayo", "garowe", "hargeisa", "wardhigley", "shibis", "somewhere else"]),
    ("age", [str(n) for n in range(14, 70)] + ["afartan", "sodon iyo shan", "labaatan", "old"]),
    ("idp_camp", ["haa", "maya", "yes", "no", "waan ahay", "ma ihi"]),
    ("recently_displaced", ["haa", "maya", "yes", "no", "xaa"]),
    ("hh_language", ["Af-Soomaali", "Af-Maay", "English", "Carabi"]),
]
EVALUATION = [
    ("repeated", ["haa", "maya", "yes", "no", "mar kale"]),
    ("involved", ["haa", "maya", "haa maya", "waan ka qeyb qaatay"]),
]
WORDS = ("nabad waxbarasho shaqo guryo caafimaad biyo dowlad dadka barakac magaalada ganacsi amni caruurta "
         "hooyooyinka dib u dhis isku filnaansho deegaan xuquuq dhalinyarada tayada adeegyada").split()
NOISE = ["ok", "haa", "mahadsanid", "thanks", "?", "1", "yes"]


def layer_sha(data: dict, prev_sha: str) -> str:
    return hashlib.sha256(json.dumps({"data": data, "prev_sha": prev_sha}, sort_keys=True).encode("utf-8")).hexdigest()


class FileWriter:
    """Numbers objects as jsonpickle did: the list is 0, each record layer and new metadata object gets the next
    number in a depth-first walk over sorted keys (records here hold only plain values)."""

    def __init__(self, source: str, timestamp: float):
        self.count = 1
        self.metadata_number: int | None = None
        self.source = source
        self.timestamp = timestamp
        self.items: list[dict] = []

    def metadata(self) -> dict:
        if self.metadata_number is not None:
            return {"py/id": self.metadata_number}
        self.metadata_number = self.count
        self.count += 1
        return {"py/object": METADATA, "source": self.source, "timestamp": self.timestamp,
                "user": "fetcher@example.org"}

    def add(self, layers: list[dict]) -> None:
        """A record of ``layers`` (oldest first), written newest first with ``_prev`` nesting."""
        shas = []
        prev = ""
        for data in layers:
            prev = layer_sha(data, prev)
            shas.append(prev)
        # Depth-first over sorted keys: _data (plain), _metadata, _prev (the older layer), _sha.
        objects = []
        for position in range(len(layers) - 1, -1, -1):
            self.count += 1  # the layer itself
            objects.append({"_data": layers[position], "_metadata": self.metadata(), "_sha": shas[position]})
        record: dict[str, Any] | None = None
        for obj in reversed(objects):  # oldest first, so each newer layer wraps the older one
            state = {"_data": obj["_data"], "_metadata": obj["_metadata"], "_prev": record, "_sha": obj["_sha"]}
            record = {"py/object": TRACED_DATA, "py/state": state}
        assert record is not None  # a record has a layer at least
        self.items.append(record)

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.items, sort_keys=True, indent=2, separators=(", ", ": ")), encoding="utf-8")


def result(result_key: str, flow: str, value: str, time: datetime, run_id: int) -> dict:
    k = result_key.title()
    return {
        f"{k} (Category) - {flow}": "All Responses", f"{k} (Name) - {flow}": k.replace("_", " "),
        f"{k} (Run ID) - {flow}": run_id, f"{k} (Text) - {flow}": value,
        f"{k} (Time) - {flow}": time.astimezone(timezone.utc).isoformat(), f"{k} (Value) - {flow}": value,
    }


def message_text(rng: random.Random) -> str:
    if rng.random() < 0.12:
        return rng.choice(NOISE)
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 12)))


def make_root(root: Path, messages: int, seed: int) -> None:
    rng = random.Random(seed)
    people = max(1, messages // 4)
    create_uuid_table(root)
    with open_uuid_table(root) as table:
        keys = [f"2526{rng.choice('1234568')}{n:07d}" for n in range(people)]
        uuids = table.uuids_for_keys(keys)
    uids = [uuids[k] for k in keys]
    raw = root / "Raw Data"
    raw.mkdir(parents=True, exist_ok=True)
    shows = [FileWriter("fetch_flow_runs.py:88:<module>", 1548000000.0 + n) for n in range(len(SHOWS))]
    run_id = 1_000_000
    show_rows: list[list[tuple[datetime, dict]]] = [[] for _ in SHOWS]
    left = messages
    for person, uid in enumerate(uids):
        count = min(left, rng.choice([1, 1, 2, 3, 4, 4, 5, 6, 8])) if person < people - 1 else left
        left -= count
        for _ in range(count):
            n = rng.randrange(len(SHOWS))
            flow, key, week = SHOWS[n]
            time = week + timedelta(seconds=rng.randrange(-2 * 86400, 9 * 86400))
            run_id += 1
            data = result(key, flow, message_text(rng), time, run_id)
            data.update({"avf_phone_id": uid, "created_on": time.astimezone(timezone.utc).isoformat(),
                         "exit_type": "completed", "exited_on": time.astimezone(timezone.utc).isoformat()})
            show_rows[n].append((time, data))
        if left <= 0:
            break
    for writer, rows, (flow, _, _) in zip(shows, show_rows, SHOWS):
        for _, data in sorted(rows, key=lambda row: row[0]):
            writer.add([data])
        writer.write(raw / f"{flow}.json")

    demog = FileWriter("fetch_flow_runs.py:88:<module>", 1548000100.0)
    evaluation = FileWriter("fetch_flow_runs.py:88:<module>", 1548000200.0)
    start = datetime(2018, 12, 2, tzinfo=EAT)
    for uid in uids:
        if rng.random() < 0.85:
            run_id += 1
            answered: dict[str, Any] = {"avf_phone_id": uid}
            time = start + timedelta(seconds=rng.randrange(0, 28 * 86400))
            for key, answers in DEMOG:
                if rng.random() < 0.93:
                    time += timedelta(seconds=rng.randrange(5, 90))
                    answered.update(result(key, "csap_demog", rng.choice(answers), time, run_id))
            layers = [answered]
            if rng.random() < 0.08:  # changed an answer in a later run: a second layer
                key, answers = rng.choice(DEMOG)
                run_id += 1
                layers.append({"avf_phone_id": uid, **result(key, "csap_demog", rng.choice(answers),
                                                                 time + timedelta(days=2), run_id)})
            demog.add(layers)
        if rng.random() < 0.4:
            run_id += 1
            answered = {"avf_phone_id": uid}
            time = start + timedelta(seconds=rng.randrange(14 * 86400, 28 * 86400))
            for key, answers in EVALUATION:
                time += timedelta(seconds=rng.randrange(5, 90))
                answered.update(result(key, "csap_evaluation", rng.choice(answers), time, run_id))
            evaluation.add([answered])
    demog.write(raw / "csap_demog.json")
    evaluation.write(raw / "csap_evaluation.json")
    write_coded_files(root, show_rows[0], rng)


def write_coded_files(root: Path, first_show: list[tuple[datetime, dict]], rng: random.Random) -> None:
    """Checked labels for about a third of the first show's texts (codes of its scheme) and some genders."""
    coded = root / "Coded Coda Files"
    coded.mkdir(parents=True, exist_ok=True)
    schemes = PROJECT_ROOT / "code_schemes"
    for file_name, scheme_file, texts in (
        ("s01e01.json", "s01e01.json",
         sorted({d[f"Rqa_S01E01 (Value) - {SHOWS[0][0]}"] for _, d in first_show})),
        ("gender.json", "gender.json", DEMOG[0][1]),
    ):
        scheme = json.loads((schemes / scheme_file).read_text(encoding="utf-8"))
        codes = [c for c in scheme["Codes"] if c.get("CodeType") == "Normal"]
        messages = []
        for text in texts:
            if rng.random() < 0.35:
                code = rng.choice(codes)
                messages.append({
                    "MessageID": hashlib.sha256(text.encode("utf-8")).hexdigest(), "Text": text,
                    "CreationDateTimeUTC": "2018-12-20T10:00:00+00:00",
                    "Labels": [{"SchemeID": scheme["SchemeID"], "CodeID": code["CodeID"],
                                "DateTimeUTC": "2019-01-05T10:00:00.000000+00:00", "Checked": True,
                                "Origin": {"OriginID": "coder-1", "Name": "Coder 1", "OriginType": "Manual"}}],
                })
        (coded / file_name).write_text(json.dumps(messages, indent=2), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_root", type=Path)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2019)
    args = parser.parse_args()
    make_root(args.data_root, args.messages, args.seed)


if __name__ == "__main__":
    main()
