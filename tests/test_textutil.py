"""Ruler labels: readable, and distinct from tick to tick at any zoom and offset."""

from __future__ import annotations

import random

import pytest

from tracetui.textutil import fmt_tick

UNITS = {"s": 1e9, "ms": 1e6, "µs": 1e3, "ns": 1.0}


def parse(label: str) -> float:
    value, unit = label.split(" ")
    return float(value) * UNITS[unit]


@pytest.mark.parametrize("seed", range(5))
def test_neighbouring_ticks_differ_and_are_close_to_their_time(seed):
    rng = random.Random(seed)
    for _ in range(300):
        t0 = rng.choice([0, rng.uniform(0, 1e3), rng.uniform(0, 1e6), rng.uniform(0, 1e9),
                         rng.uniform(1e9, 1e11)])
        step = 10 ** rng.uniform(0, 10)
        ticks = [t0 + k * step for k in range(1, 6)]
        labels = [fmt_tick(t, step) for t in ticks]
        assert len(set(labels)) == len(labels), (t0, step, labels)
        for t, lab in zip(ticks, labels):
            # within half a step (and within 0.5% for three significant digits)
            assert abs(parse(lab) - t) <= max(step / 2, abs(t) * 0.005), (t, step, lab)


def test_labels_use_the_unit_of_the_time():
    assert fmt_tick(0, 10) == "0"
    assert fmt_tick(3.56e6, 3.56e6) == "3.56 ms"
    assert fmt_tick(11.85e9 + 13_000, 13_000).endswith(" s")
    assert fmt_tick(11.85e9 + 13_000, 13_000) != fmt_tick(11.85e9 + 26_000, 13_000)
