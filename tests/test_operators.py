"""The operator cleaner (redss_pipeline.deidentify.operators) against cleaners.md section 10."""

from __future__ import annotations

from pathlib import Path

import pytest

from redss_pipeline.core.code_scheme import load_code_scheme
from redss_pipeline.deidentify.operators import clean_operator, operator_prefixes

SCHEME_DIR = Path(__file__).resolve().parents[1] / "code_schemes"

# cleaners.md section 10 (fictitious numbers): stored key or input, normalised form, operator.
OPERATOR_EXAMPLES = [
    ('252610000001', '252610000001', 'hormud'),
    ('+252 61 000 0001', '252610000001', 'hormud'),
    ('tel:+252620000001', '252620000001', 'somtel'),
    ('+252 63 000 0001', '252630000001', 'telesom'),
    ('+252 64 000 0001', '252640000001', 'hormud'),
    ('+252 65 000 0001', '252650000001', 'somtel'),
    ('+252 66 000 0001', '252660000001', 'somtel'),
    ('+252 67 000 0001', '252670000001', 'nationlink'),
    ('+252 68 000 0001', '252680000001', 'somnet'),
    ('+252 69 000 0001', '252690000001', 'nationlink'),
    ('+252 90 000 0001', '252900000001', 'golis'),
    ('+252 91 000 0001', '252910000001', 'NC'),
    ('00252 61 000 0001', '252610000001', 'hormud'),
    ('0610000001', '610000001', 'NC'),
    ('+254 700 000 001', '254700000001', 'NC'),
]


@pytest.mark.parametrize("key, normalised, operator", OPERATOR_EXAMPLES)
def test_operator_examples(key, normalised, operator):
    """Each example number gives the operator of the section 10 table, written or normalised."""
    assert clean_operator(key) == operator
    assert clean_operator(normalised) == operator


@pytest.mark.parametrize("key", ["telegram:252610000001", "twitter:franky6342", "whatsapp:252610000001",
                                 "TELEGRAM:123", "ext:252900000001"])
def test_non_phone_urn_keys_have_no_operator(key):
    """A non-tel URN key gives NC without reading its digits."""
    assert clean_operator(key) == "NC"


def test_tel_urn_is_read_as_a_phone_number():
    """The tel: scheme (any case) is a phone number."""
    assert clean_operator("TEL:+252900000001") == "golis"


def test_prefix_table_is_complete():
    """The table has the ten prefixes of section 10."""
    assert dict(operator_prefixes()) == {
        "25261": "hormud", "25262": "somtel", "25263": "telesom", "25264": "hormud", "25265": "somtel",
        "25266": "somtel", "25267": "nationlink", "25268": "somnet", "25269": "nationlink", "25290": "golis",
    }


def test_every_operator_value_has_an_operator_scheme_code():
    """Each operator value is a MatchValue of the Operator scheme; Somtel comes out as StringValue 'sometel'."""
    scheme = load_code_scheme(SCHEME_DIR / "operator.json")
    values = {scheme.code_for_match_value(value).string_value for value in operator_prefixes().values()}
    assert values == {"hormud", "sometel", "telesom", "nationlink", "somnet", "golis"}
    assert scheme.control("NC") is not None


def test_short_and_empty_keys_give_nc():
    """Texts without a full Somali prefix give NC."""
    assert clean_operator("") == "NC"
    assert clean_operator("2526") == "NC"
    assert clean_operator("+252") == "NC"
