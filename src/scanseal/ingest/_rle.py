"""RLE Lossless decoding that a crafted frame cannot crash.

pylibjpeg-rle (2.x) decodes each segment straight into the frame buffer, but its bounds check
counts output bytes as if they were contiguous while, for samples wider than one byte, they are
``BitsAllocated / 8`` bytes apart. A segment that decodes to more than one byte per pixel
therefore indexes past the buffer and the Rust code panics: a ``PanicException``, which derives
from ``BaseException`` (so ``except Exception`` misses it) and prints a Rust backtrace on
stderr first. Valid files never do this.

This module is a pydicom decoder plugin that checks, before pylibjpeg-rle sees a frame of
16-, 32- or 64-bit samples, that no segment decodes past its pixel count, and then hands the
frame to pydicom's own pylibjpeg plugin unchanged. The check is itself a pylibjpeg-rle call,
on one segment at a time as an 8-bit frame one pixel larger: with one byte per pixel the
library's bounds are right, it stops at the buffer's end instead of failing, and so it
returns a frame only when the segment is longer than the pixel count. Eight-bit frames go to
the library as they are (its handling of them is sound). Selecting this plugin explicitly also
keeps pydicom from falling back to its lenient pure-Python decoder when the library refuses a
frame, so a frame decodes the same way for sealing and for verification.
"""

from __future__ import annotations

import struct
from contextlib import suppress
from itertools import pairwise
from typing import Final

from pydicom.pixels.decoders import pylibjpeg as _pylibjpeg
from pydicom.pixels.decoders.base import DecodeRunner, get_decoder
from pydicom.uid import RLELossless
from rle.rle import decode_frame as _decode_rle  # type: ignore[import-not-found]

from scanseal.ingest._common import decoder_panic

PLUGIN: Final = "scanseal-rle"
"""The label this plugin is registered under with pydicom's RLE Lossless decoder."""

DECODER_DEPENDENCIES = {RLELossless: ("pylibjpeg>=2.0", "pylibjpeg-rle>=2.0")}
_HEADER = struct.Struct("<16I")
_ONE_SEGMENT = _HEADER.pack(1, _HEADER.size, *([0] * 14))


def is_available(uid: str) -> bool:
    """pydicom's plugin protocol: available exactly when pydicom's pylibjpeg plugin is."""
    return bool(_pylibjpeg.is_available(uid))


def decode_frame(src: bytes, runner: DecodeRunner) -> bytes | bytearray:
    """pydicom's plugin protocol: check the segments of ``src``, then decode it with pylibjpeg."""
    if runner.bits_allocated > 8:
        _check_segments(src, runner.rows * runner.columns)
    frame: bytes | bytearray = _pylibjpeg._decode_frame(src, runner)
    return frame


def _check_segments(src: bytes, pixels: int) -> None:
    """Refuse a frame with a segment that decodes to more than ``pixels`` bytes.

    Offsets the library itself refuses (first not 64, not increasing, past the end) are left
    to it: it checks them before it decodes anything.
    """
    if len(src) < _HEADER.size:
        return
    _, *declared = _HEADER.unpack_from(src)
    bounds = [offset for offset in declared if offset] + [len(src)]
    if bounds[0] != _HEADER.size or any(a >= b for a, b in pairwise(bounds)):
        return
    for number, (start, end) in enumerate(pairwise(bounds), start=1):
        if _decodes_past(src[start:end], pixels):
            raise ValueError(f"RLE segment {number} decodes to more than {pixels} bytes")


def _decodes_past(segment: bytes, pixels: int) -> bool:
    """Whether ``segment`` decodes to more than ``pixels`` bytes (see the module docstring)."""
    try:
        _decode_rle(_ONE_SEGMENT + segment, pixels + 1, 8, "<")
    except ValueError:  # too short, or a run past the data: not longer, at least
        return False
    except BaseException as error:
        if decoder_panic(error):
            return True
        raise
    return True


def register() -> None:
    """Add the plugin to pydicom's RLE Lossless decoder (once; pydicom keeps it globally)."""
    with suppress(ValueError):  # pydicom: "already has a plugin named ..."
        get_decoder(RLELossless).add_plugin(PLUGIN, (__name__, "decode_frame"))
