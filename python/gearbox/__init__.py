# SPDX-License-Identifier: MIT
"""gearbox: a pure-Python client of gearboxd, the runtime adaptation daemon
for dynamic DNNs on heterogeneous SoCs.

::

    import numpy as np, gearbox

    with gearbox.connect() as gb:                      # $GEARBOX_SOCKET or /run/gearbox/gearboxd.sock
        with gb.open_session(deadline_us=2000) as s:   # a budget: 2 ms end to end
            r = s.infer(np.zeros((1, 28, 28), np.uint8))
            print(r.label, r.operating_point, r.latency_us, r.deadline_met)

It speaks the wire protocol of docs/protocol.md over the Unix socket, with
the standard library only (numpy and PIL are used when given). See
docs/python.md: sessions and budgets, inputs, pipelining (Session.infer_many,
submit/collect, gearbox.aio), status, pareto, events, and the exceptions
(one per protocol error code)."""
from . import protocol
from .client import Client, Session, connect, socket_path
from .errors import (BadFrameError, BadInputError, BadRequestError, BusyError, ConnectError, GearboxError,
                     InfeasibleError, InternalError, LimitError, NoSuchModelError, NoSuchSessionError,
                     PermissionDeniedError, PermissionError, ProtocolError, UnknownTypeError)
from .images import decode_image, to_input
from .results import Event, Model, OperatingPoint, Pareto, ParetoPoint, Result

__version__ = "0.1.0"

__all__ = [
    "Client", "Session", "connect", "socket_path", "protocol", "decode_image", "to_input",
    "Event", "Model", "OperatingPoint", "Pareto", "ParetoPoint", "Result",
    "GearboxError", "ProtocolError", "BadFrameError", "UnknownTypeError", "BadRequestError", "NoSuchModelError",
    "NoSuchSessionError", "BadInputError", "BusyError", "PermissionError", "PermissionDeniedError", "InternalError",
    "LimitError", "ConnectError", "InfeasibleError",
]
