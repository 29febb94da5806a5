"""Sans-IO framing: whole, byte by byte, in random chunks, with garbage and lies."""

from __future__ import annotations

import os
import tracemalloc

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from peerflow.transport import DecodeError, Envelope
from peerflow.transport._codec import DEFAULT_MAX_FRAME, decode, encode, frame_size
from peerflow.transport._frames import MAX_FRAME_PREFIX, UNZEROED_FROM, FrameDecoder, frame_prefix


def stream(*bodies: bytes) -> bytes:
    return b"".join(frame_prefix(len(body)) + body for body in bodies)


def feed_in_chunks(decoder: FrameDecoder, data: bytes, cuts: list[int]) -> list[bytearray]:
    frames: list[bytearray] = []
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    for start, end in zip(bounds, bounds[1:], strict=False):
        frames += decoder.feed(data[start:end])
    return frames


def read_in_chunks(decoder: FrameDecoder, data: bytes, cuts: list[int]) -> list[bytearray]:
    """As ``feed_in_chunks``, through ``read_buffer``/``filled`` as a protocol reads."""
    frames: list[bytearray] = []
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    for start, end in zip(bounds, bounds[1:], strict=False):
        while start < end:
            window = decoder.read_buffer()
            count = min(window.nbytes, end - start)
            window[:count] = data[start : start + count]
            frames += decoder.filled(count)
            start += count
    return frames


def test_the_prefix_is_a_little_endian_u32() -> None:
    assert frame_prefix(0x01020304) == b"\x04\x03\x02\x01"
    assert frame_prefix(MAX_FRAME_PREFIX) == b"\xff\xff\xff\xff"
    for size in (-1, MAX_FRAME_PREFIX + 1):
        with pytest.raises(ValueError, match=f"frame size {size}"):
            frame_prefix(size)


def test_a_frame_fed_whole_comes_back_whole() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(stream(b"hello")) == [bytearray(b"hello")]
    assert decoder.buffered == 0


def test_a_frame_fed_byte_by_byte_comes_back_once_complete() -> None:
    decoder = FrameDecoder()
    data = stream(b"hello world")
    got = [decoder.feed(data[i : i + 1]) for i in range(len(data))]
    assert got[:-1] == [[]] * (len(data) - 1)
    assert got[-1] == [bytearray(b"hello world")]
    assert decoder.buffered == 0


def test_several_frames_in_one_feed_all_come_back_in_order() -> None:
    bodies = [b"a", b"", b"bc" * 100, b"\x00" * 7]
    assert FrameDecoder().feed(stream(*bodies)) == bodies


def test_zero_length_frames_are_returned_as_empty_bodies() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(frame_prefix(0)) == [bytearray()]
    assert decoder.feed(frame_prefix(0) * 3) == [bytearray()] * 3


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.binary(max_size=300), min_size=1, max_size=6),
    st.lists(st.integers(0, 10_000), max_size=20),
)
def test_random_chunkings_give_back_the_same_frames(bodies: list[bytes], cuts: list[int]) -> None:
    decoder = FrameDecoder()
    assert feed_in_chunks(decoder, stream(*bodies), cuts) == bodies
    assert decoder.buffered == 0


@pytest.mark.parametrize("garbage", [b"\x05", b"\x05\x00\x00", b"\x0a\x00\x00\x00abc"])
def test_trailing_garbage_stays_buffered_and_is_not_returned(garbage: bytes) -> None:
    decoder = FrameDecoder()
    assert decoder.feed(stream(b"one") + garbage) == [bytearray(b"one")]
    assert decoder.buffered == len(garbage)
    assert decoder.feed(b"") == []


def test_a_buffered_partial_frame_completes_on_a_later_feed() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(stream(b"one") + b"\x05\x00") == [bytearray(b"one")]
    assert decoder.feed(b"\x00\x00abcd") == []
    assert decoder.feed(b"e" + stream(b"two")) == [bytearray(b"abcde"), bytearray(b"two")]


def test_each_frame_is_a_writable_bytearray_of_its_own() -> None:
    frames = FrameDecoder().feed(stream(b"aa", b"bb"))
    assert all(type(f) is bytearray for f in frames)
    frames[0][0] = ord("z")
    assert frames == [bytearray(b"za"), bytearray(b"bb")]


def test_an_oversized_length_prefix_raises_before_allocating_the_body() -> None:
    decoder = FrameDecoder(max_frame=1 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(DecodeError, match=f"frame length {MAX_FRAME_PREFIX} is over the "
                                              f"limit of {1 << 20} bytes"):  # fmt: skip
            decoder.feed(frame_prefix(MAX_FRAME_PREFIX) + b"x" * 100)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 16


def test_an_oversized_prefix_split_across_feeds_is_refused() -> None:
    decoder = FrameDecoder(max_frame=100)
    assert decoder.feed(b"\x65") == []
    with pytest.raises(DecodeError, match="frame length 101 is over the limit of 100 bytes"):
        decoder.feed(b"\x00\x00\x00")


def test_a_frame_exactly_at_the_limit_is_accepted() -> None:
    assert FrameDecoder(max_frame=3).feed(stream(b"abc")) == [bytearray(b"abc")]


def test_a_broken_decoder_stays_broken() -> None:
    decoder = FrameDecoder(max_frame=10)
    with pytest.raises(DecodeError):
        decoder.feed(stream(b"x" * 11))
    for data in (stream(b"ok"), b""):
        with pytest.raises(DecodeError, match="frame decoder is broken: frame length 11"):
            decoder.feed(data)


def test_the_default_limit_is_the_codec_limit() -> None:
    decoder = FrameDecoder()
    with pytest.raises(DecodeError, match=f"limit of {DEFAULT_MAX_FRAME} bytes"):
        decoder.feed(frame_prefix(DEFAULT_MAX_FRAME + 1))


def test_a_16_mib_frame_in_64_kib_chunks_is_held_once() -> None:
    body = np.random.default_rng(0).integers(0, 256, 16 << 20, dtype=np.uint8).tobytes()
    data = stream(body)
    decoder = FrameDecoder()
    tracemalloc.start()
    try:
        chunks = (data[i : i + (1 << 16)] for i in range(0, len(data), 1 << 16))
        frames = [frame for chunk in chunks for frame in decoder.feed(chunk)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [bytes(frame) for frame in frames] == [body]
    assert peak < len(body) + (1 << 20)  # the body buffer and one chunk, not two copies


def test_encoded_envelopes_survive_framing_and_decode_to_writable_views() -> None:
    sent = Envelope("tell", "a", "b", "value", body={"x": np.arange(5.0), "t": torch.ones(3)})
    buffers = encode(sent)
    data = frame_prefix(frame_size(buffers)) + b"".join(buffers)
    (frame,) = feed_in_chunks(FrameDecoder(), data, [7, 100, 101])
    got = decode(frame).body
    got["t"].add_(1)
    got["x"][0] = 9.0
    assert got["t"].tolist() == [2.0] * 3 and got["x"].tolist() == [9.0, 1.0, 2.0, 3.0, 4.0]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.binary(max_size=300), min_size=1, max_size=6),
    st.lists(st.integers(0, 10_000), max_size=20),
    st.integers(1, 64),
)
def test_reads_into_the_decoders_buffers_give_back_the_same_frames(
        bodies: list[bytes], cuts: list[int], read_size: int) -> None:
    decoder = FrameDecoder(read_size=read_size)
    assert read_in_chunks(decoder, stream(*bodies), cuts) == bodies
    assert decoder.buffered == 0


def test_a_read_of_one_whole_frame_gives_a_body_of_its_own() -> None:
    decoder = FrameDecoder()
    (first,) = read_in_chunks(decoder, stream(b"first"), [])
    (second,) = read_in_chunks(decoder, stream(b"other"), [])
    assert type(first) is bytearray and (first, second) == (b"first", b"other")


def test_a_read_of_one_oversized_frame_is_refused_and_breaks_the_decoder() -> None:
    decoder = FrameDecoder(max_frame=10)
    with pytest.raises(DecodeError, match="frame length 11 is over the limit of 10 bytes"):
        read_in_chunks(decoder, stream(b"x" * 11), [])
    with pytest.raises(DecodeError, match="frame decoder is broken: frame length 11"):
        read_in_chunks(decoder, stream(b"ok"), [])


def test_a_body_spanning_reads_is_read_straight_into_its_own_buffer() -> None:
    decoder = FrameDecoder(max_frame=100)
    window = decoder.read_buffer()
    window[:14] = frame_prefix(50) + bytes(range(10))
    assert decoder.filled(14) == []
    window = decoder.read_buffer()
    assert window.nbytes == 40  # the rest of the body, not the read buffer
    window[:30] = bytes(range(10, 40))
    assert decoder.filled(30) == []
    window = decoder.read_buffer()
    assert window.nbytes == 10
    window[:] = bytes(range(40, 50))
    assert decoder.filled(10) == [bytearray(range(50))]
    assert decoder.read_buffer().nbytes == 256 << 10  # between bodies: the read buffer again
    assert decoder.feed(frame_prefix(2) + b"ok") == [bytearray(b"ok")]


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_a_large_frame_declared_and_barely_sent_costs_the_reader_little_memory() -> None:
    decoder = FrameDecoder()
    before = resident_bytes()
    assert decoder.feed(frame_prefix(512 << 20) + b"x" * 100) == []
    window = decoder.read_buffer()
    window[:100] = b"y" * 100
    assert decoder.filled(100) == []
    assert decoder.buffered == 4 + 200
    assert resident_bytes() - before < 16 << 20  # not the 512 MiB declared


@pytest.mark.parametrize("size", [UNZEROED_FROM - 1, UNZEROED_FROM])
def test_bodies_spanning_reads_round_trip_on_either_side_of_the_unzeroed_size(size: int) -> None:
    body = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    frames = read_in_chunks(FrameDecoder(read_size=1 << 16), stream(body, b"next"), [5])
    assert [bytes(frame) for frame in frames] == [body, b"next"]
    frames[0][:3] = b"abc"  # writable, whichever it is
    assert bytes(frames[0][:3]) == b"abc" and len(frames[0]) == size
