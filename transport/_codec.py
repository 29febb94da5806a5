"""The envelope codec: one envelope to one frame and back, never pickling.

Frame layout (integers little-endian)::

    u32 map_len | msgpack map (map_len bytes)
    [ | zeros to a 64-byte boundary | tensor 0 raw bytes | zeros to 64 | tensor 1 ... ]

The map has exactly the keys ``kind sender recipient topic body iteration run id
reply_to v`` (written in the ``Envelope``'s order, read in any). A numpy array or
scalar or a torch tensor in it is an ext of type 1 pointing at its bytes after the
map (``_tensors``): one pass to encode, and the TCP layer writes each tensor's own
memory. Decoding checks everything and returns views of the frame (a read-only
frame with torch tensors is copied once); ext -1 (timestamp) is refused after
unpacking.

Every message crosses this module twice on the network, so the common case (no
tensors, a well-formed envelope) takes the shortest path. An envelope whose body
is a plain scalar, str or bytes is packed by msgspec as it is (its fields are the
map's keys); any other body by msgpack's ``Packer`` with strict types, so that
what cannot be carried is refused here (msgspec would turn tuples, sets or
dataclasses into lists and maps on the way) and each tensor's place is noted.
Decoding first tries msgspec, which unpacks and checks the whole envelope shape
in C, four times faster than unpacking and checking in Python; a frame with
tensors, or anything it refuses, takes the full path, which builds the tensor
views and names exactly what is wrong.
"""

from __future__ import annotations

import datetime
import struct
from collections.abc import Sequence
from typing import Any, Final

import msgpack
import msgspec

from ._envelope import KINDS, PROTOCOL_VERSION, Envelope, Kind
from ._sparse import compact_ext, decode_compact
from ._tensors import (
    TENSOR_EXT,
    TensorReader,
    describe,
    ext_header_len,
    padded,
    patch_offset,
    tensor_ext,
    tensor_parts,
)
from .abc import DecodeError

DEFAULT_MAX_FRAME: Final = 1 << 30
"""Largest frame ``decode`` accepts unless told otherwise: 1 GiB."""

_ZEROS: Final = bytes(64)
_PACKER_START: Final = 1024  # a Packer's first buffer: msgpack's default is 256 KiB
_U32: Final = struct.Struct("<I")
_FIELDS: Final = ("kind", "sender", "recipient", "topic", "body", "iteration", "run", "id",
                  "reply_to", "v")  # the Envelope's fields, in its order
_FIELD_SET: Final = frozenset(_FIELDS)
_FIELD_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "id": (str,), "reply_to": (str, type(None)), "sender": (str,), "recipient": (str,),
    "topic": (str,), "iteration": (int, type(None)), "run": (str,),
}
_CONTAINERS: Final = (list, dict)
_BYTES: Final = (bytes, bytearray)  # always flat: a memoryview of them is the byte view
_PLAIN: Final = frozenset({bytes, str, int, float, bool, type(None)})  # no timestamp inside
_BASE_TYPES: Final[tuple[type[Any], ...]] = (list, dict, int, float, str, bytes, bytearray)
_TIMESTAMPS: Final = frozenset({msgpack.Timestamp, datetime.datetime})  # ext -1, decoded


class _Wire(msgspec.Struct, forbid_unknown_fields=True):
    """The envelope map as it must arrive: every key, each of its type, nothing more."""

    kind: Kind
    sender: str
    recipient: str
    topic: str
    body: Any
    iteration: int | None
    run: str
    id: str
    reply_to: str | None
    v: int


class _HasTensors(Exception):
    """An ext in the map: the fast path leaves the frame to the full one."""


def _no_tensors(code: int, data: memoryview) -> Any:
    raise _HasTensors


_FAST_DECODER: Final = msgspec.msgpack.Decoder(_Wire, ext_hook=_no_tensors)
_FAST_ENCODER: Final = msgspec.msgpack.Encoder()


class _Packing:
    """One encode call: packs the map, noting each tensor and where its offset goes."""

    __slots__ = ("packer", "tensors", "ends")

    def __init__(self) -> None:
        self.packer: msgpack.Packer | None = None
        self.tensors: list[memoryview] = []
        self.ends: list[int] = []  # where each tensor's ext payload ends, in the frame

    def pack(self, fields: dict[str, Any]) -> bytes:
        """Return the packed map (tensor offsets not yet patched)."""
        self.packer = msgpack.Packer(default=self.default, use_bin_type=True, strict_types=True,
                                     buf_size=_PACKER_START)
        try:
            return self.packer.pack(fields)
        finally:
            self.packer = None  # the packer refers to self.default: break the cycle

    def default(self, obj: Any) -> Any:
        """Turn what msgpack cannot pack (strict types) into what it can."""
        parts = tensor_parts(obj)
        if parts is not None:
            return self.tensor(*parts)
        compact = compact_ext(obj)
        if compact is not None:
            return compact
        for base in _BASE_TYPES:  # their subclasses, refused by strict_types
            if isinstance(obj, base):
                return base(obj)
        if isinstance(obj, tuple):
            return list(obj)
        raise TypeError(f"cannot encode a {type(obj).__qualname__} object")

    def tensor(self, lib: str, dtype: str, shape: tuple[int, ...], data: memoryview) -> Any:
        """Record a tensor's data; return its ext, whose offset ``encode`` patches."""
        ext = tensor_ext(lib, dtype, shape, data.nbytes)
        assert self.packer is not None
        with self.packer.getbuffer() as written:
            start = 4 + written.nbytes
        self.ends.append(start + ext_header_len(len(ext.data)) + len(ext.data))
        self.tensors.append(data)
        return ext


def encode(envelope: Envelope) -> list[bytes | bytearray | memoryview]:
    """Encode an envelope as a frame given as flat byte buffers to write in order.

    The first buffer holds the map length and the map (and, when tensors follow, its
    padding); each tensor's bytes follow as a view of the tensor itself (no copy when
    it is contiguous, little-endian and on the CPU), each followed by its zero
    padding. Write the buffers out before changing those tensors.

    Raises:
        TypeError: the body holds something msgpack cannot carry (including numpy
            arrays of object, str, void or datetime dtype).
        OverflowError: an int does not fit in 64 bits.
        ValueError: the map is too large or too deeply nested.
    """
    if type(envelope.body) in _PLAIN:  # nothing to refuse or to point at: msgspec packs it
        packed = _FAST_ENCODER.encode(envelope)
        return [_U32.pack(len(packed)) + packed]
    packing = _Packing()
    packed = packing.pack(msgspec.structs.asdict(envelope))  # keys in _FIELDS order
    map_len = len(packed)
    if not packing.tensors:
        return [_U32.pack(map_len) + packed]
    head = bytearray(_U32.pack(map_len))
    head += packed
    head += _ZEROS[: -(4 + map_len) % 64]
    buffers: list[bytes | bytearray | memoryview] = [head]
    offset = len(head)
    for end, data in zip(packing.ends, packing.tensors, strict=True):
        patch_offset(head, end, offset)
        if data.nbytes:
            buffers.append(data)
        buffers.append(_ZEROS[: -data.nbytes % 64])
        offset += padded(data.nbytes)
    return buffers


def encode_bytes(envelope: Envelope) -> bytes:
    """Encode an envelope as one contiguous frame (see ``encode``)."""
    return b"".join(encode(envelope))


def frame_size(buffers: Sequence[bytes | bytearray | memoryview]) -> int:
    """Return the total size in bytes of a frame given as buffers (flat byte buffers, as
    ``encode`` gives: their ``len`` is their size in bytes)."""
    return len(buffers[0]) if len(buffers) == 1 else sum(map(len, buffers))


def decode(frame: bytes | bytearray | memoryview, *, max_size: int = DEFAULT_MAX_FRAME) -> Envelope:
    """Decode one frame into an envelope whose arrays and tensors are views of it.

    numpy arrays are read-only when the frame is; torch tensors are always writable
    (a read-only frame holding one is copied once). Keep the frame unchanged while
    the views are in use.

    Raises:
        DecodeError: the frame is malformed; the message names the problem.
    """
    view = memoryview(frame) if type(frame) in _BYTES else _byte_view(frame)
    size = view.nbytes
    if size > max_size:
        raise DecodeError(f"frame of {size} bytes is over the limit of {max_size} bytes")
    if size < 4:
        raise DecodeError(f"frame of {size} bytes is shorter than its 4-byte map length")
    (map_len,) = _U32.unpack_from(view)
    if map_len > size - 4:
        raise DecodeError(f"map length {map_len} runs past the end of the {size}-byte frame")
    if size >= map_len + 4 + 64:  # tensor data follows the map (and its padding)
        return _decode_in_full(view, map_len)
    try:
        wire = _FAST_DECODER.decode(view[4 : 4 + map_len])
    except Exception:  # empty tensors, or something wrong: the full path builds or names it
        return _decode_in_full(view, map_len)
    body = wire.body
    if wire.v != PROTOCOL_VERSION or type(body) not in _PLAIN:
        _check_version(wire.v)
        _refuse_timestamps(body)
    return Envelope(*msgspec.structs.astuple(wire))


def _decode_in_full(view: memoryview, map_len: int) -> Envelope:
    """Decode with tensor views, or raise a ``DecodeError`` naming what is wrong."""
    fields = _unpack_map(view, map_len)
    _check_fields(fields)
    if type(fields["body"]) not in _PLAIN:
        _refuse_timestamps(fields["body"])
    return Envelope(**fields)


def _byte_view(frame: bytes | bytearray | memoryview) -> memoryview:
    try:
        view = memoryview(frame)
        if view.format == "B" and view.ndim == 1 and view.c_contiguous:
            return view
        return view.cast("B")
    except (TypeError, BufferError) as exc:
        raise DecodeError(f"frame is not a contiguous byte buffer: {exc}") from exc


def _unpack_map(view: memoryview, map_len: int) -> Any:
    reader = TensorReader(view, padded(4 + map_len))

    def ext_hook(code: int, payload: bytes) -> Any:
        return reader.ext_hook(code, payload) if code == TENSOR_EXT else \
            decode_compact(code, payload)

    try:
        return msgpack.unpackb(
            view[4 : 4 + map_len], raw=False, strict_map_key=False, ext_hook=ext_hook,
            max_str_len=map_len, max_bin_len=map_len, max_array_len=map_len,
            max_map_len=map_len // 2, max_ext_len=map_len,
        )
    except msgpack.ExtraData as exc:
        raise DecodeError(f"{len(exc.extra)} stray bytes after the map") from exc
    except (ValueError, TypeError, OverflowError, MemoryError, msgpack.UnpackException) as exc:
        raise DecodeError(f"map is not valid msgpack: {exc}") from exc


def _check_fields(fields: Any) -> None:
    """Raise a ``DecodeError`` naming what makes the decoded map no envelope of ours."""
    if type(fields) is not dict:
        raise DecodeError(f"frame holds a {type(fields).__name__}, expected a map")
    if "v" not in fields:
        raise DecodeError("missing field 'v'")
    _check_version(fields["v"])
    if fields.keys() != _FIELD_SET:
        _refuse_field_names(fields)
    kind = fields["kind"]
    if type(kind) is not str or kind not in KINDS:
        raise DecodeError(f"field 'kind' expected one of {', '.join(sorted(KINDS))}, "
                          f"got {describe(kind)}")
    for name, types in _FIELD_TYPES.items():
        if type(fields[name]) not in types:
            expected = " or ".join("None" if t is type(None) else t.__name__ for t in types)
            raise DecodeError(f"field {name!r} expected {expected}, got {describe(fields[name])}")


def _check_version(version: object) -> None:
    if type(version) is not int:
        raise DecodeError(f"field 'v' expected int, got {describe(version)}")
    if version != PROTOCOL_VERSION:
        raise DecodeError(f"unsupported protocol version {version} (expected {PROTOCOL_VERSION})")


def _refuse_field_names(fields: dict[Any, Any]) -> None:
    missing = [name for name in _FIELDS if name not in fields]
    if missing:
        raise DecodeError(f"missing field {', '.join(map(repr, missing))}")
    unknown = sorted(map(repr, fields.keys() - _FIELD_SET))
    raise DecodeError(f"unknown field {', '.join(unknown)}")


def _refuse_timestamps(body: Any) -> None:
    """Raise if the body holds an ext of type -1, which msgpack decodes by itself."""
    stack = [body]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            values = [*item.keys(), *item.values()]
        else:
            values = item if type(item) is list else [item]
        types = set(map(type, values))
        if not types.isdisjoint(_TIMESTAMPS):
            raise DecodeError("unknown ext type code -1 (msgpack timestamp)")
        if not types.isdisjoint(_CONTAINERS):
            stack.extend(v for v in values if type(v) in _CONTAINERS)
