"""The join secret of a plain-TCP run: the controller makes or takes one and writes it to a
file readable by its user only; nodes and ``status`` read it from their ``--secret-file``
or ``PEERFLOW_SECRET``, never from the command line, which ``ps`` shows to every user."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import typer

from ._errors import CliInputError

SECRET_ENV = "PEERFLOW_SECRET"


@contextlib.contextmanager
def new_secret(path: Path | None, tls: Path | None) -> Iterator[str | None]:
    """The controller's join secret (None with TLS): ``PEERFLOW_SECRET`` or a fresh one,
    written to ``path`` (else to a private file of its own) for as long as the run
    lasts: a stale file from an earlier run cannot mislead a node."""
    given = os.environ.get(SECRET_ENV, "").strip()
    if tls is not None or (given and path is None):
        yield None if tls is not None else given
        return
    secret = given or secrets.token_urlsafe(32)
    with contextlib.ExitStack() as stack:
        if path is None:
            path = Path(stack.enter_context(tempfile.TemporaryDirectory(
                prefix="peerflow-"))) / "secret"
        write_private(path, secret + "\n")
        stack.callback(path.unlink, missing_ok=True)
        typer.echo(f"join secret written to {path} (give nodes and status "
                   f"--secret-file {path})", err=True)
        yield secret


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by this user only; readers see all of it or none."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            os.fchmod(out.fileno(), 0o600)
            out.write(text)
        os.replace(partial, path)
    except OSError as exc:
        raise CliInputError(f"cannot write --secret-file {str(path)!r}: {exc}") from exc


def read_secret(path: Path | None, tls: Path | None, wait: float = 0.0) -> str | None:
    """A node's or admin's join secret (None with TLS): from ``path``, waiting up to
    ``wait`` seconds for the controller to write it, else from ``PEERFLOW_SECRET``."""
    if tls is not None:
        return None
    deadline = time.monotonic() + wait
    while path is not None and not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)  # the controller may be starting beside us
    try:
        secret = (path.read_text() if path is not None else os.environ.get(SECRET_ENV, ""))
    except OSError as exc:
        raise CliInputError(f"cannot read --secret-file {str(path)!r}: {exc}") from exc
    if not secret.strip():
        raise CliInputError("plain TCP needs the run's join secret: give --secret-file (the "
                            f"file the controller wrote) or set {SECRET_ENV}")
    return secret.strip()
