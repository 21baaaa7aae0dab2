# SPDX-License-Identifier: MIT
"""Exceptions of the gearbox client: one class per protocol error code.

Every exception derives from :class:`GearboxError`, which carries the
daemon's ``code`` (``"busy"``, ``"no-such-model"``, ...) and its message.
Where Python has a matching built-in exception the class derives from it
too, so ``except PermissionError`` or ``except ConnectionError`` work as
usual::

    try:
        session.infer(image)
    except gearbox.BusyError:
        time.sleep(0.01)          # the queue is full: try again later
"""
import builtins


class GearboxError(Exception):
    """Anything gearboxd refused, or a failure talking to it.

    ``code`` is the protocol's error code (see docs/protocol.md, "Errors"),
    or ``None`` for failures on the client side; ``message`` the text."""

    code = None

    def __init__(self, message, code=None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ProtocolError(GearboxError):
    """The conversation itself went wrong: a frame the daemon could not read
    (``bad-frame``: the daemon closes the connection), a message type it does
    not know (``unknown-type``), or a reply this client cannot read."""

    code = "protocol"


class BadFrameError(ProtocolError):
    code = "bad-frame"


class UnknownTypeError(ProtocolError):
    code = "unknown-type"


class BadRequestError(GearboxError, builtins.ValueError):
    """``bad-request``: a field has the wrong type or range, an unknown policy
    (the message lists the ones there are), no model named while several are
    hosted, or past 64 sessions on the connection."""

    code = "bad-request"


class NoSuchModelError(GearboxError, builtins.LookupError):
    code = "no-such-model"


class NoSuchSessionError(GearboxError, builtins.LookupError):
    code = "no-such-session"


class BadInputError(GearboxError, builtins.ValueError):
    """``bad-input``: the tensor has the wrong size, or holds NaN or infinity
    (also raised by the client before sending, when it can tell)."""

    code = "bad-input"


class BusyError(GearboxError):
    """``busy``: admission control refused the request (the model's queue is
    full, or this connection has 32 requests in flight): try again later."""

    code = "busy"


class PermissionError(GearboxError, builtins.PermissionError):
    """``permission-denied``: RELOAD or CALIBRATE by a user outside root and
    the admin group, BUDGET on another user's session; or the socket itself
    refused (join the ``gearbox`` group)."""

    code = "permission-denied"


PermissionDeniedError = PermissionError


class InternalError(GearboxError):
    """``internal``: out of memory, a failed calibration, a request that
    could not run anywhere."""

    code = "internal"


class LimitError(GearboxError):
    """``limit``: over a per-client limit (connections per user, an
    incomplete frame, idle, unread replies); the daemon closes the
    connection after it."""

    code = "limit"


class ConnectError(GearboxError, builtins.ConnectionError):
    """The socket could not be opened (no daemon, wrong path), or the daemon
    closed the connection."""

    code = "connect"


class InfeasibleError(GearboxError):
    """No operating point could fit the session's budget. Only raised by
    sessions opened with ``raise_infeasible=True``; otherwise the result says
    ``feasible = False`` and ``reason``. The result the daemon sent (it ran
    the closest point) is in ``result``."""

    code = "infeasible"

    def __init__(self, message, result=None):
        super().__init__(message)
        self.result = result


_BY_CODE = {c.code: c for c in (BadFrameError, UnknownTypeError, BadRequestError, NoSuchModelError,
                                NoSuchSessionError, BadInputError, BusyError, PermissionError, InternalError,
                                LimitError)}


def from_reply(reply):
    """The exception for an error frame's JSON ({"error", "code"})."""
    code = reply.get("code") if isinstance(reply, dict) else None
    message = reply.get("error") if isinstance(reply, dict) else None
    cls = _BY_CODE.get(code, GearboxError)
    return cls(message or f"gearboxd refused the request ({code})", code)
