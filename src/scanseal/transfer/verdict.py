"""What the tamper screen said at sealing, read back from a signed manifest.

``seal_file`` records the detector's verdict under the manifest's ``screen`` entry, inside what
the uploader signs (docs/FORMAT.md §5). Everyone downstream — ``send``, ``fetch``, ``open``,
``verify``, the forwarding agent, the Storage SCP and STOW-RS — shows the verdict through
:func:`screen_verdict` and :meth:`ScreenVerdict.describe`, so the rule "is this image flagged"
and its wording live here once. The verdict is read only from a manifest whose signature holds
(checked again here): nothing unsigned — a gateway's answer, an edited file — can raise or clear
a flag.

A ``screen`` entry whose ``tampered`` is not a boolean (an uploader's software of another kind)
counts as flagged: an unreadable verdict is never shown as a clean one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from scanseal.transfer.manifest import Manifest


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

    def describe(self) -> str:
        """One line for a warning or a log, without the subject: what the screen said."""
        if not self.readable:
            return "the tamper screen's signed verdict is unreadable (treated as flagged)"
        relation = _relation(self.score, self.threshold)
        measured = f"score {_number(self.score)} {relation} threshold {_number(self.threshold)}"
        said = "flagged by" if self.flagged else "not flagged by"
        return f"{said} the tamper screen at sealing ({measured}, detector {self.model_version})"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``{"flagged", "score", "threshold", "model_version", "policy"}``."""
        return {
            "flagged": self.flagged,
            "score": self.score,
            "threshold": self.threshold,
            "model_version": self.model_version,
            "policy": self.policy,
        }


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
