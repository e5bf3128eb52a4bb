"""The runtime detector: the committed ONNX model on onnxruntime, one CPU thread, no torch."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import onnxruntime
from PIL import Image

from scanseal.detect import heat
from scanseal.errors import InvalidInput
from scanseal.ingest import IngestedImage, display_frame, preprocess, read_image

MODEL_DIR: Final = Path(__file__).resolve().parent / "model"
Policy = Literal["flag", "block", "off"]
POLICIES: Final[tuple[Policy, ...]] = ("flag", "block", "off")
FloatArray = np.ndarray[Any, np.dtype[np.float32]]


def sigmoid(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The logistic function, clipped so large logits neither overflow nor warn.

    The one definition for the runtime's calibrated score, ``sigmoid(logit / temperature)``, and
    for training, which fits that temperature and threshold with it.
    """
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(x, -60, 60))))


@dataclass(frozen=True)
class Screening:
    """One image's verdict: calibrated score, the model's threshold, and where it looked.

    ``false_alarm_rate`` is the share of the card's authentic images of unseen sources that
    score at least this high (None for a card without them): how often an untouched image
    scores like this one.
    """

    path: Path
    score: float
    threshold: float
    model_version: str
    regions: list[tuple[int, int, int, int]]
    plane: FloatArray = field(repr=False)
    heat: FloatArray = field(repr=False)
    false_alarm_rate: float | None = None

    @property
    def tampered(self) -> bool:
        return self.score >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        """The ``scanseal screen --json`` line for this image."""
        return {
            "path": str(self.path),
            "tampered": self.tampered,
            "score": round(self.score, 6),
            "threshold": self.threshold,
            "false_alarm_rate": (
                None if self.false_alarm_rate is None else round(self.false_alarm_rate, 4)
            ),
            "regions": [list(box) for box in self.regions],
        }

    def manifest_entry(self, policy: Policy) -> dict[str, Any]:
        """What the signed manifest records under ``screen``."""
        return {
            "score": round(self.score, 6),
            "threshold": self.threshold,
            "tampered": self.tampered,
            "model_version": self.model_version,
            "policy": policy,
        }


class Detector:
    """Loads ``detector.onnx`` and its card ``detector.json`` (version, threshold, input spec,
    and the authentic scores of unseen sources the threshold was chosen on)."""

    def __init__(self, model_dir: Path = MODEL_DIR, *, threads: int = 1) -> None:
        card_path, onnx_path = model_dir / "detector.json", model_dir / "detector.onnx"
        try:
            card = json.loads(card_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise InvalidInput(f"detector model card unreadable: {card_path}: {error}") from None
        self.version: str = str(card["version"])
        self.threshold: float = float(card["threshold"])
        self.temperature: float = float(card["temperature"])
        self.heat_level: float = float(card.get("heat_level", 0.5))
        self.size: int = int(card["input"]["shape"][2])
        authentic = card.get("false_alarms", {}).get("authentic_scores", [])
        self._authentic = np.sort(np.asarray(authentic, np.float64))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )

    def false_alarm_rate(self, score: float) -> float | None:
        """Share of the card's authentic images scoring ``score`` or higher (None without)."""
        count = len(self._authentic)
        if count == 0:
            return None
        return float(count - np.searchsorted(self._authentic, score, side="left")) / count

    def score_planes(self, planes: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Calibrated scores (N,) and probability maps (N, h, w) for (N, size, size) planes."""
        batch = np.ascontiguousarray(planes, np.float32)[:, None]
        logits, maps = self._session.run(None, {"image": batch})
        scores = sigmoid(np.asarray(logits) / self.temperature)
        return scores.astype(np.float32), maps[:, 0].astype(np.float32)

    def screen_plane(
        self, plane: FloatArray, *, path: Path = Path("-"), shape: tuple[int, int] | None = None
    ) -> Screening:
        """Screen one preprocessed plane; ``shape`` (rows, cols) scales the region boxes."""
        scores, maps = self.score_planes(plane[None])
        rows, cols = shape or plane.shape
        boxes = heat.regions(maps[0], rows, cols, level=self.heat_level)
        score = float(scores[0])
        return Screening(
            path, score, self.threshold, self.version,
            boxes if score >= self.threshold else [], plane, maps[0],
            self.false_alarm_rate(score),
        )  # fmt: skip

    def screen(self, source: Path | IngestedImage) -> Screening:
        """Validate, preprocess and screen an image file (InvalidInput for a bad file).

        ``source`` may be an image already ingested: sealing passes the one it hashes, so the
        file is parsed and its screened frame decoded once for both.
        """
        image = source if isinstance(source, IngestedImage) else read_image(Path(source))
        plane = preprocess(image, self.size)
        shape = image.screened_region[2:]  # a mosaic's slice, else the whole frame
        return self.screen_plane(plane, path=image.path, shape=shape)

    def heatmap(self, result: Screening, image: FloatArray | None = None) -> Image.Image:
        """The heat map drawn on the screened image at the image's own size and aspect, with
        the region boxes, score, threshold and a legend (``scanseal screen --heatmap``).

        ``image`` defaults to the file's screened frame as a viewer shows it, through its own
        DICOM window (:func:`scanseal.ingest.display_frame`); InvalidInput for a bad file.
        """
        frame = display_frame(result.path) if image is None else image
        verdict = heat.Verdict(
            result.score, result.threshold, self.heat_level, result.model_version
        )
        return heat.draw(frame, result.heat, result.regions, verdict)


@functools.cache
def default_detector() -> Detector:
    """The committed model, loaded once per process."""
    return Detector()
