"""The actor layer's errors: one small hierarchy, each message naming what went wrong."""

from __future__ import annotations


class ActorError(Exception):
    """Base class of the actor layer's errors."""


class ActorDead(ActorError):
    """The actor stopped while an ask was pending, or the recipient is gone."""


class AskTimeout(ActorError, TimeoutError):
    """No reply came to an ask within its timeout."""


class RemoteError(ActorError):
    """The recipient of an ask failed while handling it; the message is its error."""


class TaskFailed(ActorError):
    """A controller task did not get the responses it needed."""


class SyncTimeout(ActorError, TimeoutError):
    """Not every expected neighbour's value for an iteration arrived in time.

    Attributes:
        missing: the neighbours that never answered.
    """

    def __init__(self, message: str, missing: list[str]) -> None:
        super().__init__(message)
        self.missing = missing


class MailboxBreach(ActorError):
    """A neighbour ran further ahead than the mailbox may buffer."""


class RunAborted(ActorError):
    """The run was aborted by the controller (after some node panicked)."""


class RunStopped(BaseException):
    """Raised in a node's run once it was told to stop (``SyncAlgorithmExecutor.stop``).

    The run unwinds at once, with no answer to the controller, and the actor ends
    quietly: cheaper than cancelling it, which at 10,000 nodes took seconds. A
    ``BaseException``, as cancellation is, so that ``except Exception`` lets it pass.
    """
