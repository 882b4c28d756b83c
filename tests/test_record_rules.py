"""A rule written as one audit layer per record; shared updates written as one shared layer."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from redss_pipeline.core.record_rules import LayerCache, SharedUpdates, apply_rule
from redss_pipeline.core.records import Record
from redss_pipeline.core.run_context import RunContext


@pytest.fixture
def run() -> RunContext:
    return RunContext("test@example.org", datetime(2019, 1, 20, tzinfo=timezone.utc))


def test_a_rule_writing_nothing_leaves_the_record_as_it_was(run):
    """A record the rule writes nothing on is returned as the same object, with no new layer."""
    records = [Record.create(run.step("test/load"), {"a": 1})]
    assert apply_rule(records, lambda values: None, run.step("test/rules"))[0] is records[0]
    assert apply_rule(records, lambda values: {}, run.step("test/rules"))[0] is records[0]


def test_shared_updates_give_every_record_the_same_layer(run):
    """Records written with one SharedUpdates object carry equal values and one shared layer object."""
    load = run.step("test/load")
    records = [Record.create(load, {"n": n}) for n in range(4)]
    even, odd = SharedUpdates("even", {"parity": "even"}), SharedUpdates("odd", {"parity": "odd"})
    written = apply_rule(records, lambda values: odd if values["n"] % 2 else even, run.step("test/parity"))
    assert [r["parity"] for r in written] == ["even", "odd", "even", "odd"]
    assert [r["n"] for r in written] == [0, 1, 2, 3]
    assert written[0].layers[-1].data is written[2].layers[-1].data
    assert dict(written[1].layers[-1].data) == {"parity": "odd"}
    assert all(r.layers[-1].step.source == "test/parity" for r in written)


def test_layer_cache_reuses_the_layer_written_for_a_key(run):
    """The second record written under a key gets the first one's layer; empty updates add no layer."""
    load = run.step("test/load")
    cache = LayerCache(run.step("test/cache"))
    first = cache.write(Record.create(load, {"a": 1}), "k", {"b": 2})
    layer = cache.get("k")
    second = Record.create(load, {"a": 5}).updated(cache.step, layer)
    assert second.to_dict() == {"a": 5, "b": 2}
    assert second.layers[-1].data is first.layers[-1].data
    untouched = Record.create(load, {"a": 1})
    assert cache.write(untouched, "nothing", {}) is untouched
    assert cache.get("nothing") == {}
    assert cache.get("unknown") is None


def test_shared_updates_are_recognised_by_their_key_not_by_the_object(run):
    """Two SharedUpdates made apart with the same key give their records one layer, written once."""
    load = run.step("test/load")
    records = [Record.create(load, {"n": n}) for n in range(2)]
    written = apply_rule(records, lambda values: SharedUpdates("flag", {"flag": True}), run.step("test/flag"))
    assert [r["flag"] for r in written] == [True, True]
    assert written[0].layers[-1].data is written[1].layers[-1].data
