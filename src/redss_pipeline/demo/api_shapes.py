"""How the bundled server renders workspace objects in the ``real`` shapes (spec rapid-pro.md section 6.4).

The synthetic workspace keeps the superset of every field (what every client version accepts). Real servers
send less, and differently; with ``shapes="real"`` the server passes each object through these functions:

- runs: no integer ``id`` (newer servers identify runs by ``uuid``; archive lines keep it), the contact with
  ``urn`` and ``urn_display`` (the number in local format, ``0612 000 106``), or ``anon_display`` and a null
  ``urn_display`` in anonymous workspaces; some values with a null ``category`` or ``name``, a null or missing
  ``input``; API datetimes with ``Z`` and no fraction when the microseconds are 0 (``values.*.time`` keeps six
  digits);
- contacts: ``status`` (``active``, ``blocked``, ``stopped``, ``archived``) without the ``blocked``/``stopped``
  booleans; URNs masked (``tel:********``) or absent in anonymous workspaces;
- archives: ``archive_type`` only (no ``type``).

Which runs get a null field is a pure function of the run's uuid, so the same workspace always renders alike.
"""

from __future__ import annotations

from typing import Any, Mapping

__all__ = ["api_time", "masked_urn", "local_display", "real_run", "real_contact", "real_archive", "urns_as_served"]

_MASK = "********"


def api_time(text: Any) -> Any:
    """``2018-12-20T08:01:00.000000Z`` -> ``2018-12-20T08:01:00Z`` (other values unchanged)."""
    if isinstance(text, str) and text.endswith(".000000Z"):
        return text[: -len(".000000Z")] + "Z"
    return text


def masked_urn(urn: str) -> str:
    """``tel:+252610000001`` -> ``tel:********``, as anonymous workspaces send it."""
    return f"{urn.partition(':')[0]}:{_MASK}"


def local_display(urn: str) -> str | None:
    """A phone URN as Rapid Pro displays it in the number's country: ``tel:+252612000106`` -> ``0612 000 106``."""
    scheme, _, path = urn.partition(":")
    if scheme not in ("tel", "whatsapp"):
        return path or None
    digits = "".join(ch for ch in path if ch.isdigit())
    national = "0" + digits[3:] if digits.startswith("252") else digits
    return " ".join((national[:4], national[4:7], national[7:])).strip()


def urns_as_served(urns: list[str], anonymous: str | None) -> list[str]:
    """A contact's URNs as ``contacts.json`` serves them: masked, or none, in anonymous workspaces."""
    if anonymous == "empty":
        return []
    if anonymous == "masked":
        return [masked_urn(u) for u in urns]
    return list(urns)


def _pick(run_uuid: str, salt: int) -> int:
    return int(run_uuid.replace("-", "")[salt : salt + 6], 16)


def real_run(run: Mapping[str, Any], contact: Mapping[str, Any] | None, anonymous: str | None) -> dict[str, Any]:
    """A live run as a current server serves it (see the module docstring)."""
    shaped = {k: v for k, v in run.items() if k != "id"}
    rendered_contact: dict[str, Any] = {"uuid": run["contact"]["uuid"], "name": run["contact"].get("name")}
    urns = list(contact.get("urns") or []) if contact else []
    if anonymous:
        rendered_contact["urn"] = masked_urn(urns[0]) if urns else None
        rendered_contact["anon_display"] = f"{_pick(run['contact']['uuid'], 0) % 10_000_000:07d}"
        rendered_contact["urn_display"] = None
    else:
        rendered_contact["urn"] = urns[0] if urns else None
        rendered_contact["urn_display"] = local_display(urns[0]) if urns else None
    shaped["contact"] = rendered_contact
    values = {}
    for n, (key, value) in enumerate(run["values"].items()):
        value = dict(value)
        pick = _pick(run["uuid"], n % 20) % 29
        if pick == 0:
            del value["input"]  # older result writers left it out
        elif pick == 1:
            value["input"] = None
        elif pick == 2:
            value["category"] = None
        elif pick == 3:
            value["name"] = None
        values[key] = value
    shaped["values"] = values
    for key in ("created_on", "modified_on", "exited_on"):
        shaped[key] = api_time(run.get(key))
    shaped["path"] = [dict(step, time=api_time(step.get("time"))) for step in run.get("path", [])]
    return shaped


def real_contact(contact: Mapping[str, Any], anonymous: str | None) -> dict[str, Any]:
    """A contact as a current server serves it (see the module docstring)."""
    shaped = {k: v for k, v in contact.items() if k not in ("blocked", "stopped")}
    if contact.get("status") == "active":
        pick = _pick(contact["uuid"], 3) % 40
        shaped["status"] = "blocked" if pick == 0 else ("archived" if pick == 1 else "active")
    shaped["urns"] = urns_as_served(list(contact.get("urns") or []), anonymous)
    for key in ("created_on", "modified_on", "last_seen_on"):
        shaped[key] = api_time(contact.get(key))
    return shaped


def real_archive(archive: Mapping[str, Any]) -> dict[str, Any]:
    """An archive listing entry as a current server serves it: ``archive_type`` only."""
    return {k: v for k, v in archive.items() if k != "type"}
