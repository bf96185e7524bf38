"""Classifying GPU work: computation, communication, memory, other.

Memory is memcpy/memset by category. Kernels are classified by ordered regex rules on their
name, first match wins; a kernel no rule matches is computation. Communication is recognised
by name, never by stream: streams mix (DeepSeek's stream 27 carries DeepEP's transfers *and*
FP8 casts). Users add rules with ``--comm REGEX`` and a TOML config file::

    # ~/.config/tracetui/config.toml
    [classify]
    replace = false          # true: drop the built-in rules, keep only these
    comm = ["my_allreduce_kernel", "^custom_a2a"]
    comp = ["layout"]        # exceptions, checked before the comm rules
    in_flight = ["my_ll_a2a"]  # more split send/receive kernels (see analysis.inflight)

Rules of the third kind, ``in_flight``, do not classify: they name the low-latency
communication kernels that come as a send and a later receive, whose transfer is in flight
between them on no SM (``--in-flight REGEX``; ``--no-in-flight`` turns the pairing off).
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ..trace import GPU_CATS, LANE_GPU, Trace, TraceError


class ConfigError(TraceError):
    """A config file, rule or option that cannot be used: one line for the user, like every
    input error (the trace's own are :class:`TraceError`, a theme's ThemeError)."""


COMP, COMM, MEM, OTHER = 0, 1, 2, 3
CLASS_NAMES = ("computation", "communication", "memory", "other")
SHORT_CLASS = ("comp", "comm", "mem", "other")
IN_FLIGHT = 9  # a rule's kind, not a class: which comm kernels are split send/receive pairs
NOT_GPU = -1


def gpu_work(classes: np.ndarray) -> np.ndarray:
    """Which rows are GPU work — kernels, memcpy, memset — not whatever else a trace put on
    a GPU stream's lane (class OTHER)."""
    return (classes != NOT_GPU) & (classes != OTHER)

MEMORY_CATS = frozenset({"gpu_memcpy", "gpu_memset", "Memcpy", "Memset"})
KERNEL_CATS = GPU_CATS - MEMORY_CATS


@dataclass(frozen=True)
class Rule:
    cls: int  # COMP or COMM, or IN_FLIGHT
    pattern: str
    origin: str  # "built-in", "--comm", or the config file's path

    @property
    def regex(self) -> re.Pattern[str]:
        return _compile(self.pattern, self.origin)


def _compile(pattern: str, origin: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as e:
        raise ConfigError(f"bad regex {pattern!r} ({origin}): {e}") from None


#: Built-in rules, in order (first match wins).
DEFAULT_RULES: tuple[Rule, ...] = (
    # DeepEP's layout kernel computes routing locally: computation, though it lives in deep_ep.
    Rule(COMP, r"get_dispatch_layout", "built-in"),
    # NCCL, RCCL, HCCL collectives and point-to-point
    Rule(COMM, r"^(?:void )?nccl|ncclKernel|ncclDevKernel", "built-in"),
    Rule(COMM, r"(?i)\brccl|^(?:void )?rccl|\bhccl", "built-in"),
    # DeepEP transport kernels (intranode, internode, low-latency) and DeepSeek's own namespace
    Rule(COMM, r"\bdeep_ep::(?:intranode|internode|internode_ll)::", "built-in"),
    Rule(COMM, r"\bdpsk::ep::(?:intranode|internode|internode_ll)::", "built-in"),
    # collectives by name: all-to-all, all-reduce, all-gather, reduce-scatter, send/recv, and
    # custom all-reduce kernels (vLLM's cross_device_reduce, NVLS multimem)
    # ("all" must start a word or a CamelCase part: "small_reduce" is not an all-reduce)
    Rule(COMM, r"(?:(?<![A-Za-z])[Aa]|(?<=[a-z0-9])A)ll_?(?i:to_?all|reduce|gather)"
               r"|(?i:reduce_?scatter|send_?recv)|cross_device_reduce|multimem", "built-in"),
    # DeepEP's low-latency kernels (DeepSeek's dispatch_ll/combine_ll, DeepEP's internode_ll::)
    # come as a send, then a receive: the transfer is in flight between them
    Rule(IN_FLIGHT, r"_ll<|internode_ll::", "built-in"),
)

CONFIG_PATH = os.path.join(os.path.expanduser("~"), ".config", "tracetui", "config.toml")


def load_rules(comm: Sequence[str] = (), config: str | None = None,
               in_flight: Sequence[str] = (), no_in_flight: bool = False) -> list[Rule]:
    """The active rules: ``--comm`` (and ``--in-flight``) regexes first, then the config
    file's, then the built-ins (unless the config says ``replace = true``). ``config`` None
    means the default path, if that file exists. ``no_in_flight``: no in-flight rules at all."""
    rules = [Rule(COMM, p, "--comm") for p in comm]
    rules += [Rule(IN_FLIGHT, p, "--in-flight") for p in in_flight]
    path, data = read_config(config)
    replace = False
    if path is not None:
        section = data.get("classify", {})
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: [classify] must be a table")
        replace = section.get("replace", False)
        if not isinstance(replace, bool):
            raise ConfigError(f"{path}: classify.replace must be true or false")
        for key, cls in (("comp", COMP), ("comm", COMM), ("in_flight", IN_FLIGHT)):
            pats = section.get(key, [])
            if isinstance(pats, str):
                pats = [pats]
            if not isinstance(pats, list) or not all(isinstance(p, str) for p in pats):
                raise ConfigError(f"{path}: classify.{key} must be a list of regex strings")
            rules += [Rule(cls, p, path) for p in pats]
    if not replace:
        rules += DEFAULT_RULES
    if no_in_flight:
        rules = [r for r in rules if r.cls != IN_FLIGHT]
    for r in rules:
        r.regex  # noqa: B018 - compile now: a bad regex is reported before any work
    return rules


def load_peaks(config: str | None = None) -> dict | None:
    """The config's ``[peaks]`` table (device peaks over the built-in ones, see
    :mod:`tracetui.analysis.peaks`), checked; None without one. ``config`` None: the
    default path, if that file exists. A bad value: one-line :class:`ConfigError`."""
    path, data = read_config(config)
    table = data.get("peaks")
    if path is None or table is None:
        return None
    from .peaks import device_peaks

    try:
        device_peaks("", table)  # (checks every entry)
    except ValueError as e:
        raise ConfigError(f"{path}: {e}") from None
    return table


def read_config(config: str | None) -> tuple[str | None, dict]:
    """(path, its TOML) of the config file: ``config``, or the default one if it exists
    (else ``(None, {})``); a one-line :class:`ConfigError` when it cannot be read. The rules
    (``[classify]``) and the app's keys (``[keys]``) both read it through here."""
    path = config if config is not None else (CONFIG_PATH if os.path.exists(CONFIG_PATH) else None)
    if path is None:
        return None, {}
    try:
        with open(path, "rb") as f:
            return path, tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the config ({e})") from None


def classify_names(names: Iterable[str], rules: Sequence[Rule]) -> np.ndarray:
    """Class (COMP or COMM) of each kernel name."""
    compiled = [(r.cls, r.regex) for r in rules if r.cls != IN_FLIGHT]
    out = []
    for name in names:
        cls = COMP
        for c, rx in compiled:
            if rx.search(name):
                cls = c
                break
        out.append(cls)
    return np.array(out, dtype=np.int8)


def classify(trace: Trace, rules: Sequence[Rule]) -> np.ndarray:
    """Class of every slice: COMP/COMM/MEM/OTHER for GPU work on stream lanes, NOT_GPU else.

    Each distinct name is matched once, so the cost does not grow with the event count.
    A lane at a time, through tables indexed by string id (category -> class, name ->
    class): a few bytes per slice of its lane beside the answer, where sorting the names
    of all GPU slices at once held about 55 (15 M kernels: 800 MB).
    """
    out = np.full(trace.slice_count, NOT_GPU, np.int8)
    lanes = [ln for ln in trace.lanes if ln.kind == LANE_GPU and ln.hi > ln.lo]
    if not lanes:
        return out
    strings = trace.strings
    n_str = len(strings)
    KERNEL = np.int8(-2)  # a kernel category: the class comes from the name
    cat_cls = np.full(n_str, OTHER, np.int8)
    seen_cat = np.zeros(n_str, bool)
    name_cls = np.zeros(n_str, np.int8)
    named = np.zeros(n_str, bool)  # names already matched against the rules
    for ln in lanes:
        cats = trace.cat[ln.lo:ln.hi]
        new = np.zeros(n_str, bool)
        new[cats] = True
        new &= ~seen_cat
        for c in np.flatnonzero(new).tolist():
            t = strings[c]
            cat_cls[c] = MEM if t in MEMORY_CATS else KERNEL if t in KERNEL_CATS else OTHER
        seen_cat |= new
        del new
        cls = cat_cls[cats]  # one byte per slice
        kern = cls == KERNEL
        if kern.any():
            names = trace.name[ln.lo:ln.hi]
            knames = names if kern.all() else names[kern]
            todo = np.zeros(n_str, bool)
            todo[knames] = True
            todo &= ~named
            ids = np.flatnonzero(todo)
            del todo
            if len(ids):
                name_cls[ids] = classify_names((strings[int(i)] for i in ids), rules)
                named[ids] = True
            if kern.all():
                cls = name_cls[names]
            else:
                cls[kern] = name_cls[knames]
            del knames, names
        out[ln.lo:ln.hi] = cls
    return out


def in_flight_patterns(rules: Sequence[Rule]) -> list[re.Pattern[str]]:
    return [r.regex for r in rules if r.cls == IN_FLIGHT]


def describe(rules: Sequence[Rule]) -> list[dict[str, str]]:
    return [{"class": "in_flight" if r.cls == IN_FLIGHT else SHORT_CLASS[r.cls],
             "pattern": r.pattern, "from": r.origin} for r in rules]
