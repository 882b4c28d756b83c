"""Which URN identifies a contact (spec rapid-pro.md section 6.3, README decision 13).

Rapid Pro moves a contact's preferred URN to the channel it used last, so "the first URN" flips between
``tel:`` and ``whatsapp:`` for the same person. The identity is therefore chosen independently of URN order:

1. the contact's first ``tel:`` URN, else its first ``whatsapp:`` URN. Both are phone numbers (a WhatsApp id is
   the number's digits) and the UUID table normalises both to the same digits, so one number gives one uid
   whichever channel came last, and 2019 tables (which keyed every URN by its digits) keep their ids;
2. else its first other URN, kept whole by the UUID table (``telegram:123``);
3. a URN whose path is masked (only ``*``, as anonymous workspaces send: ``tel:********``), or that holds
   nothing usable (``tel:`` without digits), is never a key. In a workspace that ``org.json`` reports as
   anonymous, or when every URN of a contact is masked, the key is the Rapid Pro contact UUID, written
   ``rapidpro-contact:<uuid>``: people stay apart and nothing identifying is stored.

A contact with no URN at all in a workspace that is not anonymous has no identity (2019 skipped its runs too).
Pure functions: no table, no network.
"""

from __future__ import annotations

from typing import Any, Mapping

from redss_pipeline.core.errors import UuidTableError
from redss_pipeline.deidentify.uuid_table import urn_key

__all__ = ["CONTACT_UUID_SCHEME", "PHONE_SCHEMES", "is_masked", "identity_urn"]

#: The scheme of the key that stands for a contact of an anonymous workspace.
CONTACT_UUID_SCHEME = "rapidpro-contact"
#: URN schemes whose path is a phone number, in order of preference.
PHONE_SCHEMES = ("tel", "whatsapp")


def is_masked(urn: str) -> bool:
    """True for a URN an anonymous workspace hides: its path is only ``*`` (``tel:********``)."""
    _, sep, path = urn.partition(":")
    return bool(sep) and bool(path) and set(path) == {"*"}


def _usable(urn: Any) -> bool:
    if not isinstance(urn, str) or is_masked(urn):
        return False
    try:
        urn_key(urn)
    except UuidTableError:
        return False  # e.g. a tel: URN without digits: identifies no one
    return True


def identity_urn(contact: Mapping[str, Any], *, anonymous: bool) -> str | None:
    """The URN to look up in the UUID table for this contact (see the module docstring), or None when the
    contact cannot be identified (no URN, in a workspace that is not anonymous)."""
    urns = [u for u in (contact.get("urns") or []) if isinstance(u, str)]
    contact_uuid = contact.get("uuid")
    if anonymous or (urns and all(is_masked(u) for u in urns)):
        return f"{CONTACT_UUID_SCHEME}:{contact_uuid}" if contact_uuid else None
    usable = [u for u in urns if _usable(u)]
    for scheme in PHONE_SCHEMES:
        for urn in usable:
            if urn.partition(":")[0].lower() == scheme:
                return urn
    return usable[0] if usable else None
