"""What the tamper screen said at sealing, read back from a signed manifest.

``seal_file`` records the detector's verdict under the manifest's ``screen`` entry, inside what
the uploader signs (docs/FORMAT.md §5). Everyone downstream — ``send``, ``fetch``, ``open``,
``verify``, the forwarding agent, the Storage SCP and STOW-RS — shows the verdict through
:func:`screen_verdict` and :meth:`ScreenVerdict.describe`, so the rule "is this image flagged"
and its wording live here once. The verdict is read only from a manifest whose signature holds
(checked again here): nothing unsigned — a gateway's answer, an edited file — can raise or clear
a flag.

A ``screen`` entry whose ``tampered`` is not a boolean (an uploader's software of another kind)
counts as flagged: an unreadable verdict is never shown as a clean one. The one exception is the
entry sealing records for a DICOM object without pixels, ``{"not_screened": "no pixels",
"policy": …}`` with no ``tampered`` key: there was nothing to screen, so it is not flagged, and
it says so ("not screened: no pixels").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from scanseal.transfer.manifest import Manifest

NOT_SCREENED_NO_PIXELS: Final = "no pixels"
"""The ``not_screened`` reason sealing signs for a DICOM object without Pixel Data."""


def not_screened_entry(policy: str) -> dict[str, Any]:
    """The manifest's ``screen`` entry for an object the screen cannot look at (no pixels)."""
    return {"not_screened": NOT_SCREENED_NO_PIXELS, "policy": policy}


@dataclass(frozen=True)
class ScreenVerdict:
    """The signed verdict of one sealed image: flagged or not, with what the screen measured.

    ``score`` and ``threshold`` are None when the signed entry does not hold a number there.
    """

    flagged: bool
    score: float | None
    threshold: float | None
    model_version: str
    policy: str
    readable: bool = True
    not_screened: str | None = None
    """Why the screen did not run (``"no pixels"``); None when it ran."""

    def describe(self) -> str:
        """One line for a warning or a log, without the subject: what the screen said."""
        if self.not_screened is not None:
            return f"not screened: {self.not_screened}"
        if not self.readable:
            return "the tamper screen's signed verdict is unreadable (treated as flagged)"
        relation = _relation(self.score, self.threshold)
        measured = f"score {_number(self.score)} {relation} threshold {_number(self.threshold)}"
        said = "flagged by" if self.flagged else "not flagged by"
        return f"{said} the tamper screen at sealing ({measured}, detector {self.model_version})"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``{"flagged", "score", "threshold", "model_version", "policy"}``, and
        ``"not_screened"`` (why) when the screen did not run."""
        answer: dict[str, Any] = {
            "flagged": self.flagged,
            "score": self.score,
            "threshold": self.threshold,
            "model_version": self.model_version,
            "policy": self.policy,
        }
        if self.not_screened is not None:
            answer["not_screened"] = self.not_screened
        return answer


def screen_verdict(manifest: Manifest) -> ScreenVerdict | None:
    """The verdict signed into ``manifest``, or None when sealing did not screen (``off``).

    IntegrityError when the manifest's signature does not hold: a verdict is only ever read
    from what the uploader signed.
    """
    manifest.verify_signature()
    entry = manifest.screen
    if entry is None:
        return None
    tampered = entry.get("tampered")
    reason = entry.get("not_screened")
    if "tampered" not in entry and reason == NOT_SCREENED_NO_PIXELS:
        return ScreenVerdict(
            flagged=False, score=None, threshold=None, model_version="none",
            policy=str(entry.get("policy", "unknown")), not_screened=reason,
        )  # fmt: skip
    readable = isinstance(tampered, bool)
    return ScreenVerdict(
        flagged=tampered if isinstance(tampered, bool) else True,
        score=_finite(entry.get("score")),
        threshold=_finite(entry.get("threshold")),
        model_version=str(entry.get("model_version", "unknown")),
        policy=str(entry.get("policy", "unknown")),
        readable=readable,
    )


def flag_warning(manifest: Manifest, subject: str) -> str | None:
    """``subject: <what the screen said>`` when ``manifest`` was flagged at sealing, else None.

    The one line every command and log shows for a flagged image (the signature is checked).
    """
    verdict = screen_verdict(manifest)
    if verdict is None or not verdict.flagged:
        return None
    return f"{subject}: {verdict.describe()}"


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _relation(score: float | None, threshold: float | None) -> str:
    if score is None or threshold is None:
        return "vs"
    return ">=" if score >= threshold else "<"


def _number(value: float | None) -> str:
    return "?" if value is None else f"{value:.3f}"
