"""One ingested image: the header parsed and validated once, each frame decoded once.

Sealing needs the metadata, the pixel digest and the detector's screen of the same file. An
:class:`IngestedImage` is handed to all three, so the header is parsed once and a single-frame
image (PNG, JPEG, most DICOM) is decoded once: the frame the detector screens is the frame the
digest hashes. A frame asked for by index is kept, read-only, when it is the middle one (the
one the detector screens and a heat map shows); the frames of a multi-frame image otherwise
stream, so memory stays bounded by about two frames however many the file holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGLSTransferSyntaxes,
    JPEGTransferSyntaxes,
)

from scanseal.errors import Unreadable
from scanseal.ingest import _dicom, _raster
from scanseal.ingest._common import Source, fail, mapped_errors
from scanseal.ingest._detect import format_of
from scanseal.ingest._mosaic import Region, screened_region
from scanseal.ingest.metadata import ImageFormat, ImageMetadata

Frame = np.ndarray[Any, Any]

_RAW_IDENTICAL_SYNTAXES: Final = (ImplicitVRLittleEndian, ExplicitVRLittleEndian)
_YBR_CONVERTED: Final = ("YBR_FULL", "YBR_FULL_422")
_READ_CHUNK: Final = 1 << 18


@dataclass(frozen=True)
class RawPixels:
    """A byte range of the file that equals the canonical little-endian decoded pixels.

    ``mask``: unsigned samples with BitsStored < BitsAllocated must be ANDed with it first,
    exactly as decoding clears those bits. ``data``: the image's bytes when they are in memory
    (the range is then sliced from them, not read from ``path``).
    """

    path: Path
    dtype: np.dtype[Any]
    offset: int
    length: int
    mask: int | None
    data: bytes | None = None

    def chunks(self, size: int = _READ_CHUNK) -> Iterator[bytes]:
        """Yield exactly ``length`` bytes from ``offset`` in chunks of at most ``size``.

        A file shrinking under the reader is reported (InvalidInput), never hashed short.
        """
        source = Source(self.path, self.data)
        with mapped_errors(self.path, "cannot read Pixel Data"), source.open() as f:
            f.seek(self.offset)
            remaining = self.length
            while remaining:
                chunk = f.read(min(remaining, size))
                if not chunk:
                    fail(
                        self.path,
                        f"truncated DICOM: Pixel Data ends early, {remaining} bytes missing",
                    )
                remaining -= len(chunk)
                yield chunk


class IngestedImage:
    """A DICOM, PNG or JPEG file whose header was validated; frames decode on demand.

    Made by :func:`read_image`. Header problems were raised there; decoding problems raise
    (InvalidInput) from :meth:`frames` and :meth:`frame`.
    """

    def __init__(
        self,
        path: Path,
        metadata: ImageMetadata,
        dicom: _dicom.DicomHeader | None,
        data: bytes | None = None,
    ) -> None:
        self.path: Final[Path] = path
        """The file; for an image read from memory (:func:`read_image_bytes`), its name."""
        self.metadata: Final[ImageMetadata] = metadata
        self._dicom = dicom  # None for PNG and JPEG
        self._source = Source(path, data)
        self._kept: dict[int, Frame] = {}

    def __repr__(self) -> str:
        return f"IngestedImage({str(self.path)!r}, {self.format})"

    @property
    def format(self) -> ImageFormat:
        return self.metadata.format

    @property
    def size(self) -> int:
        """The image's size in bytes, as a file."""
        return self._source.size()

    def open(self) -> BinaryIO:
        """A binary stream over the image's bytes (what sealing encrypts)."""
        return self._source.open()

    def header(self) -> Dataset | None:
        """The DICOM data set without its Pixel Data, as validated (None for PNG and JPEG):
        what a receiver logs and indexes, so that it parses nothing again."""
        return None if self._dicom is None else self._dicom.dataset

    @property
    def middle(self) -> int:
        """The index of the frame the detector screens: the middle one (0 for a single frame)."""
        return self.metadata.frames // 2

    @property
    def screened_region(self) -> Region:
        """The part of a frame the detector screens and a heat map shows, in pixels (top,
        left, rows, columns): the whole frame, or the middle slice of a Siemens mosaic."""
        dataset = None if self._dicom is None else self._dicom.dataset
        return screened_region(dataset, self.metadata.rows, self.metadata.columns)

    def screened_frame(self, *, as_rgb: bool = False) -> Frame:
        """The middle frame cut to :attr:`screened_region` (what screening and heat maps use)."""
        return self.region_of(self.frame(self.middle, as_rgb=as_rgb))

    def region_of(self, frame: Frame) -> Frame:
        """``frame`` cut to :attr:`screened_region` (a view: no copy)."""
        top, left, rows, columns = self.screened_region
        return frame[top : top + rows, left : left + columns]

    def frames(self) -> Iterator[Frame]:
        """Yield every frame in order, samples as stored (no colour-space conversion).

        Shape is (rows, columns) or (rows, columns, samples). This is what the pixel digest
        covers. A single frame already decoded (by screening) is not decoded again. An object
        without pixels yields none.
        """
        if not self.has_pixels:
            return
        if self.metadata.frames == 1:
            yield self.frame(0)
        else:
            yield from self._decode_all()

    def frame(self, index: int, *, as_rgb: bool = False) -> Frame:
        """Frame ``index`` alone; with ``as_rgb``, YCbCr converted to RGB as pydicom does.

        Palettes are not looked up. Where the conversion cannot change the samples (grey
        images, colour DICOM neither YBR_FULL nor JPEG-coded, PNG and JPEG files) the stored frame
        is returned, so it is decoded once for screening and the digest alike.
        """
        self._check_index(index)
        if as_rgb and not self._rgb_as_stored():
            return self._decode_one(index, raw=False)
        kept = self._kept.get(index)
        if kept is None:
            kept = self._keep(index, self._decode_one(index, raw=True))
        return kept

    def raw_pixels(self) -> RawPixels | None:
        """Where the stored Pixel Data bytes provably are the decoded pixels, else None.

        True for native little-endian DICOM whose samples decode unchanged: whole-byte samples,
        interleaved colour, no 4:2:2 subsampling, no sign extension to apply (unsigned samples
        only need the unused high bits cleared, see ``mask``). The pixel digest then hashes
        file bytes directly instead of decoding (much faster).
        """
        header = self._dicom
        if header is None:
            return None
        meta, layout = header.metadata, header.layout
        if layout is None:
            return None
        signed = layout.pixel_representation == 1
        if (
            layout.value_offset is None
            or header.transfer_syntax not in _RAW_IDENTICAL_SYNTAXES
            or meta.bits_allocated not in (8, 16, 32, 64)
            or (meta.samples_per_pixel > 1 and layout.planar_configuration != 0)
            or layout.photometric == "YBR_FULL_422"
            or (signed and meta.bits_stored != meta.bits_allocated)
        ):
            return None
        dtype = np.dtype(f"<{'i' if signed else 'u'}{meta.bits_allocated // 8}")
        mask = None if meta.bits_stored == meta.bits_allocated else (1 << meta.bits_stored) - 1
        offset, length = layout.value_offset, layout.expected_native_bytes
        return RawPixels(self.path, dtype, offset, length, mask, self._source.data)

    @property
    def has_pixels(self) -> bool:
        """False for a DICOM object without Pixel Data (SR, KOS, PR, RT plan, PDF, …): it has
        no frames, its metadata's image fields are all 0, and it is sealed without screening,
        its content digest standing for the pixel digest (docs/INGEST.md)."""
        return self.metadata.frames > 0

    def dataset(self) -> Dataset:
        """The whole DICOM data set, values included (for the content digest of an object
        without pixels); InvalidInput for PNG and JPEG."""
        if self._dicom is None:
            fail(self.path, f"a {self.format.upper()} file has no DICOM data set")
        with mapped_errors(self.path, "malformed DICOM"), self._source.open() as stream:
            return pydicom.dcmread(stream)

    def _check_index(self, index: int) -> None:
        count = self.metadata.frames
        if count == 0:
            fail(self.path, "DICOM object without Pixel Data: it has no frames to decode")
        if self._dicom is None and index != 0:
            fail(self.path, f"no frame {index}: a {self.format.upper()} file has frame 0 only")
        if not 0 <= index < count:
            fail(self.path, f"no frame {index}: frames are numbered 0 to {count - 1}")

    def _keep(self, index: int, frame: Frame) -> Frame:
        """Keep the middle frame, read-only so that no user can change it for the next."""
        if index == self.middle:
            frame.flags.writeable = False
            self._kept[index] = frame
        return frame

    def _rgb_as_stored(self) -> bool:
        """Whether pydicom's YCbCr to RGB step provably leaves this image's samples as stored.

        It converts only YBR_FULL and YBR_FULL_422, and a JPEG or JPEG-LS codestream can make
        pydicom reinterpret the declared colour space; grey images are never converted.
        """
        header = self._dicom
        if header is None or self.metadata.samples_per_pixel == 1:
            return True
        jpeg = header.transfer_syntax in (*JPEGTransferSyntaxes, *JPEGLSTransferSyntaxes)
        return not jpeg and header.pixels.photometric not in _YBR_CONVERTED

    def _decode_one(self, index: int, *, raw: bool) -> Frame:
        """Decode one frame; a single stored frame through the whole-image pass.

        The whole-image pass is what the digest has always decoded: it also checks that the
        Pixel Data holds no more frames than declared, which decoding by index does not.
        """
        if self._dicom is None or (raw and self.metadata.frames == 1):
            return self._decode_single()
        frames = _dicom.iter_frames(self._source, self._dicom, indices=[index], raw=raw)
        frame: Frame | None = next(frames, None)
        if frame is None:
            fail(self.path, f"undecodable Pixel Data: frame {index} missing", Unreadable)
        return frame

    def _decode_single(self) -> Frame:
        only: Frame | None = None
        for frame in self._decode_all():  # exactly one, or decoding fails at the end
            only = frame if only is None else only
        if only is None:
            fail(self.path, "undecodable Pixel Data: no frame decoded", Unreadable)
        return only

    def _decode_all(self) -> Iterator[Frame]:
        if self._dicom is None:
            return iter((_raster.decode_pixels(self.path, self.format),))
        return _dicom.iter_frames(self._source, self._dicom)


def read_image(path: Path) -> IngestedImage:
    """Recognise the format, parse and validate the header (limits included); decode nothing.

    Everything malformed, truncated, inconsistent or oversized in the header raises
    InvalidInput here, naming the file.
    """
    path = Path(path)
    fmt = format_of(Source(path))
    if fmt == "dicom":
        header = _dicom.read_header(Source(path))
        return IngestedImage(path, header.metadata, header)
    return IngestedImage(path, _raster.read_header(path, fmt), None)


def read_image_bytes(data: bytes, name: str) -> IngestedImage:
    """:func:`read_image` of a DICOM Part 10 file held in memory (what a DICOM receiver got):
    parsed and validated exactly as the file would be, errors naming it ``name``, and never
    written anywhere. PNG and JPEG are read from files only (InvalidInput here)."""
    source = Source(Path(name), data)
    if format_of(source) != "dicom":
        fail(source.path, "not a DICOM Part 10 file")
    header = _dicom.read_header(source)
    return IngestedImage(source.path, header.metadata, header, data)
