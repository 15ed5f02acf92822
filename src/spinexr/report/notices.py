"""The cautions every output carries beside its results, worded once for all of them.

Two can apply to an analysed image:

- an **uncertain input** (``a.gate.outcome == "uncertain"``): analysed, but the gate could
  not confirm a spine radiograph; outputs show :func:`uncertain_warning` (plain words, for
  result.json, the SR and the HTML report) or :func:`uncertain_line` (the short capitalised
  form drawn on images);
- **levels counted, unconfirmed** (``a.levels.confirmed`` False): level names were counted
  from an assumed end of the column; outputs mark each drawn level name with
  :data:`UNCONFIRMED_MARK` (:func:`level_label`) and explain it with :func:`level_legend`,
  and state :func:`level_warning` in words.

A refused input carries neither: nothing of it was analysed. Pure: text in, text out.
"""
from __future__ import annotations

from spinexr.types import Analysis

#: Appended to a level name counted, unconfirmed: ``"L4?"``.
UNCONFIRMED_MARK = "?"
UNCERTAIN_TITLE = "UNCERTAIN INPUT"
CHECK_HINT = "check that this is a spine radiograph"


def is_uncertain(a: Analysis) -> bool:
    """Whether the gate analysed ``a`` without confirming a spine radiograph."""
    return a.gate.outcome == "uncertain"


def levels_unconfirmed(a: Analysis) -> bool:
    """Whether the level names of an analysed ``a`` were counted, unconfirmed."""
    return a.gate.accepted and a.levels is not None and not a.levels.confirmed


def uncertain_warning(a: Analysis) -> str | None:
    """``"Uncertain input: <reason>; check that this is a spine radiograph"`` (the hint only
    when the reason asks for no check itself), or ``None``."""
    if not is_uncertain(a):
        return None
    reason = _reason(a)
    hint = "" if "check" in reason.lower() else f"; {CHECK_HINT}"
    return f"Uncertain input: {reason}{hint}"


def uncertain_line(a: Analysis) -> str | None:
    """``"UNCERTAIN INPUT: <reason>"`` (the form drawn on images and verdict lines), or
    ``None``."""
    return f"{UNCERTAIN_TITLE}: {_reason(a)}" if is_uncertain(a) else None


def _reason(a: Analysis) -> str:
    """The gate's reason without its own "uncertain input:" opening or closing stop."""
    reason = a.gate.reason.strip()
    if reason.lower().startswith(UNCERTAIN_TITLE.lower()):
        reason = reason[len(UNCERTAIN_TITLE):].lstrip(" :;,-")
    return reason.rstrip(" .;") or "the gate could not confirm a spine radiograph"


def level_warning(a: Analysis) -> str | None:
    """``"Level naming: levels counted, unconfirmed (<assumption>)"``, or ``None`` when the
    levels are anchored, unknown or the input was refused."""
    return f"Level naming: {a.levels.note}" if levels_unconfirmed(a) else None


def level_legend(a: Analysis) -> str | None:
    """What the mark on level names means: ``"? = levels counted, unconfirmed (...)"``, or
    ``None`` when no finding's level is marked."""
    if not levels_unconfirmed(a) or not any(f.level for f in a.findings):
        return None
    return f"{UNCONFIRMED_MARK} = {a.levels.note}"


def level_label(level: str | None, a: Analysis) -> str | None:
    """A level name as outputs print it: ``"L4?"`` when counted, unconfirmed, else as is."""
    if not level:
        return level
    return f"{level}{UNCONFIRMED_MARK}" if levels_unconfirmed(a) else level


def warnings(a: Analysis) -> list[str]:
    """Every caution on ``a`` in plain words, the gate's first (result.json ``warnings``)."""
    return [w for w in (uncertain_warning(a), level_warning(a)) if w]
