"""Decoding pieces of the traceEvents array into light event records.

A piece (a few MB of whole events) is decoded with msgspec into typed structs that hold only
the fields the index needs; ``args`` stays as raw JSON bytes until someone asks for it. That
is several times faster than building a dict per event. A piece whose values do not fit the
types (a string ``ts``, a list as ``pid``, a number as ``name``, ...) is decoded again into
loose records that accept anything, and the loader validates them one by one; non-objects
become :data:`NOT_AN_EVENT`.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any, Union

import msgspec


class KernelArgs(msgspec.Struct, gc=False):
    """The ``args`` the index keeps as columns (GPU work and runtime calls); others are skipped."""

    correlation: Any = None
    external_id: Any = msgspec.field(default=None, name="External id")
    external_id_2021: Any = msgspec.field(default=None, name="external id")
    grid: Any = None
    block: Any = None
    registers: Any = msgspec.field(default=None, name="registers per thread")
    shared_memory: Any = msgspec.field(default=None, name="shared memory")
    blocks_per_sm: Any = msgspec.field(default=None, name="blocks per SM")
    warps_per_sm: Any = msgspec.field(default=None, name="warps per SM")
    occupancy: Any = msgspec.field(default=None, name="est. achieved occupancy %")
    occupancy_theoretical: Any = msgspec.field(default=None, name="theoretical occupancy %")
    bytes: Any = None
    bandwidth: Any = msgspec.field(default=None, name="memory bandwidth (GB/s)")
    device: Any = None
    stream: Any = None


_NO_ARGS = KernelArgs()
_KARGS_KEYS = {f: n for f, n in zip(KernelArgs.__struct_fields__,
                                    KernelArgs.__struct_encode_fields__)}


class FastEvent(msgspec.Struct, gc=False):
    """The common case: every field has the type Chrome/Kineto writers use."""

    ph: Union[str, None] = None
    cat: Union[str, None] = None
    name: Union[str, None] = None
    pid: Union[int, str, None] = None
    tid: Union[int, str, None] = None
    ts: Union[int, float, None] = None
    dur: Union[int, float, None] = None
    id: Any = None
    bp: Any = None
    s: Any = None
    tdur: Any = None
    bind_id: Any = None
    flow_in: Any = None
    flow_out: Any = None
    args: Union[KernelArgs, None] = None


class ExactEvent(msgspec.Struct, gc=False):
    """As FastEvent, but a non-integer ts/dur becomes a Decimal that keeps every digit."""

    ph: Union[str, None] = None
    cat: Union[str, None] = None
    name: Union[str, None] = None
    pid: Union[int, str, None] = None
    tid: Union[int, str, None] = None
    ts: Union[int, Decimal, None] = None
    dur: Union[int, Decimal, None] = None
    id: Any = None
    bp: Any = None
    s: Any = None
    tdur: Any = None
    bind_id: Any = None
    flow_in: Any = None
    flow_out: Any = None
    args: Union[KernelArgs, None] = None


class LooseEvent(msgspec.Struct, gc=False):
    """Anything goes: values are validated by the loader, event by event."""

    ph: Any = None
    cat: Any = None
    name: Any = None
    pid: Any = None
    tid: Any = None
    ts: Any = None
    dur: Any = None
    id: Any = None
    bp: Any = None
    s: Any = None
    tdur: Any = None
    bind_id: Any = None
    flow_in: Any = None
    flow_out: Any = None
    args: Any = None


_FIELDS = tuple(LooseEvent.__struct_fields__)
#: Stands for an item of the events array that is not a JSON object.
NOT_AN_EVENT = LooseEvent(ph=object())

_FAST = msgspec.json.Decoder(list[FastEvent])
_EXACT = msgspec.json.Decoder(list[ExactEvent])
_LOOSE = {False: msgspec.json.Decoder(list[LooseEvent]),
          True: msgspec.json.Decoder(list[LooseEvent], float_hook=Decimal)}
_ANY = {False: msgspec.json.Decoder(list[Any]),
        True: msgspec.json.Decoder(list[Any], float_hook=Decimal)}
#: Phases whose whole ``args`` the loader needs at once (counters, metadata, E args).
_FULL_ARGS = re.compile(rb'"ph"\s*:\s*"[CME]"')
_FULL_ARGS_PHASES = frozenset({"C", "M", "E"})


def as_event(obj: Any) -> Any:
    """A decoded JSON value (a dict from ijson or json) as an event record."""
    if isinstance(obj, (FastEvent, ExactEvent, LooseEvent)):
        return obj
    if isinstance(obj, dict):
        get = obj.get
        return LooseEvent(*[get(f) for f in _FIELDS])
    return NOT_AN_EVENT


def args_of(e: Any) -> Any:
    """The event's whole ``args`` (loose records keep them all; typed ones only KernelArgs)."""
    a = e.args
    if isinstance(a, KernelArgs):
        return {n: v for f, n in _KARGS_KEYS.items() if (v := getattr(a, f)) is not None}
    return a


def kernel_args(e: Any) -> KernelArgs:
    """The event's ``args`` fields that become columns."""
    a = e.args
    if type(a) is KernelArgs:
        return a
    if isinstance(a, dict):
        get = a.get
        return KernelArgs(*[get(n) for n in _KARGS_KEYS.values()])
    return _NO_ARGS


def decode_array(body: bytes | bytearray, exact: bool, full: bool = False) -> list[Any]:
    """Decode a JSON array of events. Raises ValueError if it is not valid JSON (or is nested
    too deeply to decode).

    ``full``: keep every arg of every event (for re-reading events on demand).
    """
    try:
        return _decode_array(body, exact, full)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _decode_array(body: bytes | bytearray, exact: bool, full: bool) -> list[Any]:
    try:
        if full:
            raise msgspec.ValidationError  # straight to the loose records
        events = (_EXACT if exact else _FAST).decode(body)
    except msgspec.ValidationError:
        pass
    except msgspec.DecodeError as e:
        raise ValueError(str(e)) from None
    else:
        if _FULL_ARGS.search(body):  # rare: counters, metadata, E args need every arg
            loose = _LOOSE[exact].decode(body)
            for i, e in enumerate(events):
                if e.ph in _FULL_ARGS_PHASES:
                    events[i] = loose[i]
        return events
    try:
        return _LOOSE[exact].decode(body)
    except msgspec.ValidationError:  # items that are not objects
        return [as_event(x) for x in _ANY[exact].decode(body)]
    except msgspec.DecodeError as e:
        raise ValueError(str(e)) from None


def decode_piece(data: bytes | memoryview, exact: bool, full: bool = False) -> list[Any]:
    """A piece: whole events, each followed by a comma (the last one too)."""
    end = len(data)
    while end and data[end - 1] in b" \t\r\n":
        end -= 1
    if not end or data[end - 1] != 0x2C:  # ","
        raise ValueError("a piece must end with a comma")
    body = bytearray(b"[")
    body += data[: end - 1]
    body += b"]"
    return decode_array(body, exact, full)


def decode_tail(data: bytes, exact: bool) -> tuple[list[Any], str]:
    """The last piece: events, the array's closing "]", then the rest of the file as text."""
    text = "[" + data.decode("utf-8")
    decoder = json.JSONDecoder(parse_float=Decimal if exact else float,
                               parse_constant=_not_json)
    try:
        items, end = decoder.raw_decode(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    return [as_event(x) for x in items], text[end:]


def _not_json(name: str) -> Any:
    """NaN and Infinity are not JSON (Python's json writes them); reject them everywhere."""
    raise ValueError(f"{name} is not valid JSON")
