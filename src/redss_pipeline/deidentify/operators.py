"""The mobile operator of a respondent, read from the phone number kept in the UUID table.

The operator column of the analysis files comes from the first five digits of the international number
(cleaners.md section 10). Identifiers that are not phone numbers (a ``telegram:`` or ``twitter:`` URN kept
whole in the UUID table) have no operator: their digits say nothing about a network, and in 2019 reading
them as numbers could invent one.
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from types import MappingProxyType
from typing import Mapping

from redss_pipeline.core.code_scheme import NC

__all__ = ["clean_operator", "operator_prefixes"]

_CACHE_SIZE = 1 << 17

# A URN scheme in front of a colon ("tel:", "telegram:"); RFC 3986 scheme syntax.
_URN_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_NOT_ASCII_DIGIT = re.compile(r"[^0-9]")
_PREFIX_LENGTH = 5


@functools.cache
def operator_prefixes() -> Mapping[str, str]:
    """The five-digit prefixes (``"25261"``) and the operator each one means (``"hormud"``), read once."""
    text = resources.files("redss_pipeline").joinpath("data", "somalia_operators.json").read_text("utf-8")
    return MappingProxyType(dict(json.loads(text)["prefix_operators"]))


@functools.lru_cache(maxsize=_CACHE_SIZE)
def clean_operator(phone_number_or_urn_key: str) -> str:
    """The operator of a phone number (``hormud``, ``somtel``, ...), or ``NC``.

    Accepts the UUID table's key: a normalised number (``252610000001``), any written form of a number
    (``+252 61 000 0001``, ``tel:+252610000001``) or a non-phone URN key (``telegram:123``), which gives NC.
    The number is normalised as in 2019 (keep ASCII digits, strip leading zeros) and must start with the
    country code: a national-format ``0610000001`` gives NC. The value returned for Somtel is the Operator
    scheme's MatchValue ``somtel`` (its StringValue is ``sometel``).
    """
    scheme = _URN_SCHEME.match(phone_number_or_urn_key)
    if scheme is not None and scheme.group(1).lower() != "tel":
        return NC
    digits = _NOT_ASCII_DIGIT.sub("", phone_number_or_urn_key).lstrip("0")
    return operator_prefixes().get(digits[:_PREFIX_LENGTH], NC)
