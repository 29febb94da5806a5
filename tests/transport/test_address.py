"""The one parser of ``host:port`` addresses."""

from __future__ import annotations

import pytest

from peerflow.transport import join_address, split_address


@pytest.mark.parametrize(("text", "parsed"), [
    ("10.0.0.1:7000", ("10.0.0.1", 7000)),
    ("[::1]:80", ("::1", 80)),
    ("example.org:0", ("example.org", 0)),
    (":5", ("127.0.0.1", 5)),
])
def test_host_and_port_are_split_and_joined_back(text: str, parsed: tuple[str, int]) -> None:
    assert split_address(text) == parsed
    if not text.startswith(":"):
        assert join_address(*parsed) == text


@pytest.mark.parametrize("text", ["nohost", "h:", "h:x", "h:65536", "[::1:80", "::1]:80"])
def test_a_malformed_address_is_refused_naming_the_expected_form(text: str) -> None:
    with pytest.raises(ValueError, match="is not HOST:PORT"):
        split_address(text)


def test_a_required_host_may_not_be_left_out() -> None:
    with pytest.raises(ValueError, match="HOST is missing"):
        split_address(":80", default_host=None)
