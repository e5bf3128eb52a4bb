"""The path-taking ingest functions, each a thin use of one :class:`IngestedImage`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from scanseal.ingest._image import read_image
from scanseal.ingest.metadata import ImageMetadata


def read_metadata(path: Path) -> ImageMetadata:
    """Validate the header (format, attributes, limits, extents) and return the metadata.

    No pixel is decoded, so this is cheap enough to run on every file a modality pushes.
    """
    return read_image(path).metadata


def iter_frames(path: Path) -> Iterator[np.ndarray[Any, Any]]:
    """Yield decoded frames one at a time, samples as stored (no colour-space conversion).

    Shape is (rows, columns) or (rows, columns, samples). Header problems raise at the call,
    decoding problems while iterating; both as InvalidInput.
    """
    return read_image(path).frames()


def validate(path: Path) -> ImageMetadata:
    """Validate the header and decode every frame; return the metadata if all is well."""
    image = read_image(path)
    for _ in image.frames():
        pass
    return image.metadata
