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


# ---------------------------------------------------------------- fitting names apart
def test_names_that_collide_when_shortened_show_where_they_differ():
    from tracetui.textutil import fit_apart

    head = "at::native::vectorized_elementwise_kernel<4, at::native::"
    names = [head + f + ", at::detail::Array<char*, 3> >" for f in
             ("CUDAFunctor_add<float>", "BinaryFunctor<float, float, float>",
              "AUnaryFunctor<float>", "FillFunctor<float>")]
    got = fit_apart(names, 38)
    assert len(set(got)) == len(got) and all(len(g) <= 38 for g in got)
    # what tells them apart is on screen: each functor's own name
    for g, f in zip(got, ("CUDAFunctor_add", "BinaryFunctor", "AUnaryFunctor", "FillFunctor")):
        assert f in g, (g, f)
    assert not any("#" in g for g in got)  # not numbered: they differ where it shows


def test_the_very_same_names_are_numbered():
    from tracetui.textutil import fit_apart

    got = fit_apart(["same kernel"] * 3 + ["other"], 20)
    assert got[3] == "other" and len(set(got)) == 4 and all("#" in g for g in got[:3])


# ---------------------------------------------------------------- typed times
def test_typed_times_and_ranges():
    from tracetui.textutil import parse_window

    assert parse_window("12.5ms") == (12_500_000, None)
    assert parse_window("830us") == (830_000, None) == parse_window("830 µs")
    assert parse_window("1.2s") == (1_200_000_000, None)
    assert parse_window("4e3ns") == (4000, None)
    assert parse_window("0.3") == (300_000, None)  # a bare number: ms
    assert parse_window("3ms-4.5ms") == (3_000_000, 4_500_000) == parse_window("3..4.5")
    assert parse_window("3e-3s-4e-3s") == (3_000_000, 4_000_000)  # exponents' signs
    for bad, why in (("soon", "not a time"), ("1e400", "out of range"), ("nan", "not a time"),
                     ("5ms-1ms", "end must come after"), ("3ms-", "needs an end"),
                     ("1,5ms", "not a time")):
        with pytest.raises(ValueError, match=why):
            parse_window(bad)
