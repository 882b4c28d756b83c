"""The Somalia location hierarchy (redss_pipeline.generate.locations) against cleaners.md section 9."""

from __future__ import annotations

from pathlib import Path

import pytest

import redss_pipeline.generate.locations as locations_module
from redss_pipeline.core.code_scheme import load_code_scheme
from redss_pipeline.generate.locations import LOCATION_LEVELS, derive_location_levels, location_hierarchy

SCHEME_DIR = Path(__file__).resolve().parents[1] / "code_schemes"

# cleaners.md 9.6: name, sub-district, district, region, state, zone (new pipeline).
HIERARCHY_EXAMPLES = [
    ('hodan', 'hodan', 'mogadishu', 'banadir', 'banadir', 'scz'),
    ('karaan', 'karaan', 'mogadishu', 'banadir', 'banadir', 'scz'),
    ('mogadishu', 'NC', 'mogadishu', 'banadir', 'banadir', 'scz'),
    ('baidoa', 'NC', 'baidoa', 'bay', 'south west state', 'scz'),
    ('hargeysa', 'NC', 'hargeysa', 'woqooyi galbeed', 'somaliland', 'nwz'),
    ('garowe', 'NC', 'garowe', 'nugaal', 'puntland', 'nez'),
    ('matabaan', 'NC', 'belet weyne', 'hiraan', 'hir-shabelle', 'scz'),
    ('bari', 'NC', 'NC', 'bari', 'puntland', 'nez'),
    ('banadir', 'NC', 'NC', 'banadir', 'banadir', 'scz'),
    ('puntland', 'NC', 'NC', 'NC', 'puntland', 'nez'),
    ('somaliland', 'NC', 'NC', 'NC', 'somaliland', 'nwz'),
    ('scz', 'NC', 'NC', 'NC', 'NC', 'scz'),
    ('nwz', 'NC', 'NC', 'NC', 'NC', 'nwz'),
    ('nairobi', 'NC', 'NC', 'NC', 'NC', 'NC'),
]


@pytest.mark.parametrize("name, sub_district, district, region, state, zone", HIERARCHY_EXAMPLES)
def test_location_levels_examples(name, sub_district, district, region, state, zone):
    """Each example name derives the five levels of the 9.6 table (new zone column)."""
    assert derive_location_levels(name) == {
        "mogadishu_sub_district": sub_district,
        "district": district,
        "region": region,
        "state": state,
        "zone": zone,
    }


def test_zone_only_name_keeps_its_zone():
    """The 2019 defect is fixed: a zone name keeps its zone and the lower levels are NC."""
    for zone in ("nez", "nwz", "scz"):
        assert list(derive_location_levels(zone).values()) == ["NC", "NC", "NC", "NC", zone]


def test_levels_come_in_plan_order():
    """The result's keys are the five location plans from the finest level to the coarsest."""
    assert LOCATION_LEVELS == ("mogadishu_sub_district", "district", "region", "state", "zone")
    assert list(derive_location_levels("hodan")) == list(LOCATION_LEVELS)


def test_result_is_a_fresh_dict():
    """Changing a returned dict does not change later results."""
    first = derive_location_levels("garowe")
    first["zone"] = "changed"
    assert derive_location_levels("garowe")["zone"] == "nez"


@pytest.mark.parametrize(
    "alternative, canonical",
    [("badhan", "jariiban"), ("bulo marer", "marka"), ("buaale", "bu'aale"), ("guriceel", "dhuusamarreeb"),
     ("mahaday", "jowhar"), ("matabaan", "belet weyne"), ("warsheikh", "balcad")],
)
def test_alternative_district_names_give_the_canonical_district(alternative, canonical):
    """The seven alternative names of 9.2 count as their canonical district."""
    levels = derive_location_levels(alternative)
    assert levels["mogadishu_sub_district"] == "NC"
    assert levels["district"] == canonical
    assert levels["region"] == location_hierarchy().district_regions[canonical]


def test_every_sub_district_lies_in_mogadishu():
    """All 16 sub-districts derive district mogadishu, region and state banadir, zone scz."""
    hierarchy = location_hierarchy()
    assert len(hierarchy.mogadishu_sub_districts) == 16
    for name in hierarchy.mogadishu_sub_districts:
        assert list(derive_location_levels(name).values()) == [name, "mogadishu", "banadir", "banadir", "scz"]


def test_hierarchy_tables_are_complete():
    """The tables hold 74 districts, 18 regions, 7 states and 3 zones, each mapping to a known parent."""
    hierarchy = location_hierarchy()
    assert len(hierarchy.district_regions) == 74
    assert len(hierarchy.region_states) == 18
    assert len(hierarchy.state_zones) == 7
    assert hierarchy.zones == {"nez", "nwz", "scz"}
    assert set(hierarchy.district_regions.values()) == set(hierarchy.region_states)
    assert set(hierarchy.region_states.values()) == set(hierarchy.state_zones)
    assert len(hierarchy.alternative_district_names) == 7
    assert set(hierarchy.alternative_district_names.values()) <= set(hierarchy.district_regions)


@pytest.mark.parametrize(
    "level, scheme_file, names",
    [
        ("mogadishu_sub_district", "mogadishu_sub_district.json", lambda h: h.mogadishu_sub_districts),
        ("district", "district.json", lambda h: h.district_regions.keys()),
        ("region", "region.json", lambda h: h.region_states.keys()),
        ("state", "state.json", lambda h: h.state_zones.keys()),
        ("zone", "zone.json", lambda h: h.zones),
    ],
)
def test_each_level_matches_its_scheme(level, scheme_file, names):
    """The names of each level are exactly the MatchValues of that level's scheme, so every derived value has a code."""
    scheme = load_code_scheme(SCHEME_DIR / scheme_file)
    assert set(names(location_hierarchy())) == {code.match_values[0] for code in scheme.normal_codes}
    for name in names(location_hierarchy()):
        derived = derive_location_levels(name)[level]
        assert scheme.code_for_match_value(derived).string_value == name


def test_every_derivable_value_has_a_scheme_code():
    """Whatever name is coded, each derived level is NC or a MatchValue of that level's scheme."""
    hierarchy = location_hierarchy()
    schemes = {level: load_code_scheme(SCHEME_DIR / f"{level}.json") for level in LOCATION_LEVELS}
    names = (set(hierarchy.mogadishu_sub_districts) | set(hierarchy.alternative_district_names)
             | set(hierarchy.district_regions) | set(hierarchy.region_states) | set(hierarchy.state_zones)
             | set(hierarchy.zones))
    for name in names:
        for level, value in derive_location_levels(name).items():
            if value != "NC":
                schemes[level].code_for_match_value(value)


def test_public_names_are_all_exported():
    """Every name in __all__ exists."""
    assert all(hasattr(locations_module, name) for name in locations_module.__all__)
