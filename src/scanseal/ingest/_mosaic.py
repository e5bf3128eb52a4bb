"""Siemens mosaics: a volume's slices stored as a grid of tiles in one frame.

Siemens MR stores EPI and diffusion series as one frame per volume, the slices laid out row by
row in an n×n grid (n = ⌈√N⌉ for N slices), unused tiles black. A viewer or a converter
(dcm2niix, nibabel) cuts the grid back into slices; screened whole, the grid's repeated
anatomy and hard black gaps look like copies and splices. The detector therefore screens the
middle slice of a mosaic, as it screens the middle frame of a multi-frame volume.

A frame is read as a mosaic when its Image Type names ``MOSAIC`` and the private element
Number Of Images In Mosaic (0019,xx0A of the ``SIEMENS MR HEADER`` block) gives a grid that
divides the frame exactly; anything else, malformed values included, is screened whole.
"""

from __future__ import annotations

import math
from typing import Final

from pydicom.dataset import Dataset

Region = tuple[int, int, int, int]
"""A rectangle of a frame in pixels: top, left, rows, columns."""

_CREATOR: Final = "SIEMENS MR HEADER"
_IMAGES_IN_MOSAIC: Final = 0x0A


def screened_region(dataset: Dataset | None, rows: int, columns: int) -> Region:
    """The part of a ``rows`` × ``columns`` frame the detector screens: the middle tile of a
    Siemens mosaic, the whole frame otherwise."""
    whole = (0, 0, rows, columns)
    count = _images_in_mosaic(dataset) if dataset is not None else None
    if count is None or count < 2:
        return whole
    side = math.ceil(math.sqrt(count))
    if rows % side or columns % side:
        return whole
    tile_rows, tile_columns = rows // side, columns // side
    row, column = divmod(count // 2, side)
    return (row * tile_rows, column * tile_columns, tile_rows, tile_columns)


def _images_in_mosaic(dataset: Dataset) -> int | None:
    """Number Of Images In Mosaic, or None when the data set is not a readable mosaic."""
    try:
        if "MOSAIC" not in [str(value).upper() for value in dataset.get("ImageType") or []]:
            return None
        value = dataset.private_block(0x0019, _CREATOR)[_IMAGES_IN_MOSAIC].value
        count = int(value[0] if isinstance(value, list | tuple) else value)
    except (KeyError, ValueError, TypeError, IndexError, AttributeError):
        return None
    return count
