"""Bad command-line input: one clear line on stderr and exit code 2."""

from __future__ import annotations

from peerflow.jobs import JobError


class CliInputError(JobError):
    """The user's input is wrong; the message says what and how to fix it.

    ``main`` reports every ``JobError`` (a wrong job file, network, problem or
    ``--set``) the same way.
    """
