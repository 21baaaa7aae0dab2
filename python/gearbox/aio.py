# SPDX-License-Identifier: MIT
"""The asyncio client: many requests in flight on one connection.

::

    import asyncio, gearbox.aio

    async def main(images):
        async with await gearbox.aio.connect() as gb:
            s = await gb.open_session(deadline_us=2000)
            results = await asyncio.gather(*(s.infer(x) for x in images))
            print([r.label for r in results])

A reader task takes every frame off the socket and hands each reply to the
request that waits for it (by id) and each event to ``events()``. At most
``max_in_flight`` INFERs (default 32, the daemon's limit per connection)
are sent at once; the others wait their turn in the client instead of
being refused with busy."""
import asyncio
import json
import time

from . import protocol as P
from .client import budget_json, connect_error, socket_path
from .errors import ConnectError, GearboxError, InfeasibleError, ProtocolError, from_reply
from .images import to_input
from .results import Event, Model, Pareto, Result


class AsyncClient:
    """A connection to gearboxd for asyncio code (see the module's help)."""

    def __init__(self, reader, writer, path, max_in_flight=P.MAX_IN_FLIGHT):
        self.path = path
        self._reader, self._writer = reader, writer
        self._next_id = 1
        self._waiting = {}             # id -> future of (type, payload)
        self._events = asyncio.Queue()
        self._slots = asyncio.Semaphore(max_in_flight)
        self._return_us = None
        self._models = None
        self._closed = None            # the exception that ended the connection
        self._task = asyncio.get_running_loop().create_task(self._read_loop())

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()

    async def close(self):
        """Close the connection; requests still waiting raise ConnectError."""
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except OSError:
            pass
        self._fail_all(ConnectError("the connection is closed"))

    def _fail_all(self, exc):
        self._closed = exc
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(exc)
        self._waiting.clear()
        self._events.put_nowait(exc)

    async def _read_loop(self):
        frames = P.FrameReader()
        try:
            while True:
                data = await self._reader.read(1 << 16)
                if not data:
                    raise ConnectError("gearboxd closed the connection")
                frames.feed(data)
                while True:
                    try:
                        frame = frames.next()
                    except ValueError as e:
                        raise ProtocolError(f"gearboxd sent a broken frame: {e}") from None
                    if frame is None:
                        break
                    msg_type, msg_id, payload = frame
                    if msg_type == P.EVENT:
                        self._events.put_nowait(Event(_json(payload)))
                    elif msg_type == P.ERROR and msg_id == 0:
                        raise from_reply(_json(payload))
                    else:
                        fut = self._waiting.pop(msg_id, None)
                        if fut is not None and not fut.done():
                            fut.set_result((msg_type, payload))
        except asyncio.CancelledError:
            raise
        except (GearboxError, OSError) as e:
            self._fail_all(e if isinstance(e, GearboxError) else ConnectError(str(e)))

    async def _request(self, msg_type, obj, tail=None):
        if self._closed is not None:
            raise self._closed
        msg_id = self._next_id
        self._next_id = self._next_id + 1 if self._next_id < 0xFFFFFFFF else 1
        fut = asyncio.get_running_loop().create_future()
        self._waiting[msg_id] = fut
        self._writer.write(P.encode_json(msg_type, msg_id, obj, tail))
        await self._writer.drain()
        reply_type, payload = await fut
        reply = _json(payload)
        if reply_type == P.ERROR:
            e = from_reply(reply)
            e.request_id = msg_id
            raise e
        if reply_type != msg_type + 1:
            raise ProtocolError(f"unexpected reply type {reply_type} (wanted {msg_type + 1})")
        return msg_id, reply

    async def call(self, msg_type, request=None):
        """Any request; the reply's JSON."""
        return (await self._request(msg_type, request or {}))[1]

    async def hello(self, client_name="python"):
        return await self.call(P.HELLO, {"client": client_name})

    async def models(self):
        self._models = [Model.from_json(m) for m in (await self.call(P.MODELS))["models"]]
        return list(self._models)

    async def status(self):
        return await self.call(P.STATUS)

    async def stats(self, session=None):
        return await self.call(P.STATS, {} if session is None else {"session": int(session)})

    async def platform(self):
        return await self.call(P.PLATFORM)

    async def pareto(self, model=None, policy=None, all=False):
        req = {k: v for k, v in (("model", model), ("policy", policy)) if v is not None}
        if all:
            req["all"] = True
        return Pareto.from_json(await self.call(P.PARETO, req))

    async def plan(self):
        return await self.call(P.PLAN)

    async def subscribe(self):
        await self.call(P.SUBSCRIBE)

    async def events(self):
        """Events as they come (subscribe() first)."""
        while True:
            ev = await self._events.get()
            if isinstance(ev, Exception):
                raise ev
            yield ev

    async def open_session(self, model=None, deadline_us=0, energy_uj=0, min_accuracy=0.0, policy=None,
                           priority=None, raise_infeasible=False):
        """OPEN, as Client.open_session; returns an AsyncSession."""
        req = budget_json(deadline_us, energy_uj, min_accuracy)
        if model is not None:
            req["model"] = model
        if policy is not None:
            req["policy"] = policy
        if priority is not None:
            req["priority"] = int(priority)
        reply = await self.call(P.OPEN, req)
        if self._models is None:
            await self.models()
        name = reply.get("model") or model
        m = next((m for m in self._models if m.name == name), None) or (self._models[0] if self._models else None)
        return AsyncSession(self, reply["session"], m, reply.get("policy"), req, raise_infeasible)

    async def infer(self, session, x, shape=None, raise_infeasible=False):
        """One INFER; many may be awaited at once."""
        data, pixels = to_input(x, shape)
        async with self._slots:
            req = {"session": int(session)}
            if pixels:
                req["pixels"] = True
            sent = time.monotonic_ns()
            req["sent_ns"] = sent
            if self._return_us is not None:
                req["return_us"] = round(self._return_us, 1)
            msg_id, reply = await self._request(P.INFER, req, data)
        now = time.monotonic_ns()
        done = reply.get("done_ns") or 0
        if 0 < done <= now and now - done < 1_000_000_000:
            self._return_us = (now - done) / 1e3
        r = Result.from_json(msg_id, reply, rtt_us=(now - sent) / 1e3)
        if raise_infeasible and not r.feasible:
            raise InfeasibleError(f"no operating point fits the budget: {r.reason}", r)
        return r


class AsyncSession:
    """A session of an AsyncClient."""

    def __init__(self, client, session_id, model, policy, budget, raise_infeasible=False):
        self.client = client
        self.id = session_id
        self.model = model
        self.policy = policy
        self.budget = dict(budget)
        self.raise_infeasible = raise_infeasible

    async def infer(self, x):
        return await self.client.infer(self.id, x, self.model.input_shape if self.model else None,
                                       self.raise_infeasible)

    async def set_budget(self, deadline_us=None, energy_uj=None, min_accuracy=None):
        b = dict(self.budget)
        for k, v in (("deadline_us", deadline_us), ("energy_uj", energy_uj), ("min_accuracy", min_accuracy)):
            if v is not None:
                b[k] = v
        req = budget_json(b["deadline_us"], b["energy_uj"], b["min_accuracy"])
        req["session"] = self.id
        await self.client.call(P.BUDGET, req)
        self.budget.update({k: req[k] for k in ("deadline_us", "energy_uj", "min_accuracy")})

    async def close(self):
        await self.client.call(P.CLOSE, {"session": self.id})


def _json(payload):
    try:
        return json.loads(payload.split(b"\0", 1)[0])
    except ValueError:
        raise ProtocolError("gearboxd sent bad JSON") from None


async def connect(path=None, max_in_flight=P.MAX_IN_FLIGHT):
    """An AsyncClient on ``path`` (default $GEARBOX_SOCKET, else
    /run/gearbox/gearboxd.sock)."""
    path = socket_path(path)
    try:
        reader, writer = await asyncio.open_unix_connection(path)
    except OSError as e:
        raise connect_error(path, e) from None
    return AsyncClient(reader, writer, path, max_in_flight)
