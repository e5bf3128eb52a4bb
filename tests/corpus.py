"""Test images for every package: the real DICOM files on this machine and generated PNG/JPEG.

``dicom_corpus()`` lists every DICOM Part 10 file shipped with pydicom (its test_files) and
pydicom-data that pydicom itself decodes here; nothing is downloaded. Import it as
``from corpus import dicom_corpus`` (pytest puts tests/ on sys.path for packages under it).
"""

from __future__ import annotations

import functools
import hashlib
import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import iter_pixels
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

# The installed pydicom and pydicom-data directories, found on disk (their data manager downloads).
from scanseal.detect.training.data import pydicom_dirs

KNOWN_MALFORMED: dict[str, str] = {
    # pydicom guesses its way through these (with a warning); ScanSeal refuses them on purpose.
    # SC_rgb_jpeg.dcm (written by highdicom 0.1.0) declares JPEG Baseline, whose datasets are
    # Explicit VR Little Endian (PS3.5 A.4), but every element after the file meta is implicit
    # VR: tag (0008,0008) at byte 356 is followed by a 4-byte length, not a VR, and so is Pixel
    # Data at byte 934. A reader that follows the transfer syntax cannot parse it.
    "SC_rgb_jpeg.dcm": "dataset encoded in implicit VR under an explicit VR transfer syntax",
}


def shipped_files() -> list[Path]:
    """Every regular file in pydicom's test_files and pydicom-data, in a fixed order."""
    files: list[Path] = []
    for root in pydicom_dirs():
        files.extend(sorted(p for p in root.rglob("*") if p.is_file()))
    return files


@functools.cache
def dicom_corpus() -> list[Path]:
    """Part 10 files with Pixel Data that pydicom decodes here, deduplicated by content."""
    seen: set[bytes] = set()
    corpus: list[Path] = []
    for path in shipped_files():
        if path.name in KNOWN_MALFORMED or not _is_part10(path):
            continue
        digest = hashlib.sha256(path.read_bytes()).digest()
        if digest in seen or not _pydicom_decodes(path):
            continue
        seen.add(digest)
        corpus.append(path)
    return corpus


def _is_part10(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(132)[128:] == b"DICM"


def _pydicom_decodes(path: Path) -> bool:
    """True when pydicom reads the file and decodes every frame without an exception."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(path)
            if "PixelData" not in ds:
                return False
            for _ in iter_pixels(ds):
                pass
        except Exception:  # any failure means "not decodable here"
            return False
    return True


def image_array(rows: int, cols: int, *, bits: int = 8, rgb: bool = False, seed: int = 0):
    """A deterministic test image: a gradient plus noise, full range for the bit depth."""
    rng = np.random.default_rng(seed)
    top = (1 << bits) - 1
    y, x = np.mgrid[0:rows, 0:cols]
    base = (x + y) / max(rows + cols - 2, 1) * top * 0.8
    shape = (rows, cols, 3) if rgb else (rows, cols)
    noise = rng.integers(0, max(top // 5, 1), size=shape)
    if rgb:
        base = base[..., None]
    dtype = np.uint8 if bits == 8 else np.uint16
    return np.clip(base + noise, 0, top).astype(dtype)


def make_png(
    path: Path, rows: int = 48, cols: int = 64, *, bits: int = 8, rgb: bool = False, seed: int = 0
) -> Path:
    """Write an 8/16-bit gray or RGB PNG. 16-bit RGB is written by hand (Pillow cannot)."""
    array = image_array(rows, cols, bits=bits, rgb=rgb, seed=seed)
    if bits == 16 and rgb:
        path.write_bytes(_png_bytes(array))
    else:
        Image.fromarray(array).save(path, format="PNG")
    return path


def make_jpeg(
    path: Path,
    rows: int = 48,
    cols: int = 64,
    *,
    rgb: bool = False,
    progressive: bool = False,
    quality: int = 90,
    seed: int = 0,
) -> Path:
    """Write a baseline (or progressive) 8-bit gray or RGB JPEG."""
    array = image_array(rows, cols, bits=8, rgb=rgb, seed=seed)
    Image.fromarray(array).save(path, format="JPEG", quality=quality, progressive=progressive)
    return path


def make_dicom(
    path: Path,
    array,
    *,
    modality: str = "OT",
    transfer_syntax=ExplicitVRLittleEndian,
    **attributes: object,
) -> Path:
    """Write a minimal valid Secondary Capture DICOM holding `array` (frames first if 3-D gray)."""
    frames = array.shape[0] if array.ndim == 4 or (array.ndim == 3 and array.shape[-1] != 3) else 1
    rgb = array.shape[-1] == 3 and array.ndim >= 3
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[str(path.name)])
    meta.TransferSyntaxUID = transfer_syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid(entropy_srcs=["study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["series"])
    ds.PatientID = "TEST-0001"
    ds.PatientName = "Test^Patient"
    ds.Modality = modality
    ds.StudyDate, ds.StudyTime = "20240131", "081500"
    ds.set_pixel_data(array, "RGB" if rgb else "MONOCHROME2", array.dtype.itemsize * 8)
    if frames > 1:
        ds.NumberOfFrames = frames
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.save_as(path, enforce_file_format=True)
    return path


def _png_bytes(array) -> bytes:
    """Encode a 16-bit RGB array as a PNG (filter 0 on every row)."""
    rows, cols, _ = array.shape
    raw = b"".join(b"\x00" + array[r].astype(">u2").tobytes() for r in range(rows))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">L", len(data)) + kind + data + struct.pack(">L", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">LLBBBBB", cols, rows, 16, 2, 0, 0, 0)
    out = io.BytesIO()
    out.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)))
    out.write(chunk(b"IEND", b""))
    return out.getvalue()
