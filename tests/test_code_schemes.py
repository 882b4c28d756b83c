"""The shipped scheme files in code_schemes/ hold exactly the codes of datasets-and-codebook.md 6 and 7."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from redss_pipeline.core.code_scheme import CONTROL_CODES, NC, load_code_scheme
from redss_pipeline.core.errors import SchemeError

SCHEME_DIR = Path(__file__).resolve().parents[1] / "code_schemes"

ALL_CONTROLS = CONTROL_CODES

# datasets-and-codebook.md 6.3: file, SchemeID, Name, Normal codes, control codes, Normal codes have MatchValues.
SUMMARY = [
    ("s01e01.json", "Scheme-d7eb83ef", "S01E01", 19, ALL_CONTROLS, False),
    ("s01e02_reasons.json", "Scheme-4f039174", "S01E02 Reasons", 17, ALL_CONTROLS, False),
    ("s01e02_integrate_return.json", "Scheme-3205c427", "S01E02 Integrate/Return", 3, ALL_CONTROLS, False),
    ("s01e03_reasons.json", "Scheme-5b60cc33", "S01E03 Reasons", 15, ALL_CONTROLS, False),
    ("s01e03_yes_no_amb.json", "Scheme-1161eddc", "S01E03 Yes/No/Amb", 3, ALL_CONTROLS, False),
    ("s01e04.json", "Scheme-3abe50d3", "S01E04", 11, ALL_CONTROLS, False),
    ("gender.json", "Scheme-12cb6f95", "Gender", 2, ALL_CONTROLS, True),
    ("age.json", "Scheme-4189e74c", "Age", 90, ALL_CONTROLS, True),
    ("mogadishu_sub_district.json", "Scheme-07dfc611", "Mogadishu Sub-District", 16, ALL_CONTROLS, True),
    ("district.json", "Scheme-5292e8fb", "District", 74, ALL_CONTROLS, True),
    ("region.json", "Scheme-644e3296", "Region", 18, ALL_CONTROLS, True),
    ("state.json", "Scheme-a390e6ce", "State", 7, ALL_CONTROLS, True),
    ("zone.json", "Scheme-b8ce44fb", "Zone", 3, ALL_CONTROLS, True),
    ("idp_camp.json", "Scheme-0fe57c6d", "IDP Camp", 2, ALL_CONTROLS, True),
    ("recently_displaced.json", "Scheme-e1aa9330", "Recently Displaced", 2, ALL_CONTROLS, True),
    ("hh_language.json", "Scheme-e3290e1f", "HH Language", 8, ALL_CONTROLS, False),
    ("repeated.json", "Scheme-0ea6e7d2", "Repeated", 2, ALL_CONTROLS, True),
    ("involved.json", "Scheme-7940c638", "Involved", 2, ALL_CONTROLS, True),
    ("operator.json", "Scheme-f86cff0b", "Operator", 6, ("NA", "NC"), True),
    ("ws_correct_dataset.json", "Scheme-fffffc6e", "WS - Correct Dataset", 10, ("NR",), None),
]
FILE_NAMES = [row[0] for row in SUMMARY]

# datasets-and-codebook.md 6.2: the shared control codes.
SHARED_CONTROLS = {
    "NA": ("code-NA-f93d3eb7", "NA (missing)", -10, False),
    "NS": ("code-NS-2c11b7c9", "NS (skip)", -20, False),
    "NC": ("code-NC-42f1d983", "NC (not coded)", -30, True),
    "NR": ("code-NR-5e3eee23", "NR (not reviewed)", -40, False),
    "NIC": ("code-NIC-99631cb8", "NIC (not internally consistent)", -50, False),
    "STOP": ("code-STOP-08b832a8", "STOP", -90, True),
    "WS": ("code-WS-adb25603b7af", "WS (wrong scheme)", -100, True),
}


@pytest.fixture(scope="module")
def schemes():
    return {name: load_code_scheme(SCHEME_DIR / name) for name in FILE_NAMES}


def test_code_schemes_folder_holds_exactly_the_twenty_files():
    """The folder has the twenty scheme files of 6.3 and nothing else."""
    assert sorted(p.name for p in SCHEME_DIR.glob("*.json")) == sorted(FILE_NAMES)


@pytest.mark.parametrize("file_name, scheme_id, name, n_normal, controls, has_match_values", SUMMARY)
def test_scheme_file_matches_summary(schemes, file_name, scheme_id, name, n_normal, controls, has_match_values):
    """Each file has the SchemeID, Name, Version, Normal-code count and control codes of 6.3."""
    scheme = schemes[file_name]
    assert (scheme.scheme_id, scheme.name, scheme.version) == (scheme_id, name, "0.0.0.1")
    assert len(scheme.normal_codes) == n_normal
    assert tuple(code.control_code for code in scheme.control_codes) == controls
    # Normal codes first, then the control codes.
    assert scheme.codes == scheme.normal_codes + scheme.control_codes
    if has_match_values is not None:
        assert all((code.match_values is not None) == has_match_values for code in scheme.normal_codes)


@pytest.mark.parametrize("file_name", FILE_NAMES)
def test_normal_codes_follow_the_common_rules(schemes, file_name):
    """Normal codes number 1, 2, 3 ... (Age: the age), are visible, and match their StringValue."""
    scheme = schemes[file_name]
    for position, code in enumerate(scheme.normal_codes, start=1):
        expected_number = position + 9 if file_name == "age.json" else position
        assert code.numeric_value == expected_number
        assert code.visible_in_coda is True
        assert code.control_code is None
        if code.match_values is not None and code.string_value != "sometel":
            assert code.match_values == (code.string_value,)


def test_shared_control_codes_are_identical_in_every_scheme(schemes):
    """Every scheme's control code equals the shared object of 6.2."""
    seen = 0
    for scheme in schemes.values():
        for code in scheme.control_codes:
            code_id, display_text, numeric_value, visible = SHARED_CONTROLS[code.control_code]
            assert _code_object(code) == {
                "CodeID": code_id, "CodeType": "Control", "ControlCode": code.control_code,
                "DisplayText": display_text, "NumericValue": numeric_value, "StringValue": code.control_code,
                "VisibleInCoda": visible,
            }
            seen += 1
    assert seen == 18 * 7 + 2 + 1


@pytest.mark.parametrize(
    "file_name, code_id, string_value, display_text",
    [
        ("s01e01.json", "code-1c2837d7", "financial_support", "financial support"),
        ("s01e01.json", "code-7b037534", "other", "other"),
        ("s01e02_reasons.json", "code-506a38cc", "they_are_farmers_pastoralists", "they are farmers/pastoralists"),
        ("s01e02_integrate_return.json", "code-cc669a0a", "ambivalent", "ambivalent"),
        ("s01e03_reasons.json", "code-ef82c93f", "reasons_for_discrimination_lack_of_host-idp_interaction",
         "reasons for discrimination: lack of host-idp interaction"),
        ("s01e03_yes_no_amb.json", "code-c209a282", "no", "no"),
        ("s01e04.json", "code-646d5b26", "other", "other"),
        ("gender.json", "code-86a4602c", "female", "female"),
        ("age.json", "code-a3305435", "10", "10"),
        ("age.json", "code-47558a0f", "25", "25"),
        ("age.json", "code-36856c7f", "99", "99"),
        ("mogadishu_sub_district.json", "code-ae4b5ca2", "hodan", "hodan"),
        ("district.json", "code-6018057d", "bu'aale", "bu'aale"),
        ("district.json", "code-2e6192c8", "mogadishu", "mogadishu"),
        ("district.json", "code-26d99b64", "zeylac", "zeylac"),
        ("region.json", "code-98931bb8", "woqooyi galbeed", "woqooyi galbeed"),
        ("state.json", "code-79e2b000", "hir-shabelle", "hir-shabelle"),
        ("zone.json", "code-dc3483fa", "scz", "scz"),
        ("idp_camp.json", "code-dc43b68e", "yes", "yes"),
        ("recently_displaced.json", "code-d67739e0", "no", "no"),
        ("hh_language.json", "code-83d97143", "mother-tongue", "mother-tongue"),
        ("repeated.json", "code-78dac7e5", "yes", "yes"),
        ("involved.json", "code-3a40a492", "no", "no"),
        ("operator.json", "code-605d77ed", "sometel", "somtel"),
        ("ws_correct_dataset.json", "code-9a5f15d6", "s01e02", "s01e02"),
    ],
)
def test_spot_checked_codes_have_the_tabled_values(schemes, file_name, code_id, string_value, display_text):
    """Selected CodeIDs carry the StringValue and DisplayText of section 7."""
    code = schemes[file_name].code_by_id(code_id)
    assert (code.string_value, code.display_text, code.code_type) == (string_value, display_text, "Normal")


def test_age_scheme_maps_every_age_from_10_to_99(schemes):
    """Every age 10..99 has exactly one code whose MatchValue and NumericValue is that age."""
    age = schemes["age.json"]
    for n in range(10, 100):
        code = age.code_for_match_value(str(n))
        assert (code.numeric_value, code.string_value, code.display_text) == (n, str(n), str(n))
    assert age.code_for_match_value("89").code_id == "code-a23c339b"


def test_operator_somtel_match_value_gives_sometel_string_value(schemes):
    """The operator cleaner's value 'somtel' selects the code whose StringValue is 'sometel'."""
    operator = schemes["operator.json"]
    assert operator.code_for_match_value("somtel").string_value == "sometel"
    assert operator.control(NC).code_id == "code-NC-42f1d983"
    assert operator.control("NS") is None


def test_ws_correct_dataset_only_s01e02_has_match_values(schemes):
    """In WS - Correct Dataset only the s01e02 code can be found by MatchValue."""
    ws = schemes["ws_correct_dataset.json"]
    assert [code.string_value for code in ws.normal_codes if code.match_values] == ["s01e02"]
    assert ws.control("NS") is None and ws.control("NR").code_id == "code-NR-5e3eee23"


def test_gender_and_yes_no_schemes_have_one_letter_shortcuts(schemes):
    """Gender and the yes/no schemes carry the shortcuts m/f and y/n; other schemes have none."""
    assert [c.shortcut for c in schemes["gender.json"].normal_codes] == ["m", "f"]
    for name in ("idp_camp.json", "recently_displaced.json", "repeated.json", "involved.json"):
        assert [c.shortcut for c in schemes[name].normal_codes] == ["y", "n"]
    assert all(c.shortcut is None for c in schemes["district.json"].codes)


@pytest.mark.parametrize("file_name", FILE_NAMES)
def test_a_loaded_scheme_holds_everything_its_file_holds(schemes, file_name):
    """Every key of the file is loaded: written back from the loaded scheme, the file's object comes out exactly,
    keys in the file's order, optional keys only where the file has them."""
    raw = json.loads((SCHEME_DIR / file_name).read_text(encoding="utf-8"))
    produced = {"SchemeID": schemes[file_name].scheme_id, "Name": schemes[file_name].name,
                "Version": schemes[file_name].version, "Codes": [_code_object(c) for c in schemes[file_name].codes]}
    assert produced == raw
    assert [list(code) for code in produced["Codes"]] == [list(code) for code in raw["Codes"]]


def test_broken_shipped_scheme_names_file_code_and_field(tmp_path):
    """A shipped file with one bad value is refused with the file, the code and the field named."""
    raw = json.loads((SCHEME_DIR / "district.json").read_text(encoding="utf-8"))
    raw["Codes"][4]["NumericValue"] = "5"
    broken = tmp_path / "district.json"
    broken.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(SchemeError) as info:
        load_code_scheme(broken)
    message = str(info.value)
    assert str(broken) in message
    assert "Codes[4] (CodeID 'code-eaf4bef5')" in message
    assert "field 'NumericValue'" in message


def _code_object(code) -> dict:
    """A loaded code written back as a scheme file's code object (keys in the order of datasets-and-codebook.md
    6.1, optional ones only when set)."""
    obj = {"CodeID": code.code_id, "CodeType": code.code_type}
    if code.control_code is not None:
        obj["ControlCode"] = code.control_code
    obj.update(DisplayText=code.display_text, NumericValue=code.numeric_value, StringValue=code.string_value,
               VisibleInCoda=code.visible_in_coda)
    if code.shortcut is not None:
        obj["Shortcut"] = code.shortcut
    if code.match_values is not None:
        obj["MatchValues"] = list(code.match_values)
    return obj
