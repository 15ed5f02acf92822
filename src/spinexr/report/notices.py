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

A third caution, :func:`contradictions`, flags heads of one pack that disagree (the triage
says normal but a grade is abnormal, or the reverse) in plain words.

A refused input carries none: nothing of it was analysed. Pure: text in, text out.
"""
from __future__ import annotations

from spinexr.types import Analysis, Grade

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


#: The first grade index of a task that counts as abnormal (others: every index above 0, the
#: normal or healthy class). Degeneration counts from "minimal" (Kellgren-Lawrence 2, the usual
#: radiographic threshold of osteoarthritis): a "doubtful" grade is no finding for a triage.
ABNORMAL_FROM: dict[str, int] = {"degeneration": 2}
WHOLE_IMAGE = "whole image"


def grade_is_abnormal(g: Grade) -> bool:
    """Whether a grade reports an abnormality (see :data:`ABNORMAL_FROM`)."""
    return g.index >= ABNORMAL_FROM.get(g.task, 1)


def grade_location(g: Grade, a: Analysis) -> str:
    """Where a grade applies: ``"whole image"`` (no box), the region's name (an MR stenosis
    region), or the level of the window that drove it (``"L4"``, ``"L4?"`` when counted,
    unconfirmed; ``"window"`` without a level)."""
    if g.box is None:
        return WHOLE_IMAGE
    if a.modality == "mri" or not g.box.level:
        return g.box.label or "window"
    return level_label(g.box.level, a) or g.box.level


def grade_text(g: Grade, a: Analysis) -> str:
    """``"degeneration: moderate (whole image)"``."""
    return f"{g.task}: {g.label} ({grade_location(g, a)})"


def contradictions(a: Analysis) -> list[str]:
    """The heads of an analysed radiograph that disagree, in plain words: the triage says
    normal but a grade is abnormal, or the triage says abnormal but every grade is normal.
    Empty for a refused input, an MR slice (no triage) or an analysis without grades."""
    t = a.triage
    if not a.gate.accepted or t is None or a.modality == "mri" or not a.grades:
        return []
    abnormal = [g for g in a.grades if grade_is_abnormal(g)]
    if not t.abnormal and abnormal:
        graded = "; ".join(grade_text(g, a) for g in abnormal)
        return [f"The models disagree: the triage says normal (P(abnormal) "
                f"{t.probability:.2f}) but grades {graded}; review the image"]
    if t.abnormal and not abnormal:
        graded = "; ".join(grade_text(g, a) for g in a.grades)
        return [f"The models disagree: the triage says abnormal (P(abnormal) "
                f"{t.probability:.2f}) but grades {graded}; review the image"]
    return []


def warnings(a: Analysis) -> list[str]:
    """Every caution on ``a`` in plain words, the gate's first, then the level naming and
    the heads that disagree (result.json ``warnings``)."""
    return [w for w in (uncertain_warning(a), level_warning(a)) if w] + contradictions(a)
