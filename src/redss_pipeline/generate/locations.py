"""The Somalia location hierarchy: one location name -> Mogadishu sub-district, district, region, state, zone.

Coders code a respondent's location at whichever level they can (a sub-district, a district, ... a zone); the
location reconciliation then fills in all five analysis columns from that one name (cleaners.md section 9,
pipeline.md 7.6.4). A level that cannot be derived is ``NC``. Unlike 2019, a zone-only name keeps its zone.

    >>> derive_location_levels("hodan")
    {'mogadishu_sub_district': 'hodan', 'district': 'mogadishu', 'region': 'banadir', 'state': 'banadir', 'zone': 'scz'}
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Collection, Mapping

from redss_pipeline.core.code_scheme import NC

__all__ = [
    "MOGADISHU_SUB_DISTRICT",
    "DISTRICT",
    "REGION",
    "STATE",
    "ZONE",
    "LOCATION_LEVELS",
    "derive_location_levels",
    "location_hierarchy",
    "LocationHierarchy",
]

# The five levels, named like the survey coding plans that hold them, from the finest to the coarsest.
MOGADISHU_SUB_DISTRICT = "mogadishu_sub_district"
DISTRICT = "district"
REGION = "region"
STATE = "state"
ZONE = "zone"
LOCATION_LEVELS: tuple[str, ...] = (MOGADISHU_SUB_DISTRICT, DISTRICT, REGION, STATE, ZONE)


@dataclass(frozen=True)
class LocationHierarchy:
    """The hierarchy's tables, as in cleaners.md section 9."""

    mogadishu_sub_districts: frozenset[str]
    """The 16 sub-districts of Mogadishu, all in district ``mogadishu``."""
    alternative_district_names: Mapping[str, str]
    """Other names that count as districts (``matabaan`` -> ``belet weyne``)."""
    district_regions: Mapping[str, str]
    """The 74 districts and their regions."""
    region_states: Mapping[str, str]
    """The 18 regions and their states."""
    state_zones: Mapping[str, str]
    """The 7 states and their zones (``nez``, ``nwz``, ``scz``)."""

    @property
    def zones(self) -> frozenset[str]:
        """The three zones."""
        return frozenset(self.state_zones.values())


@functools.cache
def location_hierarchy() -> LocationHierarchy:
    """The hierarchy tables, read from the package data on first use."""
    text = resources.files("redss_pipeline").joinpath("data", "somalia_locations.json").read_text("utf-8")
    data = json.loads(text)
    return LocationHierarchy(
        mogadishu_sub_districts=frozenset(data["mogadishu_sub_districts"]),
        alternative_district_names=dict(data["alternative_district_names"]),
        district_regions=dict(data["district_regions"]),
        region_states=dict(data["region_states"]),
        state_zones=dict(data["state_zones"]),
    )


def derive_location_levels(name: str) -> dict[str, str]:
    """The five levels of a location name, keyed by ``LOCATION_LEVELS``; ``NC`` where a level cannot be derived.

    Each level is taken from the level below when that one is known, else the name itself counts when it is a
    name of this level (cleaners.md 9.6): ``bari`` -> NC / NC / bari / puntland / nez; ``scz`` -> NC at
    every level but the zone. Returns a new dict on every call, so callers may keep or change it.
    """
    return dict(zip(LOCATION_LEVELS, _derive(name)))


@functools.lru_cache(maxsize=4096)
def _derive(name: str) -> tuple[str, str, str, str, str]:
    hierarchy = location_hierarchy()
    sub_district = name if name in hierarchy.mogadishu_sub_districts else NC
    if sub_district != NC:
        district = "mogadishu"
    elif name in hierarchy.alternative_district_names:
        district = hierarchy.alternative_district_names[name]
    elif name in hierarchy.district_regions:
        district = name
    else:
        district = NC
    region = _level(district, name, hierarchy.district_regions, hierarchy.region_states.keys())
    state = _level(region, name, hierarchy.region_states, hierarchy.state_zones.keys())
    # 2019 tested the state result here instead of the name, so a zone-only name became NC; fixed (README).
    zone = _level(state, name, hierarchy.state_zones, hierarchy.zones)
    return sub_district, district, region, state, zone


def _level(below: str, name: str, parents: Mapping[str, str], names_here: Collection[str]) -> str:
    """This level from the level below when that is known, else the name itself if it names this level."""
    if below != NC:
        return parents[below]
    return name if name in names_here else NC
