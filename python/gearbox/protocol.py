# SPDX-License-Identifier: MIT
"""The gearbox wire protocol (docs/protocol.md; proto/protocol.h in C).

A frame is a 16-byte header -- the bytes ``GBX1``, then little-endian
version (u16), type (u16), id (u32) and payload length (u32) -- and the
payload: one JSON object, except INFER whose JSON is followed by a NUL
byte and the input tensor. Requests have odd types; the reply is the
request's type + 1, an error is type 0, events type 30. The test suite
checks these numbers against proto/protocol.h."""
import json
import struct

MAGIC = b"GBX1"
VERSION = 1
HEADER_SIZE = 16
MAX_PAYLOAD = 4 << 20
DEFAULT_SOCKET = "/run/gearbox/gearboxd.sock"

ERROR = 0
HELLO = 1
MODELS = 3
OPEN = 5
INFER = 7
BUDGET = 9
STATUS = 11
STATS = 13
SUBSCRIBE = 15
RELOAD = 17
CLOSE = 19
PLATFORM = 21
PARETO = 23
CALIBRATE = 25
PLAN = 27
EVENT = 30

#: How many INFER requests one connection may have in flight (the daemon
#: answers ``busy`` past this).
MAX_IN_FLIGHT = 32

_HEADER = struct.Struct("<4sHHII")


def encode(msg_type, msg_id, payload):
    """One frame as bytes. ``payload`` is bytes (already encoded)."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"request of {len(payload)} bytes is over the {MAX_PAYLOAD}-byte frame limit")
    return _HEADER.pack(MAGIC, VERSION, msg_type, msg_id, len(payload)) + payload


def encode_json(msg_type, msg_id, obj, tail=None):
    """A frame whose payload is ``obj`` as JSON; with ``tail`` (INFER), a NUL
    byte and those bytes follow."""
    body = json.dumps(obj, separators=(",", ":")).encode()
    if tail is not None:
        body += b"\0" + bytes(tail)
    return encode(msg_type, msg_id, body)


def decode_header(header):
    """(type, id, length) of a 16-byte header; ValueError when it is broken."""
    magic, version, msg_type, msg_id, length = _HEADER.unpack(header)
    if magic != MAGIC:
        raise ValueError("bad magic (not a gearbox protocol frame)")
    if version != VERSION:
        raise ValueError(f"unsupported protocol version {version}")
    if length > MAX_PAYLOAD:
        raise ValueError("payload length over the maximum frame size")
    return msg_type, msg_id, length


class FrameReader:
    """Bytes in, whole frames out (no sockets): feed() what arrived, then
    take frames with next() until it returns None."""

    def __init__(self):
        self._buf = bytearray()

    def feed(self, data):
        self._buf += data

    def next(self):
        if len(self._buf) < HEADER_SIZE:
            return None
        msg_type, msg_id, length = decode_header(bytes(self._buf[:HEADER_SIZE]))
        if len(self._buf) < HEADER_SIZE + length:
            return None
        payload = bytes(self._buf[HEADER_SIZE:HEADER_SIZE + length])
        del self._buf[:HEADER_SIZE + length]
        return msg_type, msg_id, payload
