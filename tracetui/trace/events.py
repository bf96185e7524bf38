"""Decoding pieces of the traceEvents array into light event records.

A piece (a few hundred KB of whole events) is decoded with msgspec into typed records, one
type per phase (a union tagged by ``ph``), that hold only the fields the index needs: a
slice's ``args`` keep just the GPU/runtime column fields, the rest is skipped unparsed and
re-read from the file when someone asks. That is several times faster than building a dict
per event. A piece whose values do not fit the types (a string ``ts``, a list as ``pid``, a
number as ``name``, an unusual phase, ...) is decoded again into loose records that accept
anything, and the loader validates them one by one; non-objects become :data:`NOT_AN_EVENT`.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Union

import msgspec


class NeedExact(Exception):
    """A number the fast decoding cannot hold: a float timestamp too large for float64 to keep
    its nanoseconds, or a number beyond what msgspec's floats or yajl's int64/double take
    (``1e400``, ``18446744073709551616``; JSON allows any): the load is redone exactly,
    floats as Decimal, where every JSON number is a value."""


#: msgspec's error for a JSON number beyond float64 (``1e400``) where it decodes floats
_OUT_OF_RANGE = "Number out of range"


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


class MemoryArgs(msgspec.Struct, gc=False):
    """The ``args`` of instants the index keeps as columns: those of ``[memory]`` events
    (typed, not a dict per event: at millions of them the load's cost); others skipped."""

    bytes: Any = msgspec.field(default=None, name="Bytes")
    device_type: Any = msgspec.field(default=None, name="Device Type")
    device_id: Any = msgspec.field(default=None, name="Device Id")
    allocated: Any = msgspec.field(default=None, name="Total Allocated")
    reserved: Any = msgspec.field(default=None, name="Total Reserved")
    addr: Any = msgspec.field(default=None, name="Addr")


_NO_ARGS = KernelArgs()
_KARGS_KEYS = {f: n for f, n in zip(KernelArgs.__struct_fields__,
                                    KernelArgs.__struct_encode_fields__)}
_MARGS_KEYS = {f: n for f, n in zip(MemoryArgs.__struct_fields__,
                                    MemoryArgs.__struct_encode_fields__)}


#: Fields every typed event record has (``ph`` is the tag that picks the record type).
_COMMON: list[tuple[str, Any]] = [
    ("cat", Union[str, None]),
    ("name", Union[str, None]),
    ("pid", Union[int, str, None]),
    ("tid", Union[int, str, None]),
    ("id", Any),
    ("bp", Any),
    ("s", Any),
    ("tdur", Any),
    ("bind_id", Any),
    ("flow_in", Any),
    ("flow_out", Any),
]
#: Per phase, what ``args`` becomes: the column fields for slices (everything else in them is
#: skipped unparsed and re-read on demand), all of it where the loader needs it at once
#: (counters, metadata, the args an "E" adds to its "B").
_PHASE_ARGS: dict[str, Any] = {
    "X": Union[KernelArgs, None],
    "B": Union[KernelArgs, None],
    "E": Any,
    "C": Any,
    "M": Any,
    "i": Union[MemoryArgs, None],
    "I": Union[MemoryArgs, None],
    "R": Any,
    "s": Any,
    "t": Any,
    "f": Any,
}


def _typed_records(time_type: Any, label: str) -> Any:
    """A tagged union (on ``ph``) of one record type per phase."""
    base = msgspec.defstruct(
        f"{label}Event", [(f, t, None) for f, t in _COMMON]
        + [("ts", Union[int, time_type, None], None), ("dur", Union[int, time_type, None], None)],
        tag_field="ph", gc=False)
    types = []
    for ph, args_type in _PHASE_ARGS.items():
        cls = msgspec.defstruct(f"{label}Event_{ph}", [("args", args_type, None)], bases=(base,),
                                tag=ph, gc=False)
        cls.ph = ph  # type: ignore[attr-defined]  # the tag, readable as on any record
        types.append(cls)
    return Union[tuple(types)]


#: ts/dur as written, or (exact) a non-integer one as a Decimal that keeps every digit
_FAST_TYPES = _typed_records(float, "Fast")
_EXACT_TYPES = _typed_records(Decimal, "Exact")


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

_FAST = msgspec.json.Decoder(list[_FAST_TYPES])  # type: ignore[valid-type]
_EXACT = msgspec.json.Decoder(list[_EXACT_TYPES])  # type: ignore[valid-type]
_LOOSE = {False: msgspec.json.Decoder(list[LooseEvent]),
          True: msgspec.json.Decoder(list[LooseEvent], float_hook=Decimal)}
_ANY = {False: msgspec.json.Decoder(list[Any]),
        True: msgspec.json.Decoder(list[Any], float_hook=Decimal)}


def as_event(obj: Any) -> Any:
    """A decoded JSON value (a dict from ijson or json) as an event record."""
    if isinstance(obj, msgspec.Struct):
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
    if isinstance(a, MemoryArgs):
        return memory_args(a)
    return a


def memory_args(a: MemoryArgs) -> dict[str, Any]:
    """A ``[memory]`` event's typed args as the dict the file has (its fields present)."""
    return {n: v for f, n in _MARGS_KEYS.items() if (v := getattr(a, f)) is not None}


def kernel_args(e: Any) -> KernelArgs:
    """The event's ``args`` fields that become columns."""
    a = e.args
    if type(a) is KernelArgs:
        return a
    if isinstance(a, dict):
        get = a.get
        return KernelArgs(*[get(n) for n in _KARGS_KEYS.values()])
    return _NO_ARGS


def decode_array(body: bytes | bytearray | memoryview, exact: bool,
                 full: bool = False) -> list[Any]:
    """Decode a JSON array of events. Raises ValueError if it is not valid JSON (or is nested
    too deeply to decode).

    ``full``: keep every arg of every event (for re-reading events on demand).
    """
    try:
        return _decode_array(body, exact, full)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _decode_array(body: bytes | bytearray | memoryview, exact: bool, full: bool) -> list[Any]:
    try:
        if full:
            raise msgspec.ValidationError  # straight to the loose records
        return (_EXACT if exact else _FAST).decode(body)
    except msgspec.ValidationError:  # a value of an odd type, a phase we do not type, ...
        pass
    except msgspec.DecodeError as e:
        raise ValueError(str(e)) from None
    try:
        return _LOOSE[exact].decode(body)
    except msgspec.ValidationError:  # items that are not objects (or a number too big)
        pass
    except msgspec.DecodeError as e:
        raise ValueError(str(e)) from None
    try:
        return [as_event(x) for x in _ANY[exact].decode(body)]
    except msgspec.ValidationError as e:
        # Valid JSON (a syntax error is a DecodeError), with a number beyond float64
        # (1e400) where floats are decoded as such: only Decimals hold it.
        if exact or _OUT_OF_RANGE not in str(e):
            raise ValueError(str(e)) from None
        if full:  # re-reading one piece (its args): that piece exactly, not the whole load
            return _decode_array(body, True, True)
        raise NeedExact from None
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


def decode_piece_in(buf: bytearray, end: int, exact: bool) -> list[Any]:
    """The piece ``buf[1:end]`` (whole events, each followed by a comma, the last one too),
    decoded where it lies: ``buf[0]`` is a spare byte. It and the piece's last comma stand
    for the array's brackets while msgspec decodes, then are put back, so the piece is not
    copied (a piece is read once, into ``buf``)."""
    last = end - 1
    while last > 0 and buf[last] in b" \t\r\n":
        last -= 1
    if last < 1 or buf[last] != 0x2C:  # ","
        raise ValueError("a piece must end with a comma")
    spare = buf[0]
    buf[0], buf[last] = 0x5B, 0x5D  # "[", "]"
    try:
        with memoryview(buf) as whole, whole[: last + 1] as body:
            return decode_array(body, exact)
    finally:
        buf[0], buf[last] = spare, 0x2C


def decode_tail(data: bytes, exact: bool) -> tuple[list[Any], str]:
    """The last piece: events, the array's closing "]", then the rest of the file as text."""
    text = "[" + data.decode("utf-8")
    decoder = json.JSONDecoder(parse_float=Decimal if exact else _finite_float,
                               parse_constant=_not_json)
    try:
        items, end = decoder.raw_decode(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    return [as_event(x) for x in items], text[end:]


def _finite_float(text: str) -> float:
    """A JSON float as float64; one beyond it (1e400, which float() makes inf) needs the
    exact load, as in msgspec's pieces (the same value whatever piece it falls in)."""
    v = float(text)
    if v in (_INF, -_INF):
        raise NeedExact
    return v


_INF = float("inf")


def _not_json(name: str) -> Any:
    """NaN and Infinity are not JSON (Python's json writes them); reject them everywhere."""
    raise ValueError(f"{name} is not valid JSON")
