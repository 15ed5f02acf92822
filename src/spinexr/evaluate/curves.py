"""Learning curves: a model's validation metrics and training loss per epoch, as its training
run recorded them (never recomputed, never invented), and the best epoch by the trainer's rule.

A :class:`LearningCurve` is built from the CSV files a run writes (readers in
:mod:`spinexr.train.curves`), stored in a pack's card under ``card.learning_curves`` as JSON
(:meth:`LearningCurve.to_dict` / :meth:`LearningCurve.from_dict`), shown as a table in the
model card and drawn by :func:`spinexr.evaluate.plots.plot_learning_curves`. Pure: no I/O.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from spinexr.errors import ConfigError

UNITS = ("images", "windows")
__all__ = ["CurvePoint", "LearningCurve", "RunRow", "UNITS", "curve_from_runs", "improves"]


def improves(value: float | None, loss: float | None, best: float | None,
             best_loss: float | None, *, mode: str, min_delta: float = 0.0) -> bool:
    """Whether an epoch's monitored ``value`` beats the ``best`` so far (the training engine's
    rule, shared so a curve marks the epoch the engine kept): the first epoch always does; a
    non-finite value never does; better by more than ``min_delta``; on an exact tie the lower
    validation ``loss`` wins when both losses are known."""
    if best is None:
        return True
    if value is None or not math.isfinite(value):
        return False
    if value == best and loss is not None and best_loss is not None:
        return loss < best_loss
    if mode == "max":
        return value > best + min_delta
    return value < best - min_delta


@dataclass(frozen=True)
class RunRow:
    """One epoch of one training run, as read from its log. ``seen``: training samples drawn
    from the start up to the end of this epoch (``None`` when the log cannot tell)."""

    epoch: int                              # 1-based
    train_loss: float | None
    val: Mapping[str, float]
    seen: int | None = None


@dataclass(frozen=True)
class CurvePoint:
    """One epoch of a curve; with several runs (folds), the mean over the runs that reached it.

    Attributes:
        epoch: 1-based epoch number.
        seen: training samples (``LearningCurve.unit``) drawn up to the end of this epoch.
        train_loss: mean training loss of the epoch.
        val: validation metrics at the end of the epoch (``val_loss``, ``auroc``, ``map50``...).
        runs: how many runs reached this epoch (a fold that stopped early drops out).
    """

    epoch: int
    seen: float | None
    train_loss: float | None
    val: Mapping[str, float] = field(default_factory=dict)
    runs: int = 1


@dataclass(frozen=True)
class LearningCurve:
    """A model's learning curve.

    Attributes:
        monitor, mode: the validation metric model selection used and whether higher is better.
        unit: what one training sample is (``images``, or ``windows`` for window models).
        points: one per epoch, in order.
        best_epochs: per run, the epoch whose weights were kept (1-based).
        last_epochs: per run, the last epoch it ran.
        planned_epochs: the schedule's length; a run whose last epoch is below it stopped early
            (``None``: not known, nothing is marked as an early stop).
        source: where the figures come from (e.g. ``"metrics.csv of 2 fold runs, mean"``).
    """

    monitor: str
    mode: str
    unit: str
    points: tuple[CurvePoint, ...]
    best_epochs: tuple[int, ...]
    last_epochs: tuple[int, ...]
    planned_epochs: int | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if self.mode not in ("max", "min"):
            raise ConfigError(f"mode {self.mode!r}: 'max' or 'min'", "learning_curve.mode")
        if self.unit not in UNITS:
            raise ConfigError(f"unit {self.unit!r} is not one of {UNITS}", "learning_curve.unit")
        if not self.points or len(self.best_epochs) != len(self.last_epochs):
            raise ConfigError(f"{len(self.points)} points, {len(self.best_epochs)} best and "
                              f"{len(self.last_epochs)} last epochs: a curve needs points and "
                              "one best and one last epoch per run", "learning_curve")

    @property
    def stopped_early(self) -> tuple[int, ...]:
        """The last epochs of the runs that ended before the planned schedule."""
        if self.planned_epochs is None:
            return ()
        return tuple(e for e in self.last_epochs if e < self.planned_epochs)

    @property
    def shown(self) -> tuple[str, ...]:
        """The validation metrics a card or plot shows: the monitored one, and a detector's
        mAP50 beside its mAP50-95."""
        extra = [m for m in ("map50",) if m != self.monitor
                 and any(m in p.val for p in self.points)]
        return (self.monitor, *extra)

    def to_dict(self) -> dict[str, Any]:
        return {"monitor": self.monitor, "mode": self.mode, "unit": self.unit,
                "best_epochs": list(self.best_epochs), "last_epochs": list(self.last_epochs),
                "planned_epochs": self.planned_epochs, "source": self.source,
                "points": [{"epoch": p.epoch, "seen": p.seen, "train_loss": p.train_loss,
                            "val": dict(p.val), "runs": p.runs} for p in self.points]}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> LearningCurve:
        """Parse :meth:`to_dict`'s document; a missing or ill-typed field raises ConfigError."""
        try:
            points = tuple(CurvePoint(
                epoch=int(p["epoch"]), seen=_number(p.get("seen")),
                train_loss=_number(p.get("train_loss")),
                val={str(k): float(v) for k, v in dict(p.get("val") or {}).items()},
                runs=int(p.get("runs", 1))) for p in doc["points"])
            planned = doc.get("planned_epochs")
            return cls(monitor=str(doc["monitor"]), mode=str(doc["mode"]), unit=str(doc["unit"]),
                       points=points, best_epochs=tuple(int(e) for e in doc["best_epochs"]),
                       last_epochs=tuple(int(e) for e in doc["last_epochs"]),
                       planned_epochs=None if planned is None else int(planned),
                       source=str(doc.get("source", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"not a learning curve: {exc!r}", "learning_curve") from exc


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _mean(values: Sequence[float | None]) -> float | None:
    """Mean of the finite values (an undefined metric, e.g. AUROC of a one-class fold, is
    left out), ``None`` when there is none."""
    known = [float(v) for v in values if v is not None and math.isfinite(v)]
    return sum(known) / len(known) if known else None


def _best_epoch(rows: Sequence[RunRow], monitor: str, mode: str, tie_loss: str | None) -> int:
    best = best_loss = None
    epoch = rows[0].epoch
    for row in rows:
        value, loss = row.val.get(monitor), row.val.get(tie_loss) if tie_loss else None
        if improves(value, loss, best, best_loss, mode=mode):
            best, best_loss, epoch = value, loss, row.epoch
    return epoch


def curve_from_runs(runs: Sequence[Sequence[RunRow]], *, monitor: str, mode: str,
                    unit: str = "images", planned_epochs: int | None = None,
                    tie_loss: str | None = "val_loss", source: str = "") -> LearningCurve:
    """One curve from the epoch rows of one or more runs (folds of one model).

    Each point is the mean over the runs that reached that epoch. Each run's best epoch is
    found by :func:`improves` on ``monitor`` (ties broken by the ``tie_loss`` validation metric,
    as the training engine does; ``None`` for trainers that keep the first best).

    Raises:
        ConfigError: no rows, or no row holds ``monitor`` (the log is not this model's).
    """
    runs = [sorted(r, key=lambda row: row.epoch) for r in runs if r]
    if not runs:
        raise ConfigError("no epoch rows to make a learning curve from", source or "runs")
    if not any(monitor in row.val for run in runs for row in run):
        raise ConfigError(f"monitor {monitor!r} is in no epoch row (columns: "
                          f"{sorted({k for run in runs for row in run for k in row.val})})",
                          source or "runs")
    epochs = sorted({row.epoch for run in runs for row in run})
    points = []
    for e in epochs:
        rows = [row for run in runs for row in run if row.epoch == e]
        names = dict.fromkeys(k for row in rows for k in row.val)
        val = {k: _mean([row.val.get(k) for row in rows]) for k in names}
        points.append(CurvePoint(epoch=e, seen=_mean([row.seen for row in rows]),
                                 train_loss=_mean([row.train_loss for row in rows]),
                                 val={k: v for k, v in val.items() if v is not None},
                                 runs=len(rows)))
    return LearningCurve(monitor=monitor, mode=mode, unit=unit, points=tuple(points),
                         best_epochs=tuple(_best_epoch(r, monitor, mode, tie_loss) for r in runs),
                         last_epochs=tuple(r[-1].epoch for r in runs),
                         planned_epochs=planned_epochs, source=source)
