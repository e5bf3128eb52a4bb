"""DICOM Part 10: header validation without decoding, and frame-by-frame decoding.

pydicom parses and decodes; this module adds what pydicom leaves to the caller when reading from
a file: checking that the declared image is sane and within limits, and that the Pixel Data value
really is in the file, before a single frame is decoded.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.utils import iter_pixels
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian, RLELossless

from scanseal.errors import InvalidInput, Unreadable
from scanseal.ingest import _dates, _rle
from scanseal.ingest._common import Source, fail, mapped_errors
from scanseal.ingest.limits import MAX_DECODED_BYTES, MAX_FRAME_PIXELS
from scanseal.ingest.metadata import ImageMetadata

_PIXEL_DATA = 0x7FE00010
_FLOAT_PIXEL_DATA = (0x7FE00008, 0x7FE00009)
_ITEM = 0xE000FFFE  # (FFFE,E000) read as little-endian group, element
_SEQ_DELIMITER = 0xE0DDFFFE
_UNDEFINED = 0xFFFFFFFF
_PIXEL_VRS = (b"OB", b"OW", b"UN")
_DEFER_BYTES = 1 << 20
_INFLATE_CHUNK = 1 << 20
_ALLOWED_BITS = (1, 8, 16, 32, 64)
_rle.register()
_SAMPLES_FOR = {
    "MONOCHROME1": 1,
    "MONOCHROME2": 1,
    "PALETTE COLOR": 1,
    "RGB": 3,
    "YBR_FULL": 3,
    "YBR_FULL_422": 3,
    "YBR_ICT": 3,
    "YBR_RCT": 3,
    "YBR_PARTIAL_420": 3,
}


@dataclass(frozen=True)
class PixelLayout:
    """Where the Pixel Data value sits and how it is declared; for validation and hashing."""

    photometric: str
    pixel_representation: int
    planar_configuration: int
    value_offset: int | None  # None when the dataset is deflated: no file offset applies
    value_length: int | None  # None for encapsulated (undefined length)
    expected_native_bytes: int


@dataclass(frozen=True)
class DicomHeader:
    """A validated DICOM header: metadata, the header-only dataset and the pixel layout."""

    metadata: ImageMetadata
    dataset: Dataset
    layout: PixelLayout | None  # None for an object without pixels (no Pixel Data)
    transfer_syntax: UID

    @property
    def pixels(self) -> PixelLayout:
        """The Pixel Data layout; InvalidInput for an object without pixels (nothing to
        decode: callers reach here only after asking for a frame, which already refused)."""
        if self.layout is None:
            raise InvalidInput("this DICOM object has no pixels")
        return self.layout


def read_header(source: Source) -> DicomHeader:
    """Parse and validate everything up to the Pixel Data value, decoding no pixels."""
    path, size = source.path, source.size()
    # Large values are left on disk for a file; bytes in memory are read whole, since pydicom
    # would read a deferred value from this very stream (moving it, or after it is closed).
    defer = _DEFER_BYTES if source.data is None else None
    with mapped_errors(path, "malformed DICOM"), source.open() as f:
        ds = pydicom.dcmread(f, stop_before_pixels=True, defer_size=defer)
        tsyntax = _transfer_syntax(path, ds)
        if tsyntax == DeflatedExplicitVRLittleEndian:
            return _deflated_header(source, size, tsyntax)
        _check_elements_within(path, ds, size)
        element = _pixel_element(path, ds, f, size, tsyntax)
    if element is None:
        return _no_pixels_header(path, ds, tsyntax)
    return _finish_header(source, ds, tsyntax, *element, size)


def _transfer_syntax(path: Path, ds: Dataset) -> UID:
    """Return the declared transfer syntax if some installed decoder handles it."""
    value = getattr(ds, "file_meta", Dataset()).get("TransferSyntaxUID")
    if not value:
        fail(path, "malformed DICOM: file meta header has no Transfer Syntax UID (0002,0010)")
    uid = UID(str(value))
    if not uid.is_valid or not uid.is_transfer_syntax:
        fail(path, f"unknown transfer syntax {uid}")
    try:
        decoder = get_decoder(uid)
    except NotImplementedError:
        fail(path, f"unsupported transfer syntax {uid} ({uid.name}): no decoder in pydicom")
    if not decoder.is_available:
        fail(path, f"unsupported transfer syntax {uid} ({uid.name}): no decoder plugin installed")
    return uid


def _check_elements_within(path: Path, ds: Dataset, size: int) -> None:
    """pydicom reads a value cut short by the end of the file without complaint: we do not."""
    for element in ds.elements():
        length = getattr(element, "length", _UNDEFINED)
        start = getattr(element, "value_tell", None)
        if start is not None and length != _UNDEFINED and start + length > size:
            fail(
                path,
                f"truncated DICOM: element {element.tag} ends at byte {size} of {start + length}",
            )


def _last_element_end(ds: Dataset) -> int:
    """Where the last top-level element ends, or -1 when unknown (undefined-length sequence)."""
    last = None
    for element in ds.elements():
        last = element
    length = getattr(last, "length", _UNDEFINED)
    start = getattr(last, "value_tell", None)
    return -1 if start is None or length == _UNDEFINED else int(start + length)


def _pixel_element(
    path: Path, ds: Dataset, f: BinaryIO, size: int, tsyntax: UID
) -> tuple[int, int] | None:
    """Read the Pixel Data element header where pydicom stopped; return value offset, length,
    or None when the data set ends cleanly without one (an object without pixels)."""
    pos = f.tell()
    if pos > size:
        fail(path, f"truncated DICOM: an element ends at byte {pos} but the file has {size}")
    head = f.read(12 if not tsyntax.is_implicit_VR else 8)
    if len(head) < 8:
        if len(head) > 0 or _last_element_end(ds) not in (size, -1):
            fail(path, f"truncated DICOM: the file ends inside an element at byte {size}")
        return None
    endian = "<" if tsyntax.is_little_endian else ">"
    group, element = struct.unpack(f"{endian}HH", head[:4])
    tag = group << 16 | element
    if tag in _FLOAT_PIXEL_DATA:
        fail(path, "Float Pixel Data is not supported, only integer Pixel Data (7FE0,0010)")
    if tag != _PIXEL_DATA or (not tsyntax.is_implicit_VR and len(head) < 12):
        fail(path, "DICOM without Pixel Data (7FE0,0010): nothing to seal as an image")
    if tsyntax.is_implicit_VR:
        return pos + 8, struct.unpack(f"{endian}L", head[4:8])[0]
    if head[4:6] not in _PIXEL_VRS:
        fail(
            path,
            f"malformed DICOM: Pixel Data has VR {head[4:6]!r}, the dataset is not "
            f"encoded as its transfer syntax {tsyntax.name} says",
        )
    return pos + 12, struct.unpack(f"{endian}L", head[8:12])[0]


def _deflated_header(source: Source, size: int, tsyntax: UID) -> DicomHeader:
    """Deflated datasets are inflated in memory by pydicom: bound the inflated size first."""
    path = source.path
    _check_inflated_size(source)
    with source.open() as f:
        ds = pydicom.dcmread(f)
    if "PixelData" not in ds:
        return _no_pixels_header(path, ds, tsyntax)
    raw = ds["PixelData"]
    length = None if raw.is_undefined_length else len(ds.PixelData)
    return _finish_header(source, ds, tsyntax, None, length, size)


def _check_inflated_size(source: Source) -> None:
    """Stream-inflate a deflated dataset, counting bytes, to reject zip bombs before pydicom."""
    path = source.path
    with source.open() as f:
        pydicom.filereader.read_preamble(f, False)
        pydicom.filereader._read_file_meta_info(f)
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        total = 0
        while chunk := f.read(_INFLATE_CHUNK):
            total += len(inflater.decompress(chunk, MAX_DECODED_BYTES - total + 1))
            if total > MAX_DECODED_BYTES or inflater.unconsumed_tail:
                fail(
                    path,
                    f"decompression bomb: deflated dataset inflates past {MAX_DECODED_BYTES} bytes",
                )


_IMAGE_PIXEL_ATTRIBUTES: Final = ("Rows", "Columns", "BitsAllocated", "SamplesPerPixel")
"""Attributes of the Image Pixel module: a data set declaring any of them is an image, and an
image whose Pixel Data is missing is refused, never sealed as an object without pixels."""


def _no_pixels_header(path: Path, ds: Dataset, tsyntax: UID) -> DicomHeader:
    """An object without pixels (SR, KOS, PR, RT plan or structure set, encapsulated PDF, …):
    its metadata has no frames (rows, columns, frames, samples and bits all 0)."""
    declared = [keyword for keyword in _IMAGE_PIXEL_ATTRIBUTES if keyword in ds]
    if declared:
        fail(
            path,
            f"DICOM without Pixel Data (7FE0,0010) declares an image ({', '.join(declared)}): "
            "its pixels are missing",
        )
    with mapped_errors(path, "malformed DICOM"):
        metadata = _metadata(ds, tsyntax, (0, 0, 0, 0, 0, 0))
    return DicomHeader(metadata, ds, None, tsyntax)


def _finish_header(
    source: Source, ds: Dataset, tsyntax: UID, offset: int | None, length: int | None, size: int
) -> DicomHeader:
    """Check attributes, limits and the Pixel Data extent; build the metadata."""
    path = source.path
    with mapped_errors(path, "malformed DICOM"):
        dims = _image_attributes(path, ds)
        layout = _layout(path, ds, dims, offset, length)
        _check_extent(source, tsyntax, layout, size, dims[2])
        metadata = _metadata(ds, tsyntax, dims)
    return DicomHeader(metadata, ds, layout, tsyntax)


def _int_attr(path: Path, ds: Dataset, keyword: str, default: int | None = None) -> int:
    """Return an integer attribute or fail naming it: missing, empty or non-numeric values."""
    value: Any = ds.get(keyword, default)
    if value is None or value == "":
        if default is None:
            fail(path, f"inconsistent DICOM: missing {keyword}")
        return default
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue, bytes)):
        fail(path, f"inconsistent DICOM: {keyword} is not a single integer")
    return int(value)


def _image_attributes(path: Path, ds: Dataset) -> tuple[int, int, int, int, int, int]:
    """Return rows, columns, frames, samples, bits allocated, bits stored, all checked."""
    rows = _int_attr(path, ds, "Rows")
    cols = _int_attr(path, ds, "Columns")
    frames = _int_attr(path, ds, "NumberOfFrames", 1)
    samples = _int_attr(path, ds, "SamplesPerPixel")
    allocated = _int_attr(path, ds, "BitsAllocated")
    stored = _int_attr(path, ds, "BitsStored")
    for name, value in (("Rows", rows), ("Columns", cols)):
        if not 0 < value <= 0xFFFF:
            fail(path, f"inconsistent DICOM: {name} is {value}, must be 1 to 65535")
    if frames < 1:
        fail(path, f"inconsistent DICOM: NumberOfFrames is {frames}, must be at least 1")
    if samples not in (1, 3):
        fail(path, f"inconsistent DICOM: SamplesPerPixel is {samples}, must be 1 or 3")
    if allocated not in _ALLOWED_BITS:
        fail(path, f"inconsistent DICOM: BitsAllocated is {allocated}, must be 1, 8, 16, 32 or 64")
    if not 1 <= stored <= allocated:
        fail(path, f"inconsistent DICOM: BitsStored is {stored} with BitsAllocated {allocated}")
    _check_limits(path, rows, cols, frames, samples, allocated)
    return rows, cols, frames, samples, allocated, stored


def _check_limits(path: Path, rows: int, cols: int, frames: int, samples: int, bits: int) -> None:
    """Reject decompression bombs from the declared sizes, before anything is decoded."""
    if rows * cols > MAX_FRAME_PIXELS:
        fail(
            path,
            f"decompression bomb: {rows}×{cols} = {rows * cols} pixels per frame "
            f"exceeds the limit of {MAX_FRAME_PIXELS}",
        )
    decoded = rows * cols * frames * samples * max(bits, 8) // 8
    if decoded > MAX_DECODED_BYTES:
        fail(
            path,
            f"decompression bomb: {frames} frames decode to {decoded} bytes, "
            f"over the limit of {MAX_DECODED_BYTES}",
        )


def _layout(
    path: Path,
    ds: Dataset,
    dims: tuple[int, int, int, int, int, int],
    offset: int | None,
    length: int | None,
) -> PixelLayout:
    """Check photometric interpretation, representation and planar configuration."""
    photometric = str(ds.get("PhotometricInterpretation", "")).strip()
    samples = dims[3]
    if photometric not in _SAMPLES_FOR:
        fail(path, f"inconsistent DICOM: unknown PhotometricInterpretation {photometric!r}")
    if _SAMPLES_FOR[photometric] != samples:
        fail(
            path,
            f"inconsistent DICOM: PhotometricInterpretation {photometric} "
            f"with SamplesPerPixel {samples}",
        )
    representation = _int_attr(path, ds, "PixelRepresentation")
    if representation not in (0, 1):
        fail(path, f"inconsistent DICOM: PixelRepresentation is {representation}, must be 0 or 1")
    planar = _int_attr(path, ds, "PlanarConfiguration", 0)
    if planar not in (0, 1):
        fail(path, f"inconsistent DICOM: PlanarConfiguration is {planar}, must be 0 or 1")
    rows, cols, frames, _, bits, _ = dims
    per_frame = rows * cols * samples * bits
    if photometric == "YBR_FULL_422":
        per_frame = per_frame * 2 // 3
    expected = (per_frame * frames + 7) // 8
    value_length = None if length in (None, _UNDEFINED) else length
    return PixelLayout(photometric, representation, planar, offset, value_length, expected)


def _check_extent(
    source: Source, tsyntax: UID, layout: PixelLayout, size: int, frames: int
) -> None:
    """Check the Pixel Data value lies within the file and is long enough."""
    path = source.path
    if tsyntax.is_encapsulated:
        if layout.value_length is not None:
            fail(path, "malformed DICOM: compressed Pixel Data must have undefined length")
        if layout.value_offset is not None:
            _check_fragments(source, layout.value_offset, size, frames)
        return
    if layout.value_length is None:
        fail(path, "malformed DICOM: native Pixel Data with undefined length")
    if layout.value_offset is not None and layout.value_offset + layout.value_length > size:
        fail(
            path,
            f"truncated DICOM: Pixel Data ends at byte {size} "
            f"of {layout.value_offset + layout.value_length}",
        )
    if layout.value_length < layout.expected_native_bytes:
        fail(
            path,
            f"truncated DICOM: Pixel Data has {layout.value_length} bytes, the declared "
            f"image needs {layout.expected_native_bytes}",
        )


def _check_fragments(source: Source, offset: int, size: int, frames: int) -> None:
    """Walk the encapsulated items (headers only) to prove they all lie inside the file."""
    path, count = source.path, 0
    with source.open() as f:
        f.seek(offset)
        while True:
            head = f.read(8)
            if len(head) < 8:
                fail(
                    path,
                    f"truncated DICOM: compressed Pixel Data ends at byte {size} "
                    "without a sequence delimiter",
                )
            tag, length = struct.unpack("<LL", head)
            if tag == _SEQ_DELIMITER:
                break
            if tag != _ITEM or length == _UNDEFINED:
                fail(path, f"malformed DICOM: bad item in Pixel Data at byte {f.tell() - 8}")
            end = f.tell() + length
            if end > size:
                fail(
                    path,
                    f"truncated DICOM: Pixel Data fragment {count} ends at byte {size} of {end}",
                )
            f.seek(end)
            count += 1
    if count - 1 < 1:
        fail(path, "malformed DICOM: compressed Pixel Data has no fragments")
    if count - 1 < frames:
        fail(path, f"malformed DICOM: {count - 1} compressed fragments for {frames} frames")


def _text(ds: Dataset, keyword: str) -> str | None:
    """Return an attribute as stripped text, or None when absent or empty."""
    value = ds.get(keyword)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _metadata(
    ds: Dataset, tsyntax: UID, dims: tuple[int, int, int, int, int, int]
) -> ImageMetadata:
    """Collect the fields ScanSeal records for a DICOM image."""
    rows, cols, frames, samples, allocated, stored = dims
    return ImageMetadata(
        format="dicom",
        patient_id=_text(ds, "PatientID"),
        patient_name=_text(ds, "PatientName"),
        modality=_text(ds, "Modality"),
        study_instance_uid=_text(ds, "StudyInstanceUID"),
        series_instance_uid=_text(ds, "SeriesInstanceUID"),
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        study_datetime=_dates.date_time(_text(ds, "StudyDate"), _text(ds, "StudyTime")),
        acquisition_datetime=_dates.acquisition(ds),
        rows=rows,
        columns=cols,
        frames=frames,
        samples_per_pixel=samples,
        bits_allocated=allocated,
        bits_stored=stored,
        transfer_syntax_uid=str(tsyntax),
    )


def iter_frames(
    source: Source, header: DicomHeader, indices: Iterable[int] | None = None, raw: bool = True
) -> Iterator[np.ndarray[Any, Any]]:
    """Yield decoded frames one at a time, shape-checked.

    With ``raw`` (the default) samples come as stored, without YCbCr to RGB conversion: that is
    what the pixel digest covers. Deflated datasets are decoded from the dataset the header
    read already holds (pydicom inflates them whole); everything else is read from the file
    (or the bytes in memory) frame by frame.
    """
    if header.pixels.value_offset is None:
        yield from _checked_frames(source.path, header, header.dataset, indices, raw)
    elif source.data is None:
        yield from _checked_frames(source.path, header, source.path, indices, raw)
    else:
        with source.open() as stream:
            yield from _checked_frames(source.path, header, stream, indices, raw)


def _checked_frames(
    path: Path,
    header: DicomHeader,
    source: Path | BinaryIO | Dataset,
    indices: Iterable[int] | None,
    raw: bool,
) -> Iterator[np.ndarray[Any, Any]]:
    """The frames pydicom decodes from ``source``, each checked against the header's shape,
    and their count against the declared one when all are asked for."""
    meta = header.metadata
    shape: tuple[int, ...] = (meta.rows, meta.columns)
    if meta.samples_per_pixel > 1:
        shape = (*shape, meta.samples_per_pixel)
    wanted = meta.frames if indices is None else None
    count = 0
    plugin = _rle.PLUGIN if header.transfer_syntax == RLELossless else ""  # "": pydicom picks
    frames = iter_pixels(source, indices=indices, raw=raw, decoding_plugin=plugin)
    while True:
        with mapped_errors(path, f"undecodable Pixel Data in frame {count}", Unreadable):
            frame = next(frames, None)
        if frame is None:
            break
        if frame.shape != shape:
            fail(
                path,
                f"undecodable Pixel Data: frame {count} decoded to shape {frame.shape}, "
                f"expected {shape}",
                Unreadable,
            )
        count += 1
        yield _stored_bits_only(frame, meta.bits_stored)
    if wanted is not None and count != wanted:
        fail(path, f"undecodable Pixel Data: {count} frames decoded, {wanted} declared", Unreadable)


def _stored_bits_only(frame: np.ndarray[Any, Any], bits_stored: int) -> np.ndarray[Any, Any]:
    """Clear (unsigned) or sign-extend (signed) the bits above BitsStored.

    Those bits are not part of the pixel value (PS3.5 8.1.1); old files keep overlays or junk
    there. Decoders differ on whether they clean them, so ScanSeal does it itself.
    """
    bits = frame.dtype.itemsize * 8
    if frame.dtype.kind not in "ui" or bits_stored >= bits:
        return frame
    if frame.dtype.kind == "u":
        masked: np.ndarray[Any, Any] = frame & frame.dtype.type((1 << bits_stored) - 1)
        return masked
    shift = frame.dtype.type(bits - bits_stored)
    extended: np.ndarray[Any, Any] = (frame << shift) >> shift
    return extended
