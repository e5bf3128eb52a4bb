"""Siemens mosaics: the detector screens, and a heat map shows, the middle slice of the grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from scanseal.detect import default_detector
from scanseal.ingest import display_frame, preprocess, read_image

TILE = (40, 50)


def _mr(path: Path, pixels: np.ndarray, *, image_type: list[str], mosaic: int | None) -> Path:
    """A 16-bit MR file with ``pixels``; ``mosaic`` as Number Of Images In Mosaic."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.ImageType = "MR", image_type
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    if mosaic is not None:
        ds.private_block(0x0019, "SIEMENS MR HEADER", create=True).add_new(0x0A, "US", mosaic)
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def _grid(side: int, rng: np.random.Generator) -> np.ndarray:
    """A side × side grid of distinct noisy tiles (tile k has mean 100 × (k + 1))."""
    rows, cols = TILE
    grid = np.zeros((side * rows, side * cols))
    for k in range(side * side):
        r, c = divmod(k, side)
        tile = 100.0 * (k + 1) + rng.normal(0, 20, TILE)
        grid[r * rows : (r + 1) * rows, c * cols : (c + 1) * cols] = tile
    return np.clip(grid, 0, 65535)


@pytest.fixture
def mosaic(tmp_path: Path) -> tuple[Path, np.ndarray]:
    pixels = _grid(3, np.random.default_rng(5))
    return _mr(tmp_path / "mosaic.dcm", pixels, image_type=["ORIGINAL", "PRIMARY", "M", "MOSAIC"],
               mosaic=9), pixels  # fmt: skip


def test_the_middle_slice_of_the_grid_is_screened(mosaic, tmp_path):
    path, pixels = mosaic
    rows, cols = TILE
    assert read_image(path).screened_region == (rows, cols, rows, cols)  # slice 4 of 0..8
    middle = pixels[rows : 2 * rows, cols : 2 * cols]
    alone = _mr(tmp_path / "slice.dcm", middle, image_type=["ORIGINAL", "PRIMARY", "M"],
                mosaic=None)  # fmt: skip
    assert np.array_equal(preprocess(path), preprocess(alone))
    assert not np.array_equal(preprocess(path), preprocess(_as_plain(path, pixels, tmp_path)))


def _as_plain(path: Path, pixels: np.ndarray, tmp_path: Path) -> Path:
    return _mr(tmp_path / "plain.dcm", pixels, image_type=["ORIGINAL", "PRIMARY"], mosaic=None)


def test_the_heat_map_is_drawn_on_the_slice_at_its_size(mosaic):
    path, pixels = mosaic
    rows, cols = TILE
    shown = display_frame(path)
    assert shown.shape == TILE
    tile = pixels[rows : 2 * rows, cols : 2 * cols]
    assert np.corrcoef(shown.ravel(), tile.ravel())[0, 1] > 0.99
    detector = default_detector()
    assert detector.heatmap(detector.screen(path)).size == (cols, rows)


def test_slices_fill_the_grid_row_by_row(tmp_path):
    """35 slices lie in a 6 × 6 grid: the middle one, slice 17, is row 2, column 5."""
    pixels = _grid(6, np.random.default_rng(6))
    path = _mr(tmp_path / "m35.dcm", pixels, image_type=["ORIGINAL", "MOSAIC"], mosaic=35)
    rows, cols = TILE
    assert read_image(path).screened_region == (2 * rows, 5 * cols, rows, cols)


@pytest.mark.parametrize(
    ("image_type", "count", "columns"),
    [
        (["ORIGINAL", "PRIMARY", "M"], 9, 150),  # not called a mosaic
        (["ORIGINAL", "MOSAIC"], None, 150),  # no slice count
        (["ORIGINAL", "MOSAIC"], 1, 150),  # one slice: the frame is that slice
        (["ORIGINAL", "MOSAIC"], 0, 150),
        (["ORIGINAL", "MOSAIC"], 9, 149),  # a 3 × 3 grid does not divide 149 columns
    ],
)
def test_anything_else_is_screened_whole(tmp_path, image_type, count, columns):
    pixels = _grid(3, np.random.default_rng(7))[:, :columns]
    path = _mr(tmp_path / "x.dcm", pixels, image_type=image_type, mosaic=count)
    assert read_image(path).screened_region == (0, 0, *pixels.shape)
