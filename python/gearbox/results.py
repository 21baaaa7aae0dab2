# SPDX-License-Identifier: MIT
"""What the daemon answers, as Python objects: models, inference results,
operating points, events. Every object keeps the daemon's JSON in ``raw``,
so that fields added by a newer daemon are there before this module knows
them."""
from dataclasses import dataclass, field
from typing import List, Optional


@dataclass
class Model:
    """A hosted model (MODELS). ``accuracy[g - 1]`` is the measured top-1 at g
    active groups (None where the model file gives none)."""

    name: str
    groups: int
    input_shape: tuple
    classes: int
    labels: List[str]
    accuracy: List[Optional[float]]
    path: Optional[str] = None
    placement: Optional[str] = None
    raw: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, d):
        return cls(name=d.get("name"), groups=d.get("groups"), input_shape=tuple(d.get("input_shape") or ()),
                   classes=d.get("classes"), labels=list(d.get("labels") or []),
                   accuracy=list(d.get("accuracy") or []), path=d.get("path"), placement=d.get("placement"), raw=d)

    @property
    def input_size(self):
        """C x H x W: the number of values (or pixels) one input has."""
        n = 1
        for s in self.input_shape:
            n *= s
        return n


@dataclass(frozen=True)
class OperatingPoint:
    """Where and how a request ran (or could run): active groups, placement
    (``cluster0``, ``cluster0:cpu2``, ``opencl:0``), threads, clock (kHz, 0
    when unknown)."""

    groups: int
    placement: str
    threads: int
    freq_khz: int

    def __str__(self):
        clock = f" at {self.freq_khz // 1000} MHz" if self.freq_khz else ""
        return f"g={self.groups} on {self.placement} x{self.threads}{clock}"


@dataclass
class Result:
    """One INFER's RESULT (docs/protocol.md, "RESULT"), plus what the client
    measured: ``rtt_us``, from sending the request to having its reply."""

    request_id: int
    session: int
    class_id: int
    label: str
    scores: List[float]
    groups: int
    placement: str
    threads: int
    freq_khz: int
    policy: str
    latency_us: float
    queue_us: float
    energy_uj: float
    energy_source: str
    deadline_met: bool
    energy_met: bool
    feasible: bool
    reason: Optional[str]
    fallback: Optional[str]
    predicted_us: Optional[float] = None
    predicted_e2e_us: Optional[float] = None
    daemon_us: Optional[float] = None
    e2e_us: Optional[float] = None
    cold: bool = False
    done_ns: Optional[int] = None
    rtt_us: Optional[float] = None
    raw: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, request_id, d, rtt_us=None):
        return cls(request_id=request_id, session=d.get("session"), class_id=d.get("class"), label=d.get("label"),
                   scores=list(d.get("scores") or []), groups=d.get("groups"), placement=d.get("placement"),
                   threads=d.get("threads"), freq_khz=d.get("freq_khz"), policy=d.get("policy"),
                   latency_us=d.get("latency_us"), queue_us=d.get("queue_us"), energy_uj=d.get("energy_uj"),
                   energy_source=d.get("energy_source"), deadline_met=bool(d.get("deadline_met")),
                   energy_met=bool(d.get("energy_met")), feasible=bool(d.get("feasible")), reason=d.get("reason"),
                   fallback=d.get("fallback"), predicted_us=d.get("predicted_us"),
                   predicted_e2e_us=d.get("predicted_e2e_us"), daemon_us=d.get("daemon_us"), e2e_us=d.get("e2e_us"),
                   cold=bool(d.get("cold")), done_ns=d.get("done_ns"), rtt_us=rtt_us, raw=d)

    @property
    def operating_point(self):
        """The point the daemon chose for this request."""
        return OperatingPoint(self.groups, self.placement, self.threads, self.freq_khz or 0)

    def scores_array(self):
        """The scores as a numpy float32 array (numpy needed)."""
        import numpy
        return numpy.asarray(self.scores, dtype=numpy.float32)


@dataclass
class ParetoPoint:
    """A predicted operating point (PARETO): the point, and what it is
    predicted to give."""

    point: OperatingPoint
    accuracy: Optional[float]
    latency_us: float
    energy_uj: float
    power_w: float
    raw: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, d):
        return cls(OperatingPoint(d.get("groups"), d.get("placement"), d.get("threads"), d.get("freq_khz") or 0),
                   d.get("accuracy"), d.get("latency_us"), d.get("energy_uj"), d.get("power_w"), raw=d)


@dataclass
class Pareto:
    """PARETO's reply: ``points`` are the front (or every point, when asked
    with ``all=True``); ``total`` is how many points there are, ``on_front``
    how many of them are on the front."""

    model: str
    policy: str
    points: List[ParetoPoint]
    total: int
    on_front: Optional[int]
    all: bool
    simulated: bool = False
    raw: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, d):
        listed = d.get("all") if isinstance(d.get("all"), list) else d.get("front") or []
        return cls(model=d.get("model"), policy=d.get("policy"), points=[ParetoPoint.from_json(p) for p in listed],
                   total=d.get("points"), on_front=d.get("front_points"), all=isinstance(d.get("all"), list),
                   simulated=bool(d.get("simulated")), raw=d)


class Event(dict):
    """An event (type 30) the daemon sent to a subscriber: the JSON object,
    with its kind (``operating-point``, ``placement-failed``,
    ``budget-violation``) as ``kind``."""

    @property
    def kind(self):
        return self.get("event")
