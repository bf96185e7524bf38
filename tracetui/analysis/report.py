"""Everything ``tracetui summary`` reports, as plain data (JSON-ready)."""

from __future__ import annotations

from typing import Any, Sequence

from ..trace import Trace
from .annotations import annotation_table
from .facts import trace_facts
from .kernels import group_by_short_name, kernel_table
from .overlap import device_overlap, device_unions, stream_overlap
from .rules import DEFAULT_RULES, Rule, classify, describe
from .streams import stream_stats


def analyze(trace: Trace, rules: Sequence[Rule] = DEFAULT_RULES) -> dict[str, Any]:
    classes = classify(trace, rules)
    unions = device_unions(trace, classes)
    table = kernel_table(trace, classes)
    return {
        **trace_facts(trace),
        "rules": describe(rules),
        "kernels": table,
        "kernel_groups": group_by_short_name(table),
        "streams": stream_stats(trace),
        "overlap": device_overlap(unions),
        "stream_overlap": stream_overlap(trace, unions),
        "annotations": annotation_table(trace, classes, unions),
    }
