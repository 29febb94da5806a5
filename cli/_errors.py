"""Bad command-line input: one clear line on stderr and exit code 2."""

from __future__ import annotations


class CliInputError(Exception):
    """The user's input is wrong; the message says what and how to fix it."""
