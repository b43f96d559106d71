"""Updates per second, as the health PVs and the live view show them."""

from __future__ import annotations

from icsbridge.core.rate import UpdateRate
from icsbridge.ics.cache import Update
from icsbridge.model import ItemKey

UPDATE = Update(ItemKey(0, 0, 0, "Status.voltageMeasure"), 1.0, "V", None)


def test_the_rate_is_counted_between_samples() -> None:
    rate = UpdateRate()
    assert rate.sample(10.0) == 0.0  # the first sample only starts the clock
    rate.count([UPDATE] * 30)
    rate.count([UPDATE] * 20)
    assert rate.sample(12.0) == 25.0
    assert rate.sample(14.0) == 0.0
    assert rate.total == 50
