"""The cache: typed values in base units, every update passed on."""

from __future__ import annotations

import logging
import sys
import time

import pytest

from icsbridge.ics.cache import Cache, Update
from icsbridge.ics.protocol import ItemRecord
from icsbridge.model import CRATE_ADDRESS, ItemKey, ItemPath

CHANNEL = ItemPath(0, 3, 5)


@pytest.mark.parametrize(
    ("item", "value", "unit", "expected", "base"),
    [
        ("Status.voltageMeasure", "1.5", "kV", 1500.0, "V"),
        ("Status.voltageMeasure", "1499.87", "V", 1499.87, "V"),
        ("Status.currentMeasure", "2.5", "µA", 2.5e-6, "A"),  # U+00B5 micro sign
        ("Status.currentMeasure", "2.5", "μA", 2.5e-6, "A"),  # U+03BC Greek mu
        ("Status.currentMeasure", "2.5", "uA", 2.5e-6, "A"),
        ("Status.currentMeasure", "0.3", "mA", 3e-4, "A"),
        ("Status.currentMeasure", "40", "nA", 4e-8, "A"),
        ("Status.currentMeasure", "0.000001", "kA", 1e-3, "A"),
        ("Control.on", "1", "", True, ""),
        ("Setup.delayedTripTime", "500", "ms", 500, "ms"),
        ("Status.runningState", "ok", "", "ok", ""),
    ],
)
def test_values_arrive_typed_in_base_units(
    item: str, value: str, unit: str, expected: object, base: str
) -> None:
    cache = Cache()
    cache.apply([ItemRecord(CHANNEL, item, value, unit, 1.7e9)])
    update = cache.get(ItemKey(0, 3, 5, item))
    assert update is not None
    assert update.value == pytest.approx(expected)
    assert type(update.value) is type(expected)
    assert update.unit == base
    assert update.time == 1.7e9


def test_temperatures_in_c_or_degrees_c() -> None:
    cache = Cache()
    crate = ItemPath(0, CRATE_ADDRESS)
    cache.apply(
        [
            ItemRecord(crate, "Status.temperature0", "31.5", "C"),
            ItemRecord(crate, "Status.temperature1", "32.5", "°C"),
        ]
    )
    assert cache.get(ItemKey(0, CRATE_ADDRESS, None, "Status.temperature0")) == Update(
        ItemKey(0, CRATE_ADDRESS, None, "Status.temperature0"), 31.5, "°C", None
    )
    assert cache.get(ItemKey(0, CRATE_ADDRESS, None, "Status.temperature1")).unit == "°C"


def test_subscribers_get_every_update_in_order() -> None:
    cache = Cache()
    batches: list[list[float]] = []
    stop = cache.subscribe(lambda updates: batches.append([u.value for u in updates]))
    for step in ("10", "20", "20"):
        cache.apply([ItemRecord(CHANNEL, "Status.voltageMeasure", step, "V")])
    stop()
    cache.apply([ItemRecord(CHANNEL, "Status.voltageMeasure", "30", "V")])
    assert batches == [[10.0], [20.0], [20.0]]


def test_a_bad_value_is_dropped_and_logged_the_rest_applies(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = Cache()
    with caplog.at_level(logging.WARNING):
        updates = cache.apply(
            [
                ItemRecord(CHANNEL, "Status.voltageMeasure", "lots", "V"),
                ItemRecord(CHANNEL, "Status.currentMeasure", "1", "parsec"),
                ItemRecord(CHANNEL, "Control.on", "1", ""),
            ]
        )
    assert [u.key.item for u in updates] == ["Control.on"]
    assert ItemKey(0, 3, 5, "Status.voltageMeasure") not in cache
    assert "Status.voltageMeasure" in caplog.text and "parsec" in caplog.text


def test_items_the_catalog_does_not_know_are_kept() -> None:
    cache = Cache()
    cache.apply(
        [
            ItemRecord(CHANNEL, "Status.somethingNew", "1.5", "kV"),
            ItemRecord(CHANNEL, "Status.otherNew", "abc", ""),
        ]
    )
    assert cache.get(ItemKey(0, 3, 5, "Status.somethingNew")).value == 1500.0
    assert cache.get(ItemKey(0, 3, 5, "Status.otherNew")).value == "abc"


def test_an_item_keeps_one_key_with_its_name_interned() -> None:
    cache = Cache()
    name = "".join(["Status.", "voltageMeasure"])  # not the catalog's string
    first = cache.apply([ItemRecord(CHANNEL, name, "1.0", "V", 1.7e9)])[0].key
    again = cache.apply([ItemRecord(CHANNEL, name[:], "2.0", "V", 1.8e9)])[0].key
    assert again is first and first.item is sys.intern(name)
    assert cache.get(ItemKey(0, 3, 5, name)) == Update(first, 2.0, "V", 1.8e9)


@pytest.mark.parametrize("stamp", [-1.0, 100.0, 631_151_999.0, 4_294_967_296.0, 1e308])
def test_a_time_stamp_no_face_can_show_is_replaced_by_the_arrival(stamp: float) -> None:
    cache = Cache()
    before = time.time()
    (update,) = cache.apply([ItemRecord(CHANNEL, "Status.voltageMeasure", "5", "V", stamp)])
    assert update.value == 5.0
    assert before <= update.time <= time.time()
    assert cache.restamped.count == 1


@pytest.mark.parametrize("text", ["2147483648", "-2147483649", "9" * 400, "1e30"])
def test_an_int_beyond_32_bits_is_dropped(text: str) -> None:
    cache = Cache()
    records = [
        ItemRecord(CHANNEL, "Setup.delayedTripTime", text, "ms"),
        ItemRecord(CHANNEL, "Setup.delayedTripAction", "2147483647", ""),
    ]
    assert [u.value for u in cache.apply(records)] == [2147483647]
    assert cache.dropped.count == 1


def test_once_admitted_only_those_items_are_kept() -> None:
    cache = Cache()
    served = ItemKey(0, 3, 5, "Status.voltageMeasure")
    cache.apply([ItemRecord(ItemPath(0, 9, 9), "Status.voltageMeasure", "1", "V")])
    cache.admit([served])
    assert len(cache) == 0
    strangers = [ItemRecord(ItemPath(7, 7, c), "Status.voltageMeasure", "1", "V") for c in range(9)]
    updates = cache.apply([*strangers, ItemRecord(CHANNEL, "Status.voltageMeasure", "2", "V")])
    assert [u.key for u in updates] == [served] and len(cache) == 1
    assert updates[0].key is served
    assert cache.strangers.count == 9
