"""Phone numbers typed into answers: which texts are redacted and which are kept (issue 12 item 3).

The expected texts are worked out by hand from Somalia's numbering plan (mobile numbers are 9 digits after the
trunk 0, starting 61-69, 71, 77, 79, 90; landlines 6-7 digits) and the module's documented rule.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from redss_pipeline.analysis.coding_progress import write_progress_csv
from redss_pipeline.analysis.coding_quality import measure_from_data_root
from redss_pipeline.core.config import load_config
from redss_pipeline.core.errors import ConfigError
from redss_pipeline.core.records import Layer, Record
from redss_pipeline.core.run_context import RunContext
from redss_pipeline.core.traced_data_json import read_traced_data_file, write_traced_data_file
from redss_pipeline.deidentify.phone_redaction import PLACEHOLDER, PhoneRedactor, RedactionSettings
from redss_pipeline.generate.stage import run_generate

P = PLACEHOLDER

REDACTED = [
    ("call me on 0615 123 456", f"call me on {P}"),
    ("+252 61 5123456", P),
    ("252615123456", P),
    ("0615123456", P),
    ("615123456", P),
    ("00252615123456", P),
    ("061-5123456", P),
    ("waan ku raacsanahay, la soo xiriir 0907123456.", f"waan ku raacsanahay, la soo xiriir {P}."),
    ("numbers 0615123456/0625123456", f"numbers {P}/{P}"),
    ("+252 61 512 3456 and 0771234567", f"{P} and {P}"),
    # Arabic-Indic digits are digits too.
    ("\u0660\u0666\u0661\u0665\u0661\u0662\u0663\u0664\u0665\u0666", P),
    # A Somali landline is redacted when written with the country code.
    ("+252 1 234567", P),
    # A number of another country, written with its country code, whatever the configured regions.
    ("call +44 20 7946 0958", f"call {P}"),
    ("I am 25 and my number is +254712345678", f"I am 25 and my number is {P}"),
    # Grouped numbers next to other digit groups: the matcher reads the whole run as one invalid number.
    ("call 0615 123 456 0615 123 457", f"call {P} {P}"),
    ("waxaan ahay 25 0615 123 456", f"waxaan ahay 25 {P}"),
    ("0615 123 456 25", f"{P} 25"),
    ("dhashay 1998 0615 123 456", f"dhashay 1998 {P}"),
    ("615 123 456 615 123 457", f"{P} {P}"),
    # Glued to a word: "wac" is "call"; libphonenumber's matcher reads no number out of a word.
    ("wac0615234567 waan ku faraxsanahay", f"wac{P} waan ku faraxsanahay"),
    ("0615234567pls", f"{P}pls"),
    ("a0615234567", f"a{P}"),
    ("abc615123456", f"abc{P}"),
    ("wac252615123456", f"wac{P}"),
    # Groups glued to a word, as typed on a phone keyboard.
    ("wac061 777 0012 fadlan", f"wac{P} fadlan"),
    ("wac061-777-0012", f"wac{P}"),
    ("lambarka061.777.0012", f"lambarka{P}"),
    ("061 777 0012pls", f"{P}pls"),
    # Groups split by a line break (an SMS typed on two lines), a tab or a thin space.
    ("061777\n0016", P),
    ("0617\r\n770017", P),
    ("+252 61\n777 0018", P),
    ("lambarkayga waa\n0615\n234567", f"lambarkayga waa\n{P}"),
    ("061\t777\t0016", P),
    ("061\u202f777\u202f0012", P),
    ("0\u20096\u20091\u20097\u20097\u20097\u20090\u20090\u20094\u20094", P),
]

KEPT = [
    "I am 25",
    "waxaan ahay 25 jir",
    "born 1998",
    "age 25, born 1998, 2000",
    "2000 shillings",
    "lacag 50000",
    "1000000 shillings",  # a 7-digit Somali landline number in national form reads like an amount
    "10 000 000 shilin",
    "25 1998 2000",
    "2018 2019 2020 2021",
    "1998 2000 2018",
    "1 500 000",
    "1,000,000",
    "code 4455",
    "S01E01",
    "s01e02 iyo s01e03",
    "12/12/2018",
    "2018-12-10",
    "10.12.2018",
    "12:30",
    "123456789",  # not a valid Somali number (12 is no prefix)
    "id60040421x",  # glued to letters, 8 digits: not a mobile number
    "x1000000",  # glued to a letter, 7 digits: an amount, not a mobile number
    "s2018e2019",
    "2018\n2019\n2020",
    "age 25\n1998\n2000",
    "1 500 000\nshilin",
    "lacag\t10 000 000",
    # Amounts or ages one per line read together could make a valid number; a number typed across lines starts
    # as numbers do (0, +, 00, 252), and these do not.
    "600\n800\n300",
    "cunto: 600\n800\n300",
    "800\n100000\n900",
    "61000\n2000",
    "Qoyska 6\n15\n25\n35\n45",
    "lacag\t600\t800\t300",
    "",
    "haa",
]


@pytest.mark.parametrize("text, expected", REDACTED)
def test_phone_numbers_typed_into_answers_are_redacted(text: str, expected: str) -> None:
    redactor = PhoneRedactor()
    assert redactor.redact(text) == expected
    assert redactor.count == expected.count(P)


@pytest.mark.parametrize("text", KEPT)
def test_ages_years_amounts_codes_and_dates_are_kept(text: str) -> None:
    redactor = PhoneRedactor()
    assert redactor.redact(text) == text
    assert redactor.count == 0


def test_other_regions_read_national_numbers_of_those_countries() -> None:
    text = "my brother in Nairobi: 0712 345 678"
    # 0712 345 678 is also a valid Somali mobile number (71 prefix); a Kenyan landline in national form is not.
    assert PhoneRedactor().redact("Nairobi office 020 2222222") == "Nairobi office 020 2222222"
    kenya = PhoneRedactor(RedactionSettings(other_regions=("KE",)))
    assert kenya.redact("Nairobi office 020 2222222") == f"Nairobi office {P}"
    assert kenya.redact(text) == f"my brother in Nairobi: {P}"


def test_every_occurrence_counts_and_values_that_are_not_text_pass() -> None:
    redactor = PhoneRedactor()
    for _ in range(3):
        assert redactor.redact("0615123456") == P
    assert redactor.redact_value(None) is None
    assert redactor.redact_value(4092373) == 4092373
    assert redactor.count == 3


def test_unknown_region_is_refused() -> None:
    with pytest.raises(ValueError, match="XX"):
        PhoneRedactor(RedactionSettings(other_regions=("XX",)))


def _write_config(tmp_path, project_root, section):
    raw = json.loads((project_root / "pipeline_config.json").read_text(encoding="utf-8"))
    raw["code_schemes"]["directory"] = str(project_root / raw["code_schemes"]["directory"])
    if section is None:
        raw.pop("phone_redaction", None)
    else:
        raw["phone_redaction"] = section
    path = tmp_path / "pipeline_config.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


def test_configured_regions_are_validated_with_their_json_path(tmp_path, project_root):
    path = _write_config(tmp_path, project_root, {"other_regions": ["KE", "Kenya", "XX"]})
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert error.value.problems == [
        '$.phone_redaction.other_regions[1]: expected a two-letter region code libphonenumber knows (e.g. "KE"), '
        'got "Kenya"',
        '$.phone_redaction.other_regions[2]: expected a two-letter region code libphonenumber knows (e.g. "KE"), '
        'got "XX"',
    ]


def test_regions_default_to_somalia_alone_and_the_shipped_ones_are_read(tmp_path, project_root, config):
    assert load_config(_write_config(tmp_path, project_root, None)).phone_redaction.regions == ("SO",)
    assert config.phone_redaction.regions == ("SO", "KE", "ET", "DJ")


def _digits_of_typed_number_in(path: Path) -> bool:
    data = path.read_bytes()
    return any(form in data for form in (b"615123456", b"0615 123 456", b"61 5123456", b"+252"))


def test_stage_3_redacts_numbers_in_2019_raw_files_before_any_output_or_the_audit_trail(tmp_path, project_root):
    """A 2019 raw file holds answers verbatim: stage 3 redacts them as it reads them (newest and older layers),
    so no CSV, Coda file, ICR file or audit trail holds the number, and the summary counts them."""
    root = tmp_path / "data_root"
    shutil.copytree(project_root / "tests" / "golden" / "data_root", root)
    raw_file = root / "Raw Data" / "csap_s01e01_activation.json"
    records = read_traced_data_file(raw_file)
    value, text = "Rqa_S01E01 (Value) - csap_s01e01_activation", "Rqa_S01E01 (Text) - csap_s01e01_activation"
    first = records[0].layers[0]
    typed = records[0][value] + ", call me on 0615 123 456"
    records[0] = Record.from_layers((Layer(first.step, {**first.data, value: typed, text: typed}),))
    later = "+252 61 5123456 waa lambarkayga"
    records[2] = records[2].updated(first.step, {value: later, text: later})
    write_traced_data_file(raw_file, records)

    summary = run_generate(config=load_config(project_root / "pipeline_config.json"), data_root=root,
                           run=RunContext("golden@example.org", datetime(2019, 1, 20, 16, tzinfo=timezone.utc)),
                           progress=None)

    outputs = [p for p in (root / "Outputs").rglob("*") if p.is_file()]
    assert len(outputs) >= 20
    assert [p.name for p in outputs if _digits_of_typed_number_in(p)] == []
    assert summary.counts["phone numbers redacted"] == 4
    messages = (root / "Outputs" / "csap_mes.csv").read_text(encoding="utf-8")
    assert "Waxaan u baahanahay shaqo iyo waxbarasho, call me on <phone number>" in messages
    assert "<phone number> waa lambarkayga" in messages


def test_codes_given_in_2019_to_an_answer_with_a_number_still_apply_after_redaction(tmp_path, project_root):
    """2019 coded the answer with the number in it: its Coda MessageID is the hash of that text. After redaction
    the message's id is the hash of the redacted text, and the coder's labels must still reach it (the row is
    the golden row of that message, only its raw text redacted)."""
    golden = project_root / "tests" / "golden"
    root = tmp_path / "data_root"
    shutil.copytree(golden / "data_root", root)
    raw_file = root / "Raw Data" / "csap_s01e01_activation.json"
    records = read_traced_data_file(raw_file)
    value, text = "Rqa_S01E01 (Value) - csap_s01e01_activation", "Rqa_S01E01 (Text) - csap_s01e01_activation"
    original = records[0][value]
    typed = original + ", call me on 0615 123 456"
    first = records[0].layers[0]
    records[0] = Record.from_layers((Layer(first.step, {**first.data, value: typed, text: typed}),))
    write_traced_data_file(raw_file, records)
    coded_file = root / "Coded Coda Files" / "s01e01.json"
    coded = json.loads(coded_file.read_text(encoding="utf-8"))
    (message,) = [m for m in coded if m["Text"] == original]
    message["Text"] = typed
    message["MessageID"] = hashlib.sha256(typed.encode("utf-8")).hexdigest()
    coded_file.write_text(json.dumps(coded), encoding="utf-8")

    summary = run_generate(config=load_config(project_root / "pipeline_config.json"), data_root=root,
                           run=RunContext("golden@example.org", datetime(2019, 1, 20, 16, tzinfo=timezone.utc)),
                           progress=None)

    def rows(path: Path) -> list[dict[str, str]]:
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))

    (expected,) = [r for r in rows(golden / "expected" / "csap_mes.csv") if r["rqa_s01e01_raw"] == original]
    (actual,) = [r for r in rows(root / "Outputs" / "csap_mes.csv") if r["rqa_s01e01_raw"].startswith(original)]
    assert actual == {**expected, "rqa_s01e01_raw": original + ", call me on <phone number>"}
    assert expected["rqa_s01e01_NR"] == "0"
    # Its codes were used, so they are not among those stage 3 warns no message took (of s01e01.json, only the
    # golden message sent before the project window is).
    (unused,) = [w for w in summary.warnings if w.startswith("Coded Coda Files/s01e01.json: ")]
    assert "1 coded message matches no message" in unused and message["MessageID"] not in unused
    # The coding-quality command, reading the files stage 3 left, counts the message as coded too.
    again = tmp_path / "coding_progress.csv"
    write_progress_csv(again, measure_from_data_root(load_config(project_root / "pipeline_config.json"), root).progress)
    assert again.read_bytes() == (root / "Outputs" / "Analysis" / "coding_progress.csv").read_bytes()
