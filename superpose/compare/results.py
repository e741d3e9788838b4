"""What a workload run returns: its rows, the fewest-neuron needs, the lower bound they are held against."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from superpose.compare.metrics import Row
from superpose.errors import SuperposeError


@dataclass
class Need:
    """W3: the fewest neurons at which a method had no wrong output on the verifier's inputs."""

    setting: str
    m: int
    m_prime: int
    method: str
    readout: str
    neurons: int | None
    width: int | None
    reached: bool
    largest_tried: int | None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class WorkloadResult:
    """Rows of one or more workloads, the W3 neuron needs, and notes on trimming."""

    rows: list[Row] = field(default_factory=list)
    needs: list[Need] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    bounds: dict[str, dict[str, Any]] = field(default_factory=dict)
    ours_available: bool = True
    seconds: float = 0.0
    seeds: dict[str, Any] | None = None
    """The run's :class:`superpose.seeds.Seeds` record (``{"root": seed}``): every stream again."""

    def extend(self, other: WorkloadResult) -> None:
        self.rows += other.rows
        self.needs += other.needs
        self.notes += other.notes
        self.bounds.update(other.bounds)
        self.ours_available = self.ours_available and other.ours_available
        self.seconds += other.seconds
        self.seeds = self.seeds or other.seeds

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkloadResult:
        """Rebuild a result from :meth:`to_dict` output (e.g. a saved ``compare.json``).

        Example:
            >>> from superpose.peers.universal_and import READOUT_EXACT
            >>> row = Row("W1", "m=30", "naive", READOUT_EXACT, None, 465, 1305)
            >>> WorkloadResult.from_dict(WorkloadResult(rows=[row]).to_dict()).rows[0].neurons
            465
        """
        try:
            return cls(
                rows=[Row(**r) for r in data.get("rows", [])],
                needs=[Need(**n) for n in data.get("w3_neurons_needed", [])],
                notes=list(data.get("notes", [])),
                bounds=dict(data.get("lower_bounds", {})),
                ours_available=bool(data.get("ours_available", True)),
                seconds=float(data.get("seconds", 0.0)),
                seeds=data.get("seeds"),
            )
        except (TypeError, AttributeError) as exc:
            raise SuperposeError(f"not a saved comparison result: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": [r.to_dict() for r in self.rows],
            "w3_neurons_needed": [n.to_dict() for n in self.needs],
            "lower_bounds": self.bounds,
            "notes": self.notes,
            "ours_available": self.ours_available,
            "seconds": self.seconds,
            "seeds": self.seeds,
        }


def lower_bound(m: int, m_prime: int) -> tuple[int, str]:
    """Neurons any network computing every set of ``m_prime`` pairs over ``m`` inputs needs.

    Uses :mod:`superpose.bounds` (total neurons of any layered network, 1-bit parameters) when
    it is installed, else the 1-bit counting bound sqrt(log2 C(C(m, 2), m')).

    Example:
        >>> lower_bound(1000, 1000)[0] > 0
        True
    """
    try:
        from superpose import bounds

        fam = bounds.Family("and2", outputs=m_prime, features=m)
        bits = bounds.bits_lower_bound(fam)
        if hasattr(bounds, "total_neurons_lower_bound"):
            return int(
                bounds.total_neurons_lower_bound(bits)
            ), "superpose.bounds.total_neurons_lower_bound (1-bit parameters)"
        return int(
            bounds.neurons_lower_bound(bits)
        ), "superpose.bounds.neurons_lower_bound (1-bit parameters)"
    except (ImportError, AttributeError, TypeError):
        from superpose._numeric import ln_binom

        bits = float(ln_binom(m * (m - 1) // 2, m_prime)) / math.log(2)
        return int(math.ceil(math.sqrt(bits))), "sqrt(log2 C(C(m,2), m')) (1-bit counting bound)"


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)
