"""Compressed tensors on the wire: compact, exact round trips, malformed payloads refused,
and the bytes each transport counts."""

from __future__ import annotations

import math

import anyio
import msgpack
import numpy as np
import pytest
import torch

from peerflow.transport import (
    DecodeError,
    Envelope,
    MemoryTransport,
    QuantizedTensor,
    SparseTensor,
    TcpTransport,
    decode,
    encode_bytes,
)


def _frame(body: object) -> bytes:
    return encode_bytes(Envelope("tell", "a", "b", "value", body, 0, "run", "m1"))


def _round_trip(body: object) -> object:
    return decode(_frame(body)).body


def _top_k(x: torch.Tensor, k: int) -> SparseTensor:
    indices = x.abs().topk(k).indices
    return SparseTensor(tuple(x.shape), indices, x[indices])


def test_a_sparse_torch_tensor_round_trips_exactly() -> None:
    x = torch.randn(300, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    sent = _top_k(x, 7)
    received = _round_trip({"w": sent})["w"]
    assert type(received) is SparseTensor and received.shape == (300,)
    assert torch.equal(received.indices, sent.indices) and torch.equal(received.values, sent.values)
    assert received.values.dtype == torch.float64


def test_a_quantized_tensor_round_trips_exactly() -> None:
    levels = torch.randint(-16, 17, (7, 9), generator=torch.Generator().manual_seed(1))
    sent = QuantizedTensor((7, 9), torch.tensor(2.5, dtype=torch.float32), levels.reshape(-1), 16)
    received = _round_trip([sent])[0]
    assert type(received) is QuantizedTensor and received.shape == (7, 9) and received.s == 16
    assert torch.equal(received.levels, levels.reshape(-1))
    assert received.norm.dtype == torch.float32 and float(received.norm) == 2.5


def test_numpy_compressed_tensors_round_trip_as_numpy() -> None:
    sent = SparseTensor((4, 5), np.array([3, 19]), np.array([1.5, -2.0], dtype=np.float32))
    received = _round_trip(sent)
    assert isinstance(received.values, np.ndarray) and received.values.dtype == np.float32
    assert received.indices.tolist() == [3, 19] and received.values.tolist() == [1.5, -2.0]


def test_a_top_k_one_percent_payload_is_about_one_percent_of_the_dense_frame() -> None:
    x = torch.randn(100_000, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    dense, sparse = len(_frame({"w": x})), len(_frame({"w": _top_k(x, 1000)}))
    # 1000 values of 8 bytes plus 1000 indices of 4 bytes (uint32 for 100,000 entries)
    assert dense > 800_000
    assert 1000 * 12 < sparse < 1000 * 12 + 300
    assert sparse / dense < 0.01 * (1 + 4 / 8) + 0.001


def test_qsgd_levels_travel_packed_in_bits() -> None:
    levels = torch.randint(-16, 17, (10_000,), generator=torch.Generator().manual_seed(3))
    size = len(_frame(QuantizedTensor((10_000,), torch.tensor(1.0), levels, 16)))
    assert 10_000 * 6 / 8 < size < 10_000 * 6 / 8 + 300  # 5 bits of magnitude, 1 of sign


def _ext(code: int, fields: list[object]) -> bytes:
    body = msgpack.ExtType(code, msgpack.packb(fields))
    envelope = {"kind": "tell", "sender": "a", "recipient": "b", "topic": "value",
                "body": body, "iteration": 0, "run": "r", "id": "m", "reply_to": None, "v": 1}
    packed = msgpack.packb(envelope, use_bin_type=True)
    return len(packed).to_bytes(4, "little") + packed


@pytest.mark.parametrize("code, fields, problem", [
    (2, [[4], "pt", "float64", bytes(8), "uint16", (7).to_bytes(2, "little")],
     "index past its 4 entries"),
    (2, [[4], "pt", "float64", bytes(16), "uint16", bytes(2)], "2 values"),
    (2, [[4], "pt", "int64", bytes(8), "uint16", bytes(2)], "unknown lib/dtype"),
    (2, [[4], "pt", "float64", bytes(8)], "list of 6 fields"),
    (3, [[4], "np", "float32", bytes(4), 4, 2, bytes(1), bytes(1)], "s=int 4 with int 2 bits"),
    (3, [[4], "np", "float32", bytes(4), 3, 2, bytes(5), bytes(1)], "does not match"),
    (3, [[2], "np", "float32", bytes(4), 2, 2, bytes([0xFF]), bytes(1)], "level over s=2"),
    (9, [], "unknown ext type code 9"),
])
def test_a_malformed_compressed_tensor_is_a_decode_error(code: int, fields: list[object],
                                                        problem: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode(_ext(code, fields))
    assert problem in str(info.value)


def test_a_compressed_tensor_of_integers_cannot_be_encoded() -> None:
    with pytest.raises(TypeError, match="floating point"):
        _frame(SparseTensor((3,), np.array([0]), np.array([1], dtype=np.int64)))


@pytest.mark.timeout(30)
async def test_tcp_counts_the_bytes_of_every_frame_it_writes() -> None:
    body = {"w": SparseTensor((1000,), torch.tensor([1, 2]), torch.tensor([0.5, 0.25]))}
    got, received = anyio.Event(), []

    def deliver(envelope: Envelope) -> None:
        received.append(envelope)
        got.set()

    with anyio.fail_after(20):
        async with TcpTransport("a", run_id="run") as a, \
                TcpTransport("b", run_id="run", joiners={"a"}) as b:
            b.register("b", deliver)
            a.add_route("b", str(b.address))
            await a.connect("b")
            a.send_values("a", ["b"], "value", 0, body, "run")
            await got.wait()
    assert a.sent_bytes("a") == len(encode_bytes(received[0])) + 4 and a.sent_bytes("b") == 0


def test_memory_counts_encoded_sizes_only_when_asked() -> None:
    sizes: list[int] = []
    for transport in (MemoryTransport(), MemoryTransport(count_bytes=True),
                      MemoryTransport(strict=True)):
        transport.register("b", lambda envelope: None)
        transport.send_values("a", ["b"], "value", 3, {"x": torch.zeros(100)}, "run")
        sizes.append(transport.sent_bytes("a"))
    assert sizes[0] == 0 and sizes[1] == sizes[2] > 400 + math.ceil(100 / 64)
