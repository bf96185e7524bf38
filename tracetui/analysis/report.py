"""Everything ``tracetui summary`` reports, as plain data (JSON-ready)."""

from __future__ import annotations

from typing import Any, Sequence

from ..trace import Trace
from .annotations import annotation_table
from .attribution import DeviceComp, Launches, LaunchPhases, phase_occurrences
from .exposed import ExposedStretches
from .facts import trace_facts
from .kernels import group_by_short_name, kernel_table
from .overlap import device_overlap, device_unions, stream_overlap
from .phases import DEFAULT_GROUPS, phase_blocks
from .rules import DEFAULT_RULES, Rule, classify, describe
from .streams import KERNEL_WAIT_US, stream_stats


def analyze(trace: Trace, rules: Sequence[Rule] = DEFAULT_RULES,
            kernel_wait_us: float = KERNEL_WAIT_US, level: int | None = None,
            blocks: bool = False, groups: Sequence[str] = DEFAULT_GROUPS) -> dict[str, Any]:
    """The report. The phases are the innermost repeating CPU annotations, or those at
    nesting depth ``level``; ``blocks``: add their diagram's blocks as ``phases``."""
    classes = classify(trace, rules)
    unions = device_unions(trace, classes)
    table = kernel_table(trace, classes)
    launches = Launches(trace, classes)
    phases = LaunchPhases(trace, classes, phase_occurrences(trace, level), launches)
    exposed = ExposedStretches(trace, classes, unions, phases)
    overlap = device_overlap(unions)
    for o in overlap:
        o["exposed_stretches"] = exposed.count(o["device"])
    out = {
        **trace_facts(trace),
        "rules": describe(rules),
        "kernels": table,
        "kernel_groups": group_by_short_name(table),
        "idle_split": {"kernel_wait_below_us": float(kernel_wait_us)},
        "streams": stream_stats(trace, classes, kernel_wait_us),
        "overlap": overlap,
        "stream_overlap": stream_overlap(trace, unions),
        "annotations": annotation_table(trace, classes, unions, launches, phases),
        "exposed": exposed.records(),
    }
    if blocks:
        comp = DeviceComp(trace, unions)
        out["phases"] = [{k: v for k, v in b.items() if k not in ("row", "depth")}
                         for b in phase_blocks(trace, classes, groups=groups, comp=comp,
                                               phases=phases)]
    return out
