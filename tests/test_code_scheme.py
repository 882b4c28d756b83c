"""Loading, validating and looking up code schemes (redss_pipeline.core.code_scheme)."""

from __future__ import annotations

import json

import pytest

import redss_pipeline.core.code_scheme as code_scheme_module
from redss_pipeline.core.code_scheme import (
    NA,
    NC,
    Code,
    CodeScheme,
    load_code_scheme,
)
from redss_pipeline.core.errors import PipelineError, SchemeError


def _normal(code_id, value, number, **extra):
    obj = {"CodeID": code_id, "CodeType": "Normal", "DisplayText": value, "NumericValue": number,
           "StringValue": value, "VisibleInCoda": True}
    obj.update(extra)
    return obj


def _control(control_code, code_id, number):
    return {"CodeID": code_id, "CodeType": "Control", "ControlCode": control_code,
            "DisplayText": f"{control_code} text", "NumericValue": number, "StringValue": control_code,
            "VisibleInCoda": False}


def _scheme_obj():
    return {
        "SchemeID": "Scheme-test",
        "Name": "Test",
        "Version": "0.0.0.1",
        "Codes": [
            _normal("code-a", "alpha", 1, Shortcut="a", MatchValues=["alpha", "shared"]),
            _normal("code-b", "beta", 2, MatchValues=["beta", "shared"]),
            _normal("code-c", "gamma", 3),
            _control("NA", "code-NA-1", -10),
            _control("NC", "code-NC-1", -30),
        ],
    }


def _write(tmp_path, obj, name="test.json"):
    path = tmp_path / name
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def test_public_names_are_all_exported():
    """__all__ lists every public name of the module."""
    public = {name for name in vars(code_scheme_module) if not name.startswith("_")}
    imported = {"annotations", "json", "os", "dataclass", "field", "Path", "Any", "Iterable", "Mapping",
                "SchemeError", "json_type", "json_error_place", "note_repeated_keys", "repeated_keys"}
    assert set(code_scheme_module.__all__) == public - imported


def test_a_scheme_file_saved_with_a_byte_order_mark_is_read(tmp_path):
    """Some Windows editors start a UTF-8 file with a byte-order mark; the scheme is read past it."""
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(_scheme_obj()).encode("utf-8"))
    assert load_code_scheme(path).scheme_id == "Scheme-test"


def test_loaded_scheme_exposes_its_identity_and_codes(tmp_path):
    """A valid file gives a scheme with its id, name, version and codes in file order."""
    scheme = load_code_scheme(_write(tmp_path, _scheme_obj()))
    assert (scheme.scheme_id, scheme.name, scheme.version) == ("Scheme-test", "Test", "0.0.0.1")
    assert [c.code_id for c in scheme.codes] == ["code-a", "code-b", "code-c", "code-NA-1", "code-NC-1"]
    assert [c.code_id for c in scheme.normal_codes] == ["code-a", "code-b", "code-c"]
    assert scheme.codes[0] == Code("code-a", "Normal", None, "alpha", 1, "alpha", True, "a", ("alpha", "shared"))


def test_lookups_by_id_control_and_match_value(tmp_path):
    """code_by_id, has_code_id, control and code_for_match_value find the right code."""
    scheme = load_code_scheme(_write(tmp_path, _scheme_obj()))
    assert scheme.code_by_id("code-b").string_value == "beta"
    assert scheme.has_code_id("code-c") and not scheme.has_code_id("code-z")
    assert scheme.control(NA).code_id == "code-NA-1"
    assert scheme.control(NC).code_id == "code-NC-1"
    assert scheme.control("STOP") is None
    assert scheme.code_for_match_value("beta").code_id == "code-b"


def test_match_value_shared_by_two_codes_finds_the_first(tmp_path):
    """When two codes list the same MatchValue, the first in file order wins."""
    scheme = load_code_scheme(_write(tmp_path, _scheme_obj()))
    assert scheme.code_for_match_value("shared").code_id == "code-a"


def test_unknown_code_id_error_names_scheme_and_id(tmp_path):
    """Asking for a missing CodeID raises a SchemeError naming the scheme and the id."""
    scheme = load_code_scheme(_write(tmp_path, _scheme_obj()))
    with pytest.raises(SchemeError, match=r"scheme 'Test' \(Scheme-test\) has no code with CodeID 'code-z'"):
        scheme.code_by_id("code-z")


def test_unmatched_value_error_names_scheme_and_value(tmp_path):
    """A value no code matches raises a SchemeError naming the scheme and the value."""
    scheme = load_code_scheme(_write(tmp_path, _scheme_obj()))
    with pytest.raises(SchemeError, match=r"scheme 'Test' \(Scheme-test\) .*MatchValues contain 'gamma'"):
        scheme.code_for_match_value("gamma")


def test_schemes_are_immutable_and_comparable(tmp_path):
    """Schemes and codes are frozen values: equal when loaded twice, not assignable."""
    path = _write(tmp_path, _scheme_obj())
    first, second = load_code_scheme(path), load_code_scheme(path)
    assert first == second and hash(first) == hash(second)
    with pytest.raises(AttributeError):
        first.name = "other"
    with pytest.raises(AttributeError):
        first.codes[0].string_value = "other"


def _broken(mutate):
    obj = _scheme_obj()
    mutate(obj)
    return obj


@pytest.mark.parametrize(
    "mutate, where, field, why",
    [
        (lambda o: o["Codes"][1].update(CodeType="Meta"), "Codes[1] (CodeID 'code-b')", "CodeType",
         "must be one of Normal, Control"),
        (lambda o: o["Codes"][3].pop("ControlCode"), "Codes[3] (CodeID 'code-NA-1')", "ControlCode",
         "a Control code needs one of"),
        (lambda o: o["Codes"][3].update(ControlCode="XX"), "Codes[3] (CodeID 'code-NA-1')", "ControlCode",
         "found 'XX'"),
        (lambda o: o["Codes"][0].update(ControlCode="NA"), "Codes[0] (CodeID 'code-a')", "ControlCode",
         "only Control codes"),
        (lambda o: o["Codes"][2].update(NumericValue="3"), "Codes[2] (CodeID 'code-c')", "NumericValue",
         "must be an integer, found '3'"),
        (lambda o: o["Codes"][2].update(NumericValue=3.0), "Codes[2] (CodeID 'code-c')", "NumericValue",
         "must be an integer"),
        (lambda o: o["Codes"][2].update(NumericValue=True), "Codes[2] (CodeID 'code-c')", "NumericValue",
         "must be an integer"),
        (lambda o: o["Codes"][2].update(StringValue=""), "Codes[2] (CodeID 'code-c')", "StringValue",
         "must be a non-empty string"),
        (lambda o: o["Codes"][2].pop("StringValue"), "Codes[2] (CodeID 'code-c')", "StringValue",
         "found nothing"),
        (lambda o: o["Codes"][2].update(DisplayText=7), "Codes[2] (CodeID 'code-c')", "DisplayText",
         "must be a non-empty string"),
        (lambda o: o["Codes"][2].pop("CodeID"), "Codes[2]", "CodeID", "must be a non-empty string"),
        (lambda o: o["Codes"][2].update(VisibleInCoda="true"), "Codes[2] (CodeID 'code-c')", "VisibleInCoda",
         "must be true or false"),
        (lambda o: o["Codes"][0].update(Shortcut="ab"), "Codes[0] (CodeID 'code-a')", "Shortcut",
         "single character"),
        (lambda o: o["Codes"][0].update(MatchValues="alpha"), "Codes[0] (CodeID 'code-a')", "MatchValues",
         "list of non-empty strings"),
        (lambda o: o["Codes"][0].update(MatchValue=["alpha"]), "Codes[0] (CodeID 'code-a')", "MatchValue",
         "unknown key"),
        (lambda o: o["Codes"][1].update(CodeID="code-a"), "Codes[1] (CodeID 'code-a')", "CodeID",
         "repeats Codes[0]"),
        (lambda o: o["Codes"][1].update(DisplayText="alpha"), "Codes[1] (CodeID 'code-b')", "DisplayText",
         "repeats Codes[0]"),
        (lambda o: o["Codes"][4].update(NumericValue=-10), "Codes[4] (CodeID 'code-NC-1')", "NumericValue",
         "repeats Codes[3]"),
        # Two codes with one StringValue would give two matrix columns of one name, each cell either code.
        (lambda o: o["Codes"][2].update(StringValue="alpha"), "Codes[2] (CodeID 'code-c')", "StringValue",
         "repeats Codes[0]"),
    ],
)
def test_invalid_code_is_refused_naming_file_code_and_field(tmp_path, mutate, where, field, why):
    """A bad code raises a SchemeError naming the file, the code (index and CodeID) and the field."""
    path = _write(tmp_path, _broken(mutate))
    with pytest.raises(SchemeError) as info:
        load_code_scheme(path)
    message = str(info.value)
    assert message.startswith(f"{path}: record {where}: field {field!r}: ")
    assert why in message
    assert "\n" not in message


def test_a_key_repeated_in_a_code_is_refused(tmp_path):
    """A code edited by hand with a second StringValue (JSON readers keep the last one) is refused by its path."""
    path = tmp_path / "test.json"
    text = json.dumps(_scheme_obj(), indent=1).replace('"StringValue": "beta"', '"StringValue": "beta", "StringValue": "b"')
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SchemeError) as info:
        load_code_scheme(path)
    assert str(info.value) == (f"{path}: $.Codes[1].StringValue: the key appears more than once in its object; only "
                               "the last is read, so the others would be silently ignored: rename or remove the copies")


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda o: o.pop("SchemeID"), "SchemeID"),
        (lambda o: o.update(Name=""), "Name"),
        (lambda o: o.update(Version=1), "Version"),
        (lambda o: o.update(Codes={}), "Codes"),
    ],
)
def test_invalid_scheme_header_is_refused_naming_file_and_field(tmp_path, mutate, field):
    """A bad SchemeID, Name, Version or Codes raises a SchemeError naming the file and the field."""
    path = _write(tmp_path, _broken(mutate))
    with pytest.raises(SchemeError, match=f"^{path}: field {field!r}: "):
        load_code_scheme(path)


def test_missing_or_malformed_file_is_a_scheme_error(tmp_path):
    """A missing file or invalid JSON gives a one-line SchemeError naming the file."""
    with pytest.raises(SchemeError, match=r"nope\.json: code scheme file not found"):
        load_code_scheme(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"SchemeID": ', encoding="utf-8")
    with pytest.raises(SchemeError, match=r"bad\.json: not valid JSON \(line 1"):
        load_code_scheme(bad)
    listed = tmp_path / "list.json"
    listed.write_text("[]", encoding="utf-8")
    with pytest.raises(SchemeError, match="must hold a JSON object, found a list"):
        load_code_scheme(listed)


def test_scheme_error_is_a_pipeline_error(tmp_path):
    """Scheme errors belong to the pipeline's error tree, so entry points print them in one line."""
    with pytest.raises(PipelineError):
        load_code_scheme(tmp_path / "missing.json")


def test_code_scheme_can_be_built_in_code():
    """A CodeScheme built directly from Code values offers the same lookups."""
    scheme = CodeScheme("S", "N", "1", (Code("c1", "Normal", None, "x", 1, "x", True, None, ("x",)),))
    assert scheme.code_for_match_value("x").code_id == "c1"
