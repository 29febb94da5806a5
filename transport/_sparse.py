"""Compressed tensors in a frame: sparse (indices and values) and quantized (levels).

A compressor's output travels compactly, never as the dense tensor it stands for:

- ``SparseTensor`` (ext type 2): ``[shape, lib, dtype, values, index_dtype, indices]``,
  the kept values' raw bytes and their flat indices in the smallest unsigned type that
  holds the tensor's size (uint16 up to 65,536 entries, else uint32 or uint64).
- ``QuantizedTensor`` (ext type 3): ``[shape, lib, dtype, norm, s, bits, magnitudes,
  signs]``, QSGD's signed levels in [-s, s] as ``bits = ceil(log2(s + 1))``-bit
  magnitudes and one sign bit per entry, packed little-endian bit order, beside the
  norm's raw bytes.

The data sits inside the ext payload as msgpack bin (compressed payloads are small,
so the zero-copy offsets of dense tensors would not pay). Decoding checks every field
and copies out, building torch tensors for "pt" and numpy arrays for "np".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import msgpack
import numpy as np

from ._tensors import describe, tensor_parts
from .abc import DecodeError

SPARSE_EXT: Final = 2
QUANTIZED_EXT: Final = 3
_INDEX_TYPES: Final = (("uint16", 1 << 16), ("uint32", 1 << 32), ("uint64", 1 << 64))
_DTYPES: Final = frozenset({"float16", "bfloat16", "float32", "float64"})
_MAX_NDIM: Final = 32
_MAX_LEVELS: Final = 1 << 15


@dataclass(frozen=True, slots=True)
class SparseTensor:
    """A tensor of ``shape`` that is zero except at flat ``indices``, where it is ``values``.

    Attributes:
        shape: the dense tensor's shape.
        indices: 1-D integer tensor or array of flat (row-major) positions.
        values: 1-D tensor or array of the values there, in the dense tensor's dtype.
    """

    shape: tuple[int, ...]
    indices: Any
    values: Any


@dataclass(frozen=True, slots=True)
class QuantizedTensor:
    """A QSGD-quantized tensor: entry k is ``norm * levels[k] / s``.

    Attributes:
        shape: the dense tensor's shape.
        norm: 0-d tensor or array (the scale), in the dense tensor's dtype.
        levels: 1-D integer tensor or array of signed levels in [-s, s].
        s: the number of levels.
    """

    shape: tuple[int, ...]
    norm: Any
    levels: Any
    s: int


def level_bits(s: int) -> int:
    """Bits of a level's magnitude in [0, s]."""
    return max(1, math.ceil(math.log2(s + 1)))


def compact_ext(obj: object) -> msgpack.ExtType | None:
    """The ext of a compressed tensor; None for anything else.

    Raises:
        TypeError: a field that cannot be carried (dtype, layout).
    """
    if type(obj) is SparseTensor:
        return _sparse_ext(obj)
    if type(obj) is QuantizedTensor:
        return _quantized_ext(obj)
    return None


def _raw(value: Any, what: str) -> tuple[str, str, np.ndarray]:
    parts = tensor_parts(value)
    if parts is None:
        raise TypeError(f"compressed tensor {what} must be a tensor or array, got "
                        f"{describe(value)}")
    lib, dtype, _, data = parts
    return lib, dtype, np.frombuffer(data, dtype=np.uint8)


def _floats(value: Any, what: str) -> tuple[str, str, np.ndarray]:
    lib, dtype, data = _raw(value, what)
    if dtype not in _DTYPES or (lib, dtype) == ("np", "bfloat16"):
        raise TypeError(f"compressed tensor {what} must be floating point, got {lib} {dtype}")
    return lib, dtype, data


def _sparse_ext(obj: SparseTensor) -> msgpack.ExtType:
    lib, dtype, values = _floats(obj.values, "values")
    size = math.prod(obj.shape)
    index_type = next(name for name, bound in _INDEX_TYPES if size <= bound)
    indices = np.asarray(_as_numpy(obj.indices)).reshape(-1)
    wire = indices.astype(np.dtype(index_type).newbyteorder("<"))
    payload = msgpack.packb([list(obj.shape), lib, dtype, values.tobytes(), index_type,
                             wire.tobytes()])
    return msgpack.ExtType(SPARSE_EXT, payload)


def _quantized_ext(obj: QuantizedTensor) -> msgpack.ExtType:
    lib, dtype, norm = _floats(obj.norm, "norm")
    levels = np.asarray(_as_numpy(obj.levels)).astype(np.int64).reshape(-1)
    bits = level_bits(obj.s)
    magnitudes = _pack(np.abs(levels), bits)
    signs = np.packbits(levels < 0, bitorder="little").tobytes()
    payload = msgpack.packb([list(obj.shape), lib, dtype, norm.tobytes(), obj.s, bits,
                             magnitudes, signs])
    return msgpack.ExtType(QUANTIZED_EXT, payload)


def _as_numpy(value: Any) -> Any:
    return value.detach().cpu().numpy() if hasattr(value, "detach") else value


def _pack(values: np.ndarray, bits: int) -> bytes:
    planes = (values[:, None] >> np.arange(bits)) & 1
    return np.packbits(planes.astype(np.uint8), bitorder="little").tobytes()


def _unpack(data: bytes, bits: int, count: int) -> np.ndarray:
    flat = np.unpackbits(np.frombuffer(data, np.uint8), count=count * bits, bitorder="little")
    return (flat.reshape(count, bits).astype(np.int64) << np.arange(bits)).sum(axis=1)


def decode_compact(code: int, payload: bytes) -> SparseTensor | QuantizedTensor:
    """The compressed tensor an ext of type 2 or 3 stands for.

    Raises:
        DecodeError: an unknown ext type, or a malformed payload (the problem named).
    """
    if code not in (SPARSE_EXT, QUANTIZED_EXT):
        raise DecodeError(f"unknown ext type code {code}")
    try:
        fields = msgpack.unpackb(payload, raw=False)
    except (ValueError, TypeError, OverflowError, msgpack.UnpackException) as exc:
        raise DecodeError(f"compressed tensor header is not valid msgpack: {exc}") from exc
    try:
        if code == SPARSE_EXT:
            return _sparse(*_fields(fields, 6, "sparse"))
        return _quantized(*_fields(fields, 8, "quantized"))
    except (ValueError, TypeError, OverflowError, MemoryError) as exc:
        raise DecodeError(f"cannot build compressed tensor: {exc}") from exc


def _fields(fields: Any, count: int, kind: str) -> list[Any]:
    if type(fields) is not list or len(fields) != count:
        raise DecodeError(f"{kind} tensor expected a list of {count} fields, got "
                          f"{describe(fields)}")
    shape, lib, dtype = fields[:3]
    if type(shape) is not list or len(shape) > _MAX_NDIM or \
            not all(type(d) is int and d >= 0 for d in shape):
        raise DecodeError(f"{kind} tensor has bad shape {describe(shape)}")
    if lib not in ("np", "pt") or dtype not in _DTYPES or (lib, dtype) == ("np", "bfloat16"):
        raise DecodeError(f"{kind} tensor has unknown lib/dtype {lib!r}/{dtype!r}")
    return [tuple(shape), *fields[1:]]


def _sparse(shape: tuple[int, ...], lib: str, dtype: str, values: Any, index_type: Any,
            indices: Any) -> SparseTensor:
    if index_type not in {name for name, _ in _INDEX_TYPES} or \
            type(values) is not bytes or type(indices) is not bytes:
        raise DecodeError(f"sparse tensor has bad index type {describe(index_type)} or data")
    index = np.frombuffer(indices, np.dtype(index_type).newbyteorder("<")).astype(np.int64)
    kept = _tensor(lib, dtype, values)
    size = math.prod(shape)
    if len(index) != kept.shape[0] or (len(index) and int(index.max()) >= size):
        raise DecodeError(f"sparse tensor has {len(index)} indices for {kept.shape[0]} values "
                          f"or an index past its {size} entries")
    return SparseTensor(shape, _like(lib, index), kept)


def _quantized(shape: tuple[int, ...], lib: str, dtype: str, norm: Any, s: Any, bits: Any,
               magnitudes: Any, signs: Any) -> QuantizedTensor:
    if type(s) is not int or not 1 <= s <= _MAX_LEVELS or bits != level_bits(s):
        raise DecodeError(f"quantized tensor has bad levels: s={describe(s)} with "
                          f"{describe(bits)} bits per level")
    if not all(type(b) is bytes for b in (norm, magnitudes, signs)):
        raise DecodeError("quantized tensor data must be bin")
    count = math.prod(shape)
    if len(magnitudes) != -(-count * bits // 8) or len(signs) != -(-count // 8):
        raise DecodeError(f"quantized tensor data does not match its {count} entries")
    levels = _unpack(magnitudes, bits, count)
    if levels.size and int(levels.max()) > s:
        raise DecodeError(f"quantized tensor has a level over s={s}")
    negative = np.unpackbits(np.frombuffer(signs, np.uint8), count=count, bitorder="little")
    levels = np.where(negative.astype(bool), -levels, levels)
    scale = _tensor(lib, dtype, norm)
    if scale.shape != (1,):
        raise DecodeError(f"quantized tensor norm has {scale.shape[0]} entries, expected 1")
    return QuantizedTensor(shape, scale.reshape(()), _like(lib, levels), s)


def _tensor(lib: str, dtype: str, data: bytes) -> Any:
    """A 1-D copy of raw little-endian ``data`` of ``dtype``."""
    if lib == "np":
        return np.frombuffer(data, np.dtype(dtype).newbyteorder("<")).copy()
    import torch

    if not data:
        return torch.empty(0, dtype=getattr(torch, dtype))
    return torch.frombuffer(bytearray(data), dtype=getattr(torch, dtype))


def _like(lib: str, array: np.ndarray) -> Any:
    if lib == "np":
        return array
    import torch

    return torch.from_numpy(np.ascontiguousarray(array))
