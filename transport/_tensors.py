"""Tensors in a frame: numpy arrays and torch tensors as msgpack ext type 1.

The ext payload is the msgpack array ``[lib, dtype, shape, offset, nbytes]`` (lib
"np" or "pt"; dtype a name from the tables below; offset from the frame start);
the tensor's raw little-endian bytes sit at that offset, 64-byte aligned, after
the map. Offset and nbytes are always uint64 (0xcf), so the encoder can patch the
offset once the map length is known. Decoding checks every field and returns a
view of the frame. torch is imported only when a torch tensor is met.
"""

from __future__ import annotations

import functools
import math
import reprlib
import struct
from typing import Any, Final

import msgpack
import numpy as np

from ._snapshot import is_torch_tensor
from .abc import DecodeError

TENSOR_EXT: Final = 1
ALIGN: Final = 64
OFFSET_FROM_END: Final = 17
"""Where a payload's offset (8 bytes) starts, counted from the payload's end."""

_MAX_NDIM: Final = 32
_U64BE: Final = struct.Struct(">Q")
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


def padded(n: int) -> int:
    """``n`` rounded up to the alignment of tensor data."""
    return n + (-n % ALIGN)


def tensor_parts(obj: object) -> tuple[str, str, tuple[int, ...], memoryview] | None:
    """(lib, dtype name, shape, raw bytes) of a numpy value or torch tensor; else None.

    Raises:
        TypeError: a dtype or layout that cannot be carried.
    """
    if isinstance(obj, np.ndarray | np.generic):
        return ("np", *_numpy_data(obj))
    if is_torch_tensor(obj):
        return ("pt", *_torch_data(obj))
    return None


def _numpy_data(obj: np.ndarray | np.generic) -> tuple[str, tuple[int, ...], memoryview]:
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


def tensor_ext(lib: str, dtype: str, shape: tuple[int, ...], nbytes: int) -> msgpack.ExtType:
    """The ext for a tensor, its offset zero until patched (``OFFSET_FROM_END``)."""
    payload = b"".join((_payload_head(lib, dtype), msgpack.packb(list(shape), buf_size=64),
                        b"\xcf", bytes(8), b"\xcf", _U64BE.pack(nbytes)))
    return msgpack.ExtType(TENSOR_EXT, payload)


def ext_header_len(payload_len: int) -> int:
    """How many bytes msgpack writes before an ext payload of this length."""
    if payload_len in (1, 2, 4, 8, 16):  # fixext
        return 2
    return 3 if payload_len < 1 << 8 else 4 if payload_len < 1 << 16 else 6


def patch_offset(head: bytearray, end_of_payload: int, offset: int) -> None:
    """Write a tensor's offset into its ext payload, which ends at ``end_of_payload``."""
    _U64BE.pack_into(head, end_of_payload - OFFSET_FROM_END, offset)


@functools.cache
def _payload_head(lib: str, dtype: str) -> bytes:
    return bytes(b"\x95" + msgpack.packb(lib) + msgpack.packb(dtype))


def describe(value: object) -> str:
    """A value's type and a short repr, for error messages."""
    return f"{type(value).__name__} {reprlib.repr(value)}"


class TensorReader:
    """Builds each tensor ext of one frame into a view of that frame."""

    __slots__ = ("view", "data_start", "writable")

    def __init__(self, view: memoryview, data_start: int) -> None:
        self.view = view
        self.data_start = data_start
        self.writable: memoryview | None = None

    def ext_hook(self, code: int, payload: bytes) -> Any:
        """Return the array or tensor an ext stands for; refuse unknown ext types."""
        if code != TENSOR_EXT:
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
        if offset < self.data_start or offset % ALIGN:
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
                          f"got {describe(header)}")
    lib, dtype, shape, offset, nbytes = header
    if type(lib) is not str or lib not in ("np", "pt"):
        raise DecodeError(f"tensor header has unknown lib {describe(lib)}")
    if type(dtype) is not str or dtype not in (_NP_DTYPES if lib == "np" else _PT_ITEMSIZE):
        raise DecodeError(f"tensor header has unknown {lib} dtype {describe(dtype)}")
    if not _is_shape(shape):
        raise DecodeError(f"tensor header has bad shape {describe(shape)}")
    for name, value in (("offset", offset), ("nbytes", nbytes)):
        if type(value) is not int or value < 0:
            raise DecodeError(f"tensor header has bad {name} {describe(value)}")
    return lib, dtype, tuple(shape), offset, nbytes


def _is_shape(shape: object) -> bool:
    if type(shape) is not list or len(shape) > _MAX_NDIM:
        return False
    return all(type(d) is int and d >= 0 for d in shape)
