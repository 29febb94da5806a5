"""The envelope codec: one envelope to one frame and back, never pickling.

Frame layout (integers little-endian unless noted)::

    u32 map_len | msgpack map (map_len bytes) | zeros to a 64-byte boundary
    | tensor 0 raw bytes | zeros to 64 | tensor 1 raw bytes | zeros to 64 | ...

The map has exactly the keys ``v kind id reply_to sender recipient topic iteration
run body``. A numpy array or scalar or a torch tensor in it is an ext of type 1 whose
payload is the msgpack array ``[lib, dtype, shape, offset, nbytes]`` (lib "np" or
"pt"; offset from the frame start). Offset and nbytes are always uint64 (0xcf), so
the encoder can patch each offset, at the place it noted while packing, once the map
length is known: one pass, and the TCP layer writes each tensor's own memory.

Decoding checks everything and returns views of the frame (a read-only frame with
torch tensors is copied once); ext -1 (timestamp) is refused after unpacking.
torch is imported only when a torch tensor is met.
"""

from __future__ import annotations

import functools
import math
import reprlib
import struct
from collections.abc import Iterable
from typing import Any, Final

import msgpack
import numpy as np

from ._envelope import KINDS, PROTOCOL_VERSION, Envelope
from .abc import DecodeError

DEFAULT_MAX_FRAME: Final = 1 << 30
"""Largest frame ``decode`` accepts unless told otherwise: 1 GiB."""

_TENSOR_EXT: Final = 1
_ALIGN: Final = 64
_MAX_NDIM: Final = 32
_ZEROS: Final = memoryview(bytes(_ALIGN))
_PACKER_START: Final = 1024  # a Packer's first buffer: msgpack's default is 256 KiB
_U32: Final = struct.Struct("<I")
_U64BE: Final = struct.Struct(">Q")
_FIELDS: Final = ("v", "kind", "id", "reply_to", "sender", "recipient", "topic",
                  "iteration", "run", "body")
_FIELD_SET: Final = frozenset(_FIELDS)
_FIELD_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "id": (str,), "reply_to": (str, type(None)), "sender": (str,), "recipient": (str,),
    "topic": (str,), "iteration": (int, type(None)), "run": (str,),
}
_NP_DTYPES: Final = {
    name: np.dtype(name).newbyteorder("<")
    for name in ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                 "uint64", "float16", "float32", "float64", "complex64", "complex128")
}
_NP_NAMES: Final = {dtype: name for name, dtype in _NP_DTYPES.items()}
_PT_ITEMSIZE: Final = {  # torch dtype name -> itemsize; not complex32: torch warns on it
    "bool": 1, "uint8": 1, "int8": 1, "int16": 2, "int32": 4, "int64": 8, "uint16": 2,
    "uint32": 4, "uint64": 8, "float16": 2, "bfloat16": 2, "float32": 4, "float64": 8,
    "complex64": 8, "complex128": 16, "float8_e4m3fn": 1, "float8_e5m2": 1,
}
_CONTAINERS: Final = (list, dict)
_BASE_TYPES: Final[tuple[type[Any], ...]] = (list, dict, int, float, str, bytes, bytearray)


def _padded(n: int) -> int:
    return n + (-n % _ALIGN)


def _ext_header_len(payload_len: int) -> int:
    """Return how many bytes msgpack writes before an ext payload of this length."""
    if payload_len in (1, 2, 4, 8, 16):  # fixext
        return 2
    return 3 if payload_len < 1 << 8 else 4 if payload_len < 1 << 16 else 6


def _numpy_data(obj: np.ndarray | np.generic) -> tuple[str, tuple[int, ...], memoryview]:
    """Return (dtype name, shape, raw little-endian bytes) of a numpy value."""
    arr = np.asarray(obj)
    name = _NP_NAMES.get(arr.dtype)
    if name is None:
        name = _NP_NAMES.get(arr.dtype.newbyteorder("<"))
        if name is None:
            raise TypeError(f"cannot encode numpy dtype {arr.dtype} ({arr.dtype.str!r})")
        arr = arr.astype(_NP_DTYPES[name])
    if not arr.flags.c_contiguous:
        arr = arr.copy(order="C")
    return name, arr.shape, arr.reshape(-1).view(np.uint8).data


def _torch_data(obj: Any) -> tuple[str, tuple[int, ...], memoryview]:
    """Return (dtype name, shape, raw bytes) of a torch tensor, moved to CPU if needed."""
    import torch

    t = obj.detach()
    if t.layout is not torch.strided:
        raise TypeError(f"cannot encode a torch tensor with layout {t.layout}")
    if t.device.type != "cpu":
        t = t.cpu()
    name = str(t.dtype).removeprefix("torch.")
    if name not in _PT_ITEMSIZE:
        raise TypeError(f"cannot encode a torch tensor of dtype {t.dtype}")
    t = t.resolve_conj().resolve_neg().contiguous()
    return name, tuple(t.shape), t.reshape(-1).view(torch.uint8).numpy().data


def _is_torch_tensor(obj: object) -> bool:
    module = type(obj).__module__
    if module != "torch" and not module.startswith("torch."):
        return False
    import torch

    return isinstance(obj, torch.Tensor)


class _Packing:
    """One encode call: packs the map, noting each tensor and where its offset goes."""

    def __init__(self) -> None:
        self.packer: msgpack.Packer | None = None
        self.tensors: list[memoryview] = []
        self.slots: list[int] = []

    def pack_map(self, fields: dict[str, Any]) -> bytearray:
        """Return the frame head: map length, map and padding, offsets not yet patched."""
        self.packer = msgpack.Packer(default=self.default, use_bin_type=True, strict_types=True,
                                     autoreset=False, buf_size=_PACKER_START)
        try:
            self.packer.pack(fields)
            with self.packer.getbuffer() as packed:
                map_len = packed.nbytes
                head = bytearray(_padded(4 + map_len))
                head[4 : 4 + map_len] = packed
        finally:
            self.packer = None  # the packer refers to self.default: break the cycle
        _U32.pack_into(head, 0, map_len)
        return head

    def default(self, obj: Any) -> Any:
        """Turn what msgpack cannot pack (strict types) into what it can."""
        if isinstance(obj, np.ndarray | np.generic):
            return self.tensor("np", *_numpy_data(obj))
        if _is_torch_tensor(obj):
            return self.tensor("pt", *_torch_data(obj))
        for base in _BASE_TYPES:  # their subclasses, refused by strict_types
            if isinstance(obj, base):
                return base(obj)
        if isinstance(obj, tuple):
            return list(obj)
        raise TypeError(f"cannot encode a {type(obj).__qualname__} object")

    def tensor(self, lib: str, dtype: str, shape: tuple[int, ...], data: memoryview) -> Any:
        """Record a tensor's data; return its ext with a zero offset to patch later."""
        payload = b"".join((_payload_head(lib, dtype), msgpack.packb(list(shape), buf_size=64),
                            b"\xcf", bytes(8), b"\xcf", _U64BE.pack(data.nbytes)))
        assert self.packer is not None
        with self.packer.getbuffer() as written:
            start = written.nbytes
        self.slots.append(start + _ext_header_len(len(payload)) + len(payload) - 17)
        self.tensors.append(data)
        return msgpack.ExtType(_TENSOR_EXT, payload)


@functools.cache
def _payload_head(lib: str, dtype: str) -> bytes:
    return bytes(b"\x95" + msgpack.packb(lib) + msgpack.packb(dtype))


def _fields(e: Envelope) -> dict[str, Any]:
    return {"v": e.v, "kind": e.kind, "id": e.id, "reply_to": e.reply_to, "sender": e.sender,
            "recipient": e.recipient, "topic": e.topic, "iteration": e.iteration,
            "run": e.run, "body": e.body}


def encode(envelope: Envelope) -> list[bytes | memoryview]:
    """Encode an envelope as a frame given as buffers to write one after another.

    The first buffer holds the map length, the map and its padding; each tensor's
    bytes follow as a view of the tensor itself (no copy when it is contiguous,
    little-endian and on the CPU), each followed by its zero padding. Write the
    buffers out before changing those tensors.

    Raises:
        TypeError: the body holds something msgpack cannot carry (including numpy
            arrays of object, str, void or datetime dtype).
        OverflowError: an int does not fit in 64 bits.
        ValueError: the map is too large or too deeply nested.
    """
    packing = _Packing()
    head = packing.pack_map(_fields(envelope))
    buffers: list[bytes | memoryview] = [memoryview(head)]
    offset = len(head)
    for slot, data in zip(packing.slots, packing.tensors, strict=True):
        _U64BE.pack_into(head, 4 + slot, offset)
        offset += _append_padded(buffers, data)
    return buffers


def _append_padded(buffers: list[bytes | memoryview], data: memoryview) -> int:
    """Append data and its zero padding; return how many bytes were appended."""
    size = data.nbytes
    pad = -size % _ALIGN
    if size:
        buffers.append(data)
    if pad:
        buffers.append(_ZEROS[:pad])
    return size + pad


def encode_bytes(envelope: Envelope) -> bytes:
    """Encode an envelope as one contiguous frame (see ``encode``)."""
    return b"".join(encode(envelope))


def frame_size(buffers: Iterable[bytes | bytearray | memoryview]) -> int:
    """Return the total size in bytes of a frame given as buffers."""
    return sum(b.nbytes if isinstance(b, memoryview) else len(b) for b in buffers)


def decode(frame: bytes | bytearray | memoryview, *, max_size: int = DEFAULT_MAX_FRAME) -> Envelope:
    """Decode one frame into an envelope whose arrays and tensors are views of it.

    numpy arrays are read-only when the frame is; torch tensors are always writable
    (a read-only frame holding one is copied once). Keep the frame unchanged while
    the views are in use.

    Raises:
        DecodeError: the frame is malformed; the message names the problem.
    """
    view = _byte_view(frame)
    size = view.nbytes
    if size > max_size:
        raise DecodeError(f"frame of {size} bytes is over the limit of {max_size} bytes")
    if size < 4:
        raise DecodeError(f"frame of {size} bytes is shorter than its 4-byte map length")
    (map_len,) = _U32.unpack_from(view)
    if map_len > size - 4:
        raise DecodeError(f"map length {map_len} runs past the end of the {size}-byte frame")
    fields = _unpack_map(view, map_len)
    _check_fields(fields)
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
    reader = _TensorReader(view, _padded(4 + map_len))
    try:
        return msgpack.unpackb(
            view[4 : 4 + map_len], raw=False, strict_map_key=False, ext_hook=reader.ext_hook,
            max_str_len=map_len, max_bin_len=map_len, max_array_len=map_len,
            max_map_len=map_len // 2, max_ext_len=map_len,
        )
    except msgpack.ExtraData as exc:
        raise DecodeError(f"{len(exc.extra)} stray bytes after the map") from exc
    except (ValueError, TypeError, OverflowError, MemoryError, msgpack.UnpackException) as exc:
        raise DecodeError(f"map is not valid msgpack: {exc}") from exc


def _describe(value: object) -> str:
    return f"{type(value).__name__} {reprlib.repr(value)}"


def _check_fields(fields: Any) -> None:
    """Check the decoded map is an envelope of this protocol version."""
    if type(fields) is not dict:
        raise DecodeError(f"frame holds a {type(fields).__name__}, expected a map")
    _check_version(fields)
    if fields.keys() != _FIELD_SET:
        _refuse_field_names(fields)
    kind = fields["kind"]
    if type(kind) is not str or kind not in KINDS:
        raise DecodeError(f"field 'kind' expected one of {', '.join(sorted(KINDS))}, "
                          f"got {_describe(kind)}")
    for name, types in _FIELD_TYPES.items():
        if type(fields[name]) not in types:
            expected = " or ".join("None" if t is type(None) else t.__name__ for t in types)
            raise DecodeError(f"field {name!r} expected {expected}, got {_describe(fields[name])}")


def _check_version(fields: dict[Any, Any]) -> None:
    if "v" not in fields:
        raise DecodeError("missing field 'v'")
    version = fields["v"]
    if type(version) is not int:
        raise DecodeError(f"field 'v' expected int, got {_describe(version)}")
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
        if msgpack.Timestamp in types:
            raise DecodeError("unknown ext type code -1 (msgpack timestamp)")
        if not types.isdisjoint(_CONTAINERS):
            stack.extend(v for v in values if type(v) in _CONTAINERS)


class _TensorReader:
    """Builds each tensor ext of one frame into a view of that frame."""

    def __init__(self, view: memoryview, data_start: int) -> None:
        self.view = view
        self.data_start = data_start
        self.writable: memoryview | None = None

    def ext_hook(self, code: int, payload: bytes) -> Any:
        """Return the array or tensor an ext stands for; refuse unknown ext types."""
        if code != _TENSOR_EXT:
            raise DecodeError(f"unknown ext type code {code}")
        lib, dtype, shape, offset, nbytes = _parse_header(payload)
        itemsize = _NP_DTYPES[dtype].itemsize if lib == "np" else _PT_ITEMSIZE[dtype]
        self._check_region(offset, nbytes)
        if nbytes != math.prod(shape) * itemsize:
            raise DecodeError(f"tensor nbytes {nbytes} does not match shape {shape} "
                              f"of {lib} dtype {dtype}")
        try:
            if lib == "np":
                return self._numpy(dtype, shape, offset, nbytes // itemsize)
            return self._torch(dtype, shape, offset, nbytes // itemsize)
        except (ValueError, TypeError, RuntimeError, OverflowError, MemoryError) as exc:
            raise DecodeError(f"cannot build tensor of shape {shape}: {exc}") from exc

    def _check_region(self, offset: int, nbytes: int) -> None:
        if offset < self.data_start or offset % _ALIGN:
            raise DecodeError(f"tensor offset {offset} is not a 64-byte aligned offset "
                              f"at or after the map end ({self.data_start})")
        if offset + nbytes > self.view.nbytes:
            raise DecodeError(f"tensor data [{offset}, {offset + nbytes}) runs past the end "
                              f"of the {self.view.nbytes}-byte frame")

    def _numpy(self, dtype: str, shape: tuple[int, ...], offset: int, count: int) -> Any:
        flat = np.frombuffer(self.view, dtype=_NP_DTYPES[dtype], count=count, offset=offset)
        return flat.reshape(shape)

    def _torch(self, dtype: str, shape: tuple[int, ...], offset: int, count: int) -> Any:
        import torch

        torch_dtype = getattr(torch, dtype)
        if count == 0:
            return torch.empty(shape, dtype=torch_dtype)
        if self.writable is None:  # torch warns about views of read-only memory
            self.writable = memoryview(bytearray(self.view)) if self.view.readonly else self.view
        flat = torch.frombuffer(self.writable, dtype=torch_dtype, count=count, offset=offset)
        return flat.reshape(shape)


def _parse_header(payload: bytes) -> tuple[str, str, tuple[int, ...], int, int]:
    """Unpack and check a tensor ext payload ``[lib, dtype, shape, offset, nbytes]``."""
    try:
        header = msgpack.unpackb(payload, raw=False)
    except (ValueError, TypeError, OverflowError, msgpack.UnpackException) as exc:
        raise DecodeError(f"tensor header is not valid msgpack: {exc}") from exc
    if type(header) is not list or len(header) != 5:
        raise DecodeError("tensor header expected [lib, dtype, shape, offset, nbytes], "
                          f"got {_describe(header)}")
    lib, dtype, shape, offset, nbytes = header
    if type(lib) is not str or lib not in ("np", "pt"):
        raise DecodeError(f"tensor header has unknown lib {_describe(lib)}")
    if type(dtype) is not str or dtype not in (_NP_DTYPES if lib == "np" else _PT_ITEMSIZE):
        raise DecodeError(f"tensor header has unknown {lib} dtype {_describe(dtype)}")
    if not _is_shape(shape):
        raise DecodeError(f"tensor header has bad shape {_describe(shape)}")
    for name, value in (("offset", offset), ("nbytes", nbytes)):
        if type(value) is not int or value < 0:
            raise DecodeError(f"tensor header has bad {name} {_describe(value)}")
    return lib, dtype, tuple(shape), offset, nbytes


def _is_shape(shape: object) -> bool:
    if type(shape) is not list or len(shape) > _MAX_NDIM:
        return False
    return all(type(d) is int and d >= 0 for d in shape)
