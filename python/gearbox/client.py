# SPDX-License-Identifier: MIT
"""The synchronous client: one Unix-socket connection to gearboxd."""
import collections
import errno
import json
import os
import select
import socket
import time

from . import protocol as P
from .errors import (BadInputError, ConnectError, GearboxError, InfeasibleError, PermissionError, ProtocolError,
                     from_reply)
from .images import to_input
from .results import Event, Model, Pareto, Result

GROUP_HINT = ("the socket is for root and the 'gearbox' group: join it with "
              "'sudo usermod -aG gearbox $USER', then log in again")


def socket_path(path=None):
    """The socket a client uses: ``path``, else $GEARBOX_SOCKET, else
    /run/gearbox/gearboxd.sock (as gearboxctl and libgearbox)."""
    return path or os.environ.get("GEARBOX_SOCKET") or P.DEFAULT_SOCKET


def connect_error(path, e):
    """The exception for a failed connect(): what to do about it included."""
    if e.errno in (errno.EACCES, errno.EPERM):
        return PermissionError(f"{path}: {os.strerror(e.errno)} ({GROUP_HINT})", "permission-denied")
    hint = " (is gearboxd running?)" if e.errno in (errno.ENOENT, errno.ECONNREFUSED) else ""
    return ConnectError(f"{path}: {e.strerror or e}{hint}")


def budget_json(deadline_us=0, energy_uj=0, min_accuracy=0.0):
    """The budget fields of OPEN and BUDGET (0: none)."""
    for name, v in (("deadline_us", deadline_us), ("energy_uj", energy_uj)):
        if not isinstance(v, int) or v < 0:
            raise BadInputError(f"{name} must be a whole number of microseconds (or microjoules) >= 0, not {v!r}")
    if not 0 <= min_accuracy <= 1:
        raise BadInputError(f"min_accuracy must be in [0, 1], not {min_accuracy!r}")
    return {"deadline_us": deadline_us, "energy_uj": energy_uj, "min_accuracy": float(min_accuracy)}


class Client:
    """A connection to gearboxd.

    ::

        with gearbox.connect() as gb:              # $GEARBOX_SOCKET or the default socket
            print([m.name for m in gb.models()])
            with gb.open_session(deadline_us=2000) as s:
                r = s.infer(image)                 # numpy array, PIL image, PNG/PGM bytes, ...
                print(r.label, r.operating_point, r.latency_us)

    Requests are answered in order of the daemon's choosing (INFERs by
    earliest deadline); every method waits for its own reply and keeps
    what else arrives (replies to submitted INFERs, events) for later.
    A client is not thread-safe: use one per thread (connections are cheap).
    """

    def __init__(self, path=None, client_name=None, timeout=None):
        self.path = socket_path(path)
        self.timeout = timeout
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.connect(self.path)
        except OSError as e:
            self._sock.close()
            raise connect_error(self.path, e) from None
        self._reader = P.FrameReader()
        self._next_id = 1
        self._early = {}                     # id -> (type, payload): replies read while waiting for another
        self._events = collections.deque()   # events read while waiting for a reply
        self._inflight = {}                  # INFER id -> (session, send time ns)
        self._return_us = None               # the last reply's way back (done_ns to here)
        self._models = None
        if client_name:
            self.hello(client_name)

    # --- the connection -----------------------------------------------------
    def close(self):
        """Close the connection (the daemon closes its sessions)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def fileno(self):
        """The socket, for select/poll loops: readable means collect() or
        next_event() has something."""
        return self._sock.fileno()

    def _send(self, msg_type, obj, tail=None):
        if self._sock is None:
            raise ConnectError("the connection is closed")
        msg_id = self._next_id
        self._next_id = self._next_id + 1 if self._next_id < 0xFFFFFFFF else 1
        try:
            self._sock.sendall(P.encode_json(msg_type, msg_id, obj, tail))
        except OSError as e:
            raise ConnectError(f"send: {e.strerror or e}") from None
        return msg_id

    def _read(self, timeout):
        """One frame (type, id, payload), or None when `timeout` (seconds,
        None: forever) passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                frame = self._reader.next()
            except ValueError as e:
                raise ProtocolError(f"gearboxd sent a broken frame: {e}") from None
            if frame is not None:
                return frame
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self._sock], [], [], left)[0]:
                    return None
            try:
                data = self._sock.recv(1 << 16)
            except InterruptedError:
                continue
            except OSError as e:
                raise ConnectError(f"recv: {e.strerror or e}") from None
            if not data:
                raise ConnectError("gearboxd closed the connection")
            self._reader.feed(data)

    @staticmethod
    def _json(payload):
        try:
            return json.loads(payload.split(b"\0", 1)[0])
        except ValueError:
            raise ProtocolError("gearboxd sent bad JSON") from None

    def _keep(self, frame):
        msg_type, msg_id, payload = frame
        if msg_type == P.EVENT:
            self._events.append(Event(self._json(payload)))
        else:
            self._early[msg_id] = (msg_type, payload)

    def _wait(self, msg_id, expect, timeout=None):
        """The reply to msg_id as JSON (or raise the daemon's error)."""
        timeout = self.timeout if timeout is None else timeout
        while msg_id not in self._early:
            frame = self._read(timeout)
            if frame is None:
                raise TimeoutError(f"no reply from gearboxd within {timeout} s")
            if frame[0] == P.ERROR and frame[1] == 0:  # about the connection: bad-frame, limit
                raise from_reply(self._json(frame[2]))
            self._keep(frame)
        msg_type, payload = self._early.pop(msg_id)
        reply = self._json(payload)
        if msg_type == P.ERROR:
            raise from_reply(reply)
        if msg_type != expect:
            raise ProtocolError(f"unexpected reply type {msg_type} (wanted {expect})")
        return reply

    def call(self, msg_type, request=None):
        """Send one request of ``msg_type`` (gearbox.protocol) with a JSON
        object and return the reply's JSON: any message, for what the
        methods below do not cover."""
        return self._wait(self._send(msg_type, request or {}), msg_type + 1)

    # --- requests -------------------------------------------------------------
    def hello(self, client_name="python"):
        """{"server", "version", "protocol"}."""
        return self.call(P.HELLO, {"client": client_name})

    def models(self):
        """The hosted models, as gearbox.Model."""
        self._models = [Model.from_json(m) for m in self.call(P.MODELS)["models"]]
        return list(self._models)

    def status(self):
        """STATUS: the daemon's counters, models, workers, sessions (a dict;
        see docs/protocol.md)."""
        return self.call(P.STATUS)

    def stats(self, session=None):
        """STATS: latency percentiles and hit rates, per session (all the
        sessions this user may see when ``session`` is None)."""
        return self.call(P.STATS, {} if session is None else {"session": int(session)})

    def platform(self):
        """PLATFORM: clusters, placements, OpenCL devices, energy sources."""
        return self.call(P.PLATFORM)

    def pareto(self, model=None, policy=None, all=False):
        """PARETO: the model's operating points as the daemon predicts them
        now, interference included: the Pareto front, or every point."""
        req = {}
        if model is not None:
            req["model"] = model
        if policy is not None:
            req["policy"] = policy
        if all:
            req["all"] = True
        return Pareto.from_json(self.call(P.PARETO, req))

    def plan(self):
        """PLAN: the tenant solver's plan (what each session was given and
        why, what binds; see docs/protocol.md)."""
        return self.call(P.PLAN)

    def reload(self):
        """RELOAD (root and the admin group): re-read gearboxd.conf and the
        policies. Raises GearboxError naming the bad file when one is refused
        (the daemon keeps the running ones)."""
        reply = self.call(P.RELOAD)
        if not reply.get("reloaded"):
            raise GearboxError(f"reload refused: {reply.get('error')}", "reload")
        return reply

    def calibrate(self, model=None):
        """CALIBRATE (root and the admin group): measure the model again."""
        return self._wait(self._send(P.CALIBRATE, {} if model is None else {"model": model}), P.CALIBRATE + 1,
                          timeout=None)

    def model(self, name=None):
        """The hosted model called ``name`` (the only one when None)."""
        models = self._models if self._models is not None else self.models()
        if name is None:
            if len(models) != 1:
                raise BadInputError(f"name a model ({len(models)} are hosted: {', '.join(m.name for m in models)})")
            return models[0]
        for m in models:
            if m.name == name:
                return m
        self._models = None
        for m in self.models():
            if m.name == name:
                return m
        raise from_reply({"code": "no-such-model", "error": f"no model '{name}' (see gearboxctl models)"})

    # --- sessions --------------------------------------------------------------
    def open_session(self, model=None, deadline_us=0, energy_uj=0, min_accuracy=0.0, policy=None, priority=None,
                     raise_infeasible=False):
        """OPEN: a session on ``model`` (the only hosted one when None) with a
        budget: ``deadline_us`` end to end, ``energy_uj`` per inference,
        ``min_accuracy`` (0: none), under ``policy`` (the daemon's default when
        None). With ``raise_infeasible``, results that no operating point could
        fit raise InfeasibleError instead of being returned."""
        req = budget_json(deadline_us, energy_uj, min_accuracy)
        if model is not None:
            req["model"] = model
        if policy is not None:
            req["policy"] = policy
        if priority is not None:
            req["priority"] = int(priority)
        reply = self.call(P.OPEN, req)
        return Session(self, reply["session"], self.model(reply.get("model") or model), reply.get("policy"),
                       req, raise_infeasible)

    def _infer_frame(self, session, x, shape, send=True):
        data, pixels = to_input(x, shape)
        req = {"session": int(session)}
        if pixels:
            req["pixels"] = True
        now = time.monotonic_ns()  # CLOCK_MONOTONIC, the daemon's clock on this host
        req["sent_ns"] = now
        if self._return_us is not None:
            req["return_us"] = round(self._return_us, 1)
        if not send:  # submit_many sends them together
            msg_id = self._next_id
            self._next_id = self._next_id + 1 if self._next_id < 0xFFFFFFFF else 1
            self._inflight[msg_id] = (session, now)
            return msg_id, P.encode_json(P.INFER, msg_id, req, data)
        msg_id = self._send(P.INFER, req, data)
        self._inflight[msg_id] = (session, now)
        return msg_id

    def _result(self, msg_id, reply, raise_infeasible=False):
        session, sent = self._inflight.pop(msg_id, (None, None))
        now = time.monotonic_ns()
        done = reply.get("done_ns") or 0
        if 0 < done <= now and now - done < 1_000_000_000:
            self._return_us = (now - done) / 1e3
        r = Result.from_json(msg_id, reply, rtt_us=(now - sent) / 1e3 if sent else None)
        if raise_infeasible and not r.feasible:
            raise InfeasibleError(f"no operating point fits the budget: {r.reason}", r)
        return r

    def submit(self, session, x, shape=None):
        """Send one INFER without waiting (pipelining); returns its request
        id. Take the results with collect(). At most 32 may be in flight per
        connection (the daemon answers busy past that)."""
        return self._infer_frame(int(session), x, shape)

    def submit_many(self, session, inputs, shape=None):
        """Send several INFERs in one write (the daemon reads them together);
        returns their request ids. Past 32 in flight the daemon answers busy."""
        ids, frames = [], []
        for x in inputs:
            msg_id, frame = self._infer_frame(int(session), x, shape, send=False)
            ids.append(msg_id)
            frames.append(frame)
        try:
            self._sock.sendall(b"".join(frames))
        except OSError as e:
            raise ConnectError(f"send: {e.strerror or e}") from None
        return ids

    @property
    def in_flight(self):
        """How many submitted INFERs have no result collected yet."""
        return len(self._inflight)

    def collect(self, timeout=None):
        """The next result of a submitted INFER, in the order they come back
        (match them by ``request_id``; the daemon may answer out of order), or
        None when ``timeout`` seconds pass first. A refused request raises its
        error, with ``request_id`` set on it."""
        timeout = self.timeout if timeout is None else timeout
        while True:
            for msg_id in list(self._early):
                if msg_id in self._inflight:
                    return self._finish(msg_id)
            if not self._inflight:
                raise GearboxError("collect: no request in flight")
            frame = self._read(timeout)
            if frame is None:
                return None
            self._keep(frame)

    def _finish(self, msg_id, raise_infeasible=False):
        msg_type, payload = self._early.pop(msg_id)
        reply = self._json(payload)
        if msg_type == P.ERROR:
            self._inflight.pop(msg_id, None)
            e = from_reply(reply)
            e.request_id = msg_id
            raise e
        return self._result(msg_id, reply, raise_infeasible)

    def infer(self, session, x, shape=None, raise_infeasible=False):
        """One INFER on ``session``, waiting for its result."""
        msg_id = self._infer_frame(int(session), x, shape)
        try:
            reply = self._wait(msg_id, P.INFER + 1)
        except GearboxError:
            self._inflight.pop(msg_id, None)
            raise
        return self._result(msg_id, reply, raise_infeasible)

    # --- events -----------------------------------------------------------------
    def subscribe(self):
        """SUBSCRIBE: from now on the daemon sends this connection events."""
        self.call(P.SUBSCRIBE)

    def next_event(self, timeout=None):
        """The next event (gearbox.Event), or None after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._events:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            frame = self._read(left)
            if frame is None:
                return None
            self._keep(frame)
        return self._events.popleft()

    def events(self, timeout=None):
        """Iterate over events as they come (subscribe() first); stops when
        none came for ``timeout`` seconds (None: never)."""
        while True:
            ev = self.next_event(timeout)
            if ev is None:
                return
            yield ev

    def watch(self, interval=1.0):
        """Like ``gearboxctl watch``: yields ("status", dict) every
        ``interval`` seconds and ("event", Event) as events come. Open a
        separate connection for it: it subscribes this one."""
        self.subscribe()
        while True:
            yield "status", self.status()
            until = time.monotonic() + interval
            while True:
                left = until - time.monotonic()
                if left <= 0:
                    break
                ev = self.next_event(left)
                if ev is not None:
                    yield "event", ev


class Session:
    """A session: a budget on one model, opened with Client.open_session().

    ``infer`` waits for each result; ``infer_many`` pipelines (``window``
    requests in flight) and yields results in input order; ``submit`` and
    Client.collect() are the parts for an event loop of one's own."""

    def __init__(self, client, session_id, model, policy, budget, raise_infeasible=False):
        self.client = client
        self.id = session_id
        self.model = model
        self.policy = policy
        self.budget = dict(budget)
        self.raise_infeasible = raise_infeasible
        self.closed = False

    def __repr__(self):
        return f"<gearbox.Session {self.id} on {self.model.name}, policy {self.policy}, budget {self.budget}>"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if not self.closed and self.client._sock is not None:
            self.close()

    def infer(self, x):
        """Run one input (see gearbox.images for what it may be); returns a
        gearbox.Result."""
        return self.client.infer(self.id, x, self.model.input_shape, self.raise_infeasible)

    def submit(self, x):
        """Send one input without waiting; Client.collect() returns its result."""
        return self.client.submit(self.id, x, self.model.input_shape)

    def submit_many(self, inputs):
        """Send several inputs in one write; Client.collect() returns their
        results."""
        return self.client.submit_many(self.id, inputs, self.model.input_shape)

    def infer_many(self, inputs, window=8):
        """Pipelined inference: keeps ``window`` requests in flight (at most
        32) and yields one result per input, in the inputs' order."""
        if not 1 <= window <= P.MAX_IN_FLIGHT:
            raise ValueError(f"window must be 1 to {P.MAX_IN_FLIGHT}")
        ids = collections.deque()
        done = {}
        it = iter(inputs)
        exhausted = False
        while True:
            while not exhausted and len(ids) < window:
                try:
                    x = next(it)
                except StopIteration:
                    exhausted = True
                    break
                ids.append(self.submit(x))
            if not ids:
                return
            while ids[0] not in done:
                r = self.client.collect(timeout=None)
                done[r.request_id] = r
            r = done.pop(ids.popleft())
            if self.raise_infeasible and not r.feasible:
                raise InfeasibleError(f"no operating point fits the budget: {r.reason}", r)
            yield r

    def set_budget(self, deadline_us=None, energy_uj=None, min_accuracy=None):
        """BUDGET: change what is not None; requests read from then on have
        the new budget."""
        b = dict(self.budget)
        for k, v in (("deadline_us", deadline_us), ("energy_uj", energy_uj), ("min_accuracy", min_accuracy)):
            if v is not None:
                b[k] = v
        req = budget_json(b["deadline_us"], b["energy_uj"], b["min_accuracy"])
        req["session"] = self.id
        self.client.call(P.BUDGET, req)
        self.budget.update({k: req[k] for k in ("deadline_us", "energy_uj", "min_accuracy")})

    def stats(self):
        """This session's STATS entry: requests, mean g, hit rate, latency
        percentiles."""
        return self.client.stats(self.id)["sessions"][0]

    def close(self):
        """CLOSE the session."""
        self.client.call(P.CLOSE, {"session": self.id})
        self.closed = True


def connect(path=None, client_name=None, timeout=None):
    """A Client on ``path`` (default: $GEARBOX_SOCKET, else
    /run/gearbox/gearboxd.sock). Raises gearbox.PermissionError (join the
    gearbox group) or gearbox.ConnectError."""
    return Client(path, client_name, timeout)
