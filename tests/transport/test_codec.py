"""The envelope codec: bit-exact round trips, zero-copy views, named decode errors."""

from __future__ import annotations

import contextlib
import re
import struct
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import msgpack
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from peerflow.transport import KINDS, DecodeError, Envelope
from peerflow.transport._codec import (
    DEFAULT_MAX_FRAME,
    decode,
    encode,
    encode_bytes,
    frame_size,
)

FIELDS = ("kind", "sender", "recipient", "topic", "body", "iteration", "run", "id",
          "reply_to", "v")  # the wire's order: the Envelope's  # fmt: skip


def envelope(body: Any = None, **overrides: Any) -> Envelope:
    fields: dict[str, Any] = {"kind": "tell", "sender": "a", "recipient": "b", "topic": "value",
                              "iteration": 3, "run": "run-1", "id": "m-1"}  # fmt: skip
    return Envelope(body=body, **{**fields, **overrides})


def round_trip(body: Any) -> Any:
    return decode(encode_bytes(envelope(body))).body


def torch_bytes(t: torch.Tensor) -> bytes:
    return t.detach().resolve_conj().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def assert_same(expected: Any, actual: Any) -> None:
    """Assert actual is what expected becomes after a round trip, bit for bit."""
    if isinstance(expected, np.ndarray | np.generic):
        want = np.asarray(expected)
        little = want.dtype.newbyteorder("<")
        assert type(actual) is np.ndarray
        assert (actual.dtype, actual.shape) == (little, want.shape)
        assert actual.tobytes() == want.astype(little).tobytes()
    elif isinstance(expected, torch.Tensor):
        assert type(actual) is torch.Tensor
        assert (actual.dtype, actual.shape) == (expected.dtype, expected.shape)
        assert torch_bytes(actual) == torch_bytes(expected)
    elif isinstance(expected, dict):
        assert type(actual) is dict and list(actual) == list(expected)
        for key, value in expected.items():
            assert_same(value, actual[key])
    elif isinstance(expected, list | tuple):
        assert type(actual) is list and len(actual) == len(expected)
        for want, got in zip(expected, actual, strict=True):
            assert_same(want, got)
    elif type(expected) is float:
        assert type(actual) is float and struct.pack("<d", actual) == struct.pack("<d", expected)
    else:
        assert type(actual) is type(expected) and actual == expected


# ------------------------------------------------------------------ round trips

NUMERIC_DTYPES = (
    hnp.boolean_dtypes()
    | hnp.integer_dtypes(endianness="?")
    | hnp.unsigned_integer_dtypes(endianness="?")
    | hnp.floating_dtypes(endianness="?", sizes=(16, 32, 64))
    | hnp.complex_number_dtypes(endianness="?", sizes=(64, 128))
)
ARRAYS = hnp.arrays(NUMERIC_DTYPES, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0,
                                                     max_side=5))  # fmt: skip
SCALARS = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats()
    | st.text(max_size=20) | st.binary(max_size=20)
)  # fmt: skip
BODIES = st.recursive(
    SCALARS | ARRAYS,
    lambda children: st.lists(children, max_size=4)
    | st.tuples(children, children)
    | st.dictionaries(st.text(max_size=5) | st.integers(-(2**63), 2**63 - 1), children,
                      max_size=4),
    max_leaves=12,
)  # fmt: skip
ENVELOPES = st.builds(
    Envelope,
    kind=st.sampled_from(sorted(KINDS)), sender=st.text(max_size=10),
    recipient=st.text(max_size=10), topic=st.text(max_size=10), body=BODIES,
    iteration=st.none() | st.integers(-(2**63), 2**64 - 1), run=st.text(max_size=10),
    id=st.text(max_size=10), reply_to=st.none() | st.text(max_size=10),
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ENVELOPES)
def test_envelopes_with_nested_bodies_round_trip_bit_exactly(sent: Envelope) -> None:
    got = decode(encode_bytes(sent))
    for name in FIELDS:
        assert_same(getattr(sent, name), getattr(got, name))


@settings(max_examples=300, deadline=None)
@given(ENVELOPES, SCALARS)
def test_a_plain_body_frame_is_the_same_bytes_whichever_packer_makes_it(sent: Envelope,
                                                                       body: Any) -> None:
    sent.body = body  # plain bodies take msgspec's packer; the wire must not tell
    packed = msgpack.packb({name: getattr(sent, name) for name in FIELDS}, use_bin_type=True)
    assert encode_bytes(sent) == raw_frame(packed)  # no padding: no tensors follow


@settings(max_examples=300, deadline=None)
@given(ARRAYS)
def test_numpy_arrays_of_every_numeric_dtype_round_trip_bit_exactly(array: np.ndarray) -> None:
    assert_same(array, round_trip(array))


def test_float16_arrays_round_trip_bit_exactly() -> None:
    array = np.arange(1 << 16, dtype=np.uint16).view(np.float16)  # every bit pattern
    assert_same(array, round_trip(array))


def test_nan_payloads_infinities_and_negative_zero_survive_as_python_floats() -> None:
    bits = (0x7FF8000000000001, 0xFFF0000000000123, 0x8000000000000000, 0x7FF0000000000000)
    values = [struct.unpack("<d", struct.pack("<Q", b))[0] for b in bits]
    assert_same(values, round_trip(values))


TORCH_DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int8,
                torch.int16, torch.int32, torch.int64, torch.uint8, torch.uint16, torch.uint32,
                torch.uint64, torch.bool, torch.complex64, torch.complex128, torch.float8_e4m3fn,
                torch.float8_e5m2]  # fmt: skip


@pytest.mark.parametrize("dtype", TORCH_DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(), (0,), (3, 4), (2, 0, 3), (1, 1, 5)], ids=str)
def test_torch_tensors_round_trip_with_their_dtype(dtype: torch.dtype, shape: tuple) -> None:
    raw = torch.randint(0, 256, (*shape, torch.empty((), dtype=dtype).element_size()),
                        dtype=torch.uint8)  # fmt: skip
    tensor = raw.view(dtype).reshape(shape) if dtype is not torch.bool else raw[..., 0] > 127
    assert_same(tensor, round_trip(tensor))


def test_numpy_scalars_come_back_as_zero_dimensional_arrays_with_their_dtype() -> None:
    scalars = [np.float32(1.5), np.float64(2.5), np.float16(-0.0), np.int64(-3), np.uint8(7),
               np.bool_(True), np.complex128(1 + 2j)]  # fmt: skip
    got = round_trip(scalars)
    for scalar, array in zip(scalars, got, strict=True):
        assert array.shape == () and array.dtype == scalar.dtype and array[()] == scalar


@pytest.mark.parametrize(
    "make",
    [lambda a: a.T, lambda a: a[:, ::2], lambda a: a[::-1, 1:], lambda a: a[1, ::3]],
    ids=["transposed", "strided", "reversed", "row-slice"],
)
def test_non_contiguous_numpy_inputs_round_trip(make: Callable[[Any], Any]) -> None:
    view = make(np.arange(42, dtype=np.float32).reshape(6, 7))
    assert not view.flags.c_contiguous
    assert_same(view, round_trip(view))


@pytest.mark.parametrize(
    "make",
    [lambda t: t.T, lambda t: t[:, ::2], lambda t: t[1:, 2:].T, lambda t: t[1, ::3]],
    ids=["transposed", "strided", "sliced-transposed", "row-slice"],
)
def test_non_contiguous_torch_inputs_round_trip(make: Callable[[Any], Any]) -> None:
    view = make(torch.arange(42, dtype=torch.bfloat16).reshape(6, 7))
    assert not view.is_contiguous()
    assert_same(view, round_trip(view))


def test_lazily_conjugated_and_negated_torch_tensors_round_trip_resolved() -> None:
    base = torch.tensor([1 + 2j, 3 - 4j], dtype=torch.complex64)
    for lazy in (base.conj(), base.conj().imag, torch._neg_view(base)):  # noqa: SLF001
        assert_same(lazy.resolve_conj().resolve_neg(), round_trip(lazy))


def test_big_endian_numpy_arrays_come_back_little_endian_with_the_same_values() -> None:
    array = np.array([[1.5, -2.25], [3e300, np.nan]], dtype=">f8")
    got = round_trip(array)
    assert got.dtype == np.dtype("<f8")
    assert got.tobytes() == array.astype("<f8").tobytes()
    assert_same(np.array([1, -2], dtype=">i2"), round_trip(np.array([1, -2], dtype=">i2")))


def test_python_floats_stay_float_and_ints_stay_int() -> None:
    body = {"f": 1.0, "i": 1, "big": 2**64 - 1, "neg": -(2**63), "b": True, "n": None,
            "bytes": b"\x00\xff", "s": "é", "t": (1, 2.0)}  # fmt: skip
    got = round_trip(body)
    assert_same({**body, "t": [1, 2.0]}, got)
    assert type(got["f"]) is float and type(got["i"]) is int and type(got["b"]) is bool


def test_tuple_keys_arrive_as_tuples_though_tuple_values_arrive_as_lists() -> None:
    got = round_trip({(1, "a"): (2, 3), "x": {(4,): None}})
    assert got == {(1, "a"): [2, 3], "x": {(4,): None}}


def test_tensors_requiring_grad_and_parameters_are_detached() -> None:
    param = torch.nn.Parameter(torch.ones(2, 3))
    got = round_trip([param, param * 2])
    assert all(type(t) is torch.Tensor and not t.requires_grad for t in got)
    assert_same([torch.ones(2, 3), torch.full((2, 3), 2.0)], got)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_tensors_are_moved_to_the_cpu() -> None:  # pragma: no cover
    tensor = torch.arange(6.0, device="cuda")
    assert_same(tensor.cpu(), round_trip(tensor))


@pytest.mark.parametrize("dtype", ["O", "<U3", "S4", "V4", "M8[s]", "m8[s]"])
def test_numpy_arrays_of_non_numeric_dtypes_are_refused_naming_the_dtype(dtype: str) -> None:
    array = np.zeros(2, dtype=dtype)
    with pytest.raises(TypeError, match=re.escape(f"dtype {array.dtype} ('{array.dtype.str}')")):
        encode(envelope(array))


def test_objects_msgpack_cannot_carry_are_refused() -> None:
    with pytest.raises(TypeError, match="set"):
        encode(envelope({1, 2}))
    with pytest.raises(OverflowError):
        encode(envelope(2**64))


def test_importing_and_using_the_codec_without_torch_tensors_does_not_import_torch() -> None:
    code = ("import sys, numpy as np; import peerflow.transport as t; "
            "e = t.Envelope('tell', 'a', 'b', 'x', body={'x': np.ones(3)}); "
            "t.decode(t.encode_bytes(e)); assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# ------------------------------------------------------------------ layout and views


def test_the_frame_follows_the_documented_layout() -> None:
    array = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    frame = encode_bytes(envelope({"x": array, "t": torch.tensor([1, 2], dtype=torch.int16)}))
    (map_len,) = struct.unpack_from("<I", frame)
    fields = msgpack.unpackb(frame[4 : 4 + map_len], ext_hook=lambda code, data:
                             (code, msgpack.unpackb(data)))  # fmt: skip
    assert list(fields) == list(FIELDS)
    (code, (lib, dtype, shape, offset, nbytes)) = fields["body"]["x"]
    assert (code, lib, dtype, shape, nbytes) == (1, "np", "float32", [3], 12)
    assert offset == -(-(4 + map_len) // 64) * 64 and frame[offset : offset + 12] == array.tobytes()
    (_, (lib, dtype, shape, offset2, nbytes)) = fields["body"]["t"]
    assert (lib, dtype, shape, nbytes, offset2) == ("pt", "int16", [2], 4, offset + 64)
    assert frame[4 + map_len : offset] == bytes(offset - 4 - map_len)
    assert len(frame) % 64 == 0


def test_encode_hands_out_the_tensor_memory_without_copying_it() -> None:
    array = np.arange(1000, dtype=np.float64)
    tensor = torch.arange(100, dtype=torch.float32)
    buffers = encode(envelope([array, tensor]))
    assert frame_size(buffers) == len(b"".join(buffers))
    views = [np.frombuffer(b, dtype=np.uint8) for b in buffers]
    assert any(np.shares_memory(v, array) for v in views)
    assert any(np.shares_memory(v, tensor.numpy()) for v in views)


def test_decoded_numpy_arrays_are_views_of_the_frame() -> None:
    frame = bytearray(encode_bytes(envelope(np.arange(10, dtype=np.int32))))
    array = decode(frame).body
    assert np.shares_memory(array, np.frombuffer(frame, dtype=np.uint8))
    assert array.flags.writeable
    read_only = decode(bytes(frame)).body
    assert not read_only.flags.writeable and np.array_equal(array, read_only)


def test_decoded_torch_tensors_are_writable_views_of_a_writable_frame() -> None:
    frame = bytearray(encode_bytes(envelope(torch.zeros(4, dtype=torch.float32))))
    tensor = decode(frame).body
    np.frombuffer(frame, dtype=np.uint8)[-64:-48] = np.frombuffer(
        np.full(4, 7.0, dtype=np.float32).tobytes(), dtype=np.uint8)  # fmt: skip
    assert tensor.tolist() == [7.0] * 4


def test_torch_tensors_from_a_read_only_frame_are_writable_and_warn_nothing() -> None:
    frame = encode_bytes(envelope([torch.ones(3), torch.ones(2, dtype=torch.bfloat16)]))
    first, second = decode(frame).body  # warnings are errors in this suite
    first.add_(1)
    second.mul_(3)
    assert first.tolist() == [2.0] * 3 and second.tolist() == [3.0] * 2


def test_the_default_frame_limit_is_one_gibibyte() -> None:
    assert DEFAULT_MAX_FRAME == 1 << 30


# ------------------------------------------------------------------ decode errors

DATA = 256  # where hand-built frames put tensor data; their maps stay under 252 bytes


def valid_fields(**overrides: Any) -> dict[str, Any]:
    fields = {"v": 1, "kind": "tell", "id": "m", "reply_to": None, "sender": "a",
              "recipient": "b", "topic": "t", "iteration": None, "run": "r", "body": None}
    return {**fields, **overrides}  # fmt: skip


def raw_frame(packed: bytes, tail: bytes = b"", *, pad: bool = False) -> bytes:
    """u32 map length, the map, zeros up to DATA if there is a tail (or pad), the tail."""
    head = struct.pack("<I", len(packed)) + packed
    if not (tail or pad):
        return head
    assert len(head) <= DATA
    return head + bytes(DATA - len(head)) + tail


def frame_of(fields: dict[str, Any], tail: bytes = bytes(64)) -> bytes:
    return raw_frame(msgpack.packb(fields), tail)


def without(name: str) -> dict[str, Any]:
    fields = valid_fields()
    del fields[name]
    return fields


def header(lib: Any = "np", dtype: Any = "float32", shape: Any = (2,), offset: Any = DATA,
           nbytes: Any = 8) -> dict[str, Any]:
    """Valid fields whose body is one tensor ext with the given header."""
    payload = msgpack.packb([lib, dtype, shape, offset, nbytes])
    return valid_fields(body=msgpack.ExtType(1, payload))  # fmt: skip


def ext_body(code: int, payload: bytes) -> dict[str, Any]:
    return valid_fields(body=[msgpack.ExtType(code, payload)])


def raw_body(packed_body: bytes) -> bytes:
    """A packed valid map whose body is the given msgpack bytes."""
    packed = msgpack.packb(valid_fields())
    assert packed.endswith(b"\xa4body\xc0")
    return packed[:-1] + packed_body


ERROR_CASES = {
    "empty frame": (b"", "frame of 0 bytes is shorter than its 4-byte map length"),
    "three-byte frame": (b"\x01\x00\x00", "shorter than its 4-byte map length"),
    "map length past the end": (struct.pack("<I", 100) + b"\x80",
                                "map length 100 runs past the end of the 5-byte frame"),
    "not a map": (raw_frame(msgpack.packb([1, 2])), "frame holds a list, expected a map"),
    "invalid msgpack": (raw_frame(b"\xc1"), "map is not valid msgpack"),
    "truncated map": (raw_frame(msgpack.packb(valid_fields())[:-1]), "not valid msgpack"),
    "stray bytes": (raw_frame(msgpack.packb(valid_fields()) + b"\x00\x00"),
                    "2 stray bytes after the map"),
    "unhashable key": (raw_frame(b"\x81\x91\x01\x01"), "not valid msgpack"),
    "nesting too deep": (raw_frame(b"\x91" * 5000 + b"\xc0"), "not valid msgpack"),
    "bad utf-8": (raw_frame(b"\x81\xa1\xff\x01"), "not valid msgpack"),
    "protocol version": (frame_of(valid_fields(v=2)),
                         "unsupported protocol version 2 (expected 1)"),
    "version as str": (frame_of(valid_fields(v="1")), "field 'v' expected int, got str '1'"),
    "version as bool": (frame_of(valid_fields(v=True)), "field 'v' expected int, got bool"),
    "unknown field": (frame_of(valid_fields(extra=1)), "unknown field 'extra'"),
    "unknown int field": (frame_of(valid_fields(**{"x": 1}) | {7: 1}), "unknown field 'x', 7"),
    "unknown kind": (frame_of(valid_fields(kind="shout")),
                     "field 'kind' expected one of abort, ask, error, heartbeat, panic, reply, "
                     "tell, got str 'shout'"),
    "kind as int": (frame_of(valid_fields(kind=3)), "field 'kind' expected one of"),
    "id as None": (frame_of(valid_fields(id=None)), "field 'id' expected str, got NoneType"),
    "reply_to as int": (frame_of(valid_fields(reply_to=5)),
                        "field 'reply_to' expected str or None, got int 5"),
    "sender as bytes": (frame_of(valid_fields(sender=b"a")),
                        "field 'sender' expected str, got bytes"),
    "recipient as list": (frame_of(valid_fields(recipient=[])),
                          "field 'recipient' expected str, got list"),
    "topic as None": (frame_of(valid_fields(topic=None)), "field 'topic' expected str, got"),
    "run as float": (frame_of(valid_fields(run=1.0)), "field 'run' expected str, got float"),
    "iteration as bool": (frame_of(valid_fields(iteration=True)),
                          "field 'iteration' expected int or None, got bool True"),
    "iteration as float": (frame_of(valid_fields(iteration=3.0)),
                           "field 'iteration' expected int or None, got float 3.0"),
    "unknown ext": (frame_of(ext_body(7, b"x")), "unknown ext type code 7"),
    "negative ext": (raw_frame(raw_body(b"\xd4\xfb\x00")), "unknown ext type code -5"),
    "timestamp ext": (frame_of(valid_fields(body={"t": [msgpack.Timestamp(1, 0)]})),
                      "unknown ext type code -1"),
    "timestamp key": (frame_of(valid_fields(body={msgpack.Timestamp(1, 0): 1})),
                      "unknown ext type code -1"),
    "header not msgpack": (frame_of(ext_body(1, b"\xc1")), "tensor header is not valid msgpack"),
    "header not a list": (frame_of(ext_body(1, msgpack.packb({"a": 1}))),
                          "tensor header expected [lib, dtype, shape, offset, nbytes], got dict"),
    "header too short": (frame_of(ext_body(1, msgpack.packb(["np", "int8", [1], DATA]))),
                         "tensor header expected [lib, dtype, shape, offset, nbytes]"),
    "unknown lib": (frame_of(header(lib="jax")), "tensor header has unknown lib str 'jax'"),
    "unknown np dtype": (frame_of(header(dtype="float99")),
                         "tensor header has unknown np dtype str 'float99'"),
    "bfloat16 for np": (frame_of(header(dtype="bfloat16")), "unknown np dtype str 'bfloat16'"),
    "object for np": (frame_of(header(dtype="object")), "unknown np dtype str 'object'"),
    "unknown pt dtype": (frame_of(header(lib="pt", dtype="complex32")),
                         "unknown pt dtype str 'complex32'"),
    "dtype as int": (frame_of(header(dtype=4)), "unknown np dtype int 4"),
    "shape as str": (frame_of(header(shape="2")), "tensor header has bad shape str '2'"),
    "negative dim": (frame_of(header(shape=[-2])), "bad shape list [-2]"),
    "bool dim": (frame_of(header(shape=[True, 2])), "bad shape list [True, 2]"),
    "too many dims": (frame_of(header(shape=[1] * 33)), "bad shape"),
    "negative offset": (frame_of(header(offset=-64)), "bad offset int -64"),
    "offset as str": (frame_of(header(offset="256")), "bad offset str '256'"),
    "nbytes as float": (frame_of(header(nbytes=8.0)), "bad nbytes float 8.0"),
    "offset inside the map": (frame_of(header(offset=0)), "tensor offset 0 is not a 64-byte "
                              "aligned offset at or after the map end"),
    "unaligned offset": (frame_of(header(offset=DATA + 4)), "tensor offset 260 is not"),
    "data past the end": (frame_of(header(shape=[32], nbytes=128)),
                          "tensor data [256, 384) runs past the end of the 320-byte frame"),
    "nbytes mismatch": (frame_of(header(shape=[3], nbytes=8)),
                        "tensor nbytes 8 does not match shape (3,) of np dtype float32"),
    "pt nbytes mismatch": (frame_of(header(lib="pt", dtype="bfloat16", shape=[3], nbytes=8)),
                           "tensor nbytes 8 does not match shape (3,) of pt dtype bfloat16"),
    "absurd empty np shape": (frame_of(header(shape=[0, 2**62, 2**62], nbytes=0)),
                              "cannot build tensor of shape (0, 4611686018427387904"),
    "absurd empty pt shape": (frame_of(header(lib="pt", shape=[0, 2**62, 2**62], nbytes=0)),
                              "cannot build tensor of shape"),
    "not a byte buffer": ("text", "frame is not a contiguous byte buffer"),
    "non-contiguous view": (memoryview(bytes(64))[::2], "frame is not a contiguous byte buffer"),
}  # fmt: skip


@pytest.mark.parametrize(("frame", "problem"), ERROR_CASES.values(), ids=ERROR_CASES.keys())
def test_every_malformed_frame_raises_a_decode_error_naming_the_problem(
    frame: Any, problem: str
) -> None:
    with pytest.raises(DecodeError, match=re.escape(problem)):
        decode(frame)


@pytest.mark.parametrize("name", FIELDS)
def test_a_missing_field_is_named(name: str) -> None:
    with pytest.raises(DecodeError, match=f"missing field '{name}'"):
        decode(frame_of(without(name)))


def test_a_frame_over_the_size_limit_is_refused_before_it_is_read() -> None:
    frame = encode_bytes(envelope(np.zeros(100)))
    limit = len(frame) - 1
    with pytest.raises(DecodeError, match=f"frame of {len(frame)} bytes is over the limit of "
                                          f"{limit} bytes"):  # fmt: skip
        decode(frame, max_size=limit)
    assert decode(frame, max_size=len(frame)).body.shape == (100,)


def test_a_map_padded_to_64_bytes_without_tensors_decodes_as_earlier_versions_wrote_it() -> None:
    for body in (b"x" * 64, [1, "two"]):  # the msgspec path and the msgpack path
        sent = envelope(body)
        packed = msgpack.packb({name: getattr(sent, name) for name in FIELDS},
                               use_bin_type=True)  # fmt: skip
        assert decode(raw_frame(packed, pad=True)) == sent


def test_hand_built_frames_with_empty_tensors_at_the_frame_end_decode() -> None:
    fields = header(shape=[0, 3], offset=DATA, nbytes=0)
    got = decode(raw_frame(msgpack.packb(fields), pad=True)).body
    assert got.shape == (0, 3) and got.dtype == np.float32


# ------------------------------------------------------------------ fuzzing

FUZZ_SEEDS = [
    encode_bytes(envelope({"x": np.arange(6, dtype=np.float32).reshape(2, 3), "k": [1, 2.5]})),
    encode_bytes(envelope([torch.ones(3, dtype=torch.bfloat16), np.zeros((0, 2)), b"\x00"])),
    encode_bytes(envelope({"nested": [{"a": None, 1: True}], "s": "é"}, reply_to="q")),
    encode_bytes(envelope(torch.arange(10, dtype=torch.int64).reshape(2, 5), iteration=None)),
]
MUTATIONS = st.one_of(
    st.tuples(st.just("truncate"), st.integers(0, 10_000)),
    st.tuples(st.just("set"), st.integers(0, 10_000), st.integers(0, 255)),
    st.tuples(st.just("xor"), st.integers(0, 10_000), st.integers(1, 255)),
    st.tuples(st.just("append"), st.binary(min_size=1, max_size=70)),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.binary(min_size=1, max_size=8)),
)


def mutate(frame: bytes, mutations: list[tuple[Any, ...]]) -> bytearray:
    data = bytearray(frame)
    for op, *args in mutations:
        at = args[0] % (len(data) + 1) if isinstance(args[0], int) else 0
        if op == "truncate":
            del data[at:]
        elif op in ("set", "xor") and at < len(data):
            data[at] = args[1] if op == "set" else data[at] ^ args[1]
        elif op == "append":
            data += args[0]
        elif op == "insert":
            data[at:at] = args[1]
    return data


def decode_or_refuse(frame: bytes | bytearray) -> None:
    with contextlib.suppress(DecodeError):
        decode(frame)


@settings(max_examples=1500, deadline=None)
@given(st.binary(max_size=200) | st.binary(max_size=200).map(
    lambda b: struct.pack("<I", len(b)) + b))  # fmt: skip
def test_random_bytes_never_raise_anything_but_decode_error(frame: bytes) -> None:
    decode_or_refuse(frame)


@settings(max_examples=2500, deadline=None)
@given(st.sampled_from(FUZZ_SEEDS), st.lists(MUTATIONS, min_size=1, max_size=4), st.booleans())
def test_mutated_valid_frames_never_raise_anything_but_decode_error(
    frame: bytes, mutations: list[tuple[Any, ...]], writable: bool
) -> None:
    mutated = mutate(frame, mutations)
    decode_or_refuse(mutated if writable else bytes(mutated))
