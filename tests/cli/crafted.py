"""Hostile inputs built in code for the fault tests (CLI here, the Storage SCP in tests/dicom)."""

from __future__ import annotations

import struct
from itertools import pairwise
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import generate_uid

MR_RLE = Path(str(get_testdata_file("MR_small_RLE.dcm")))  # 64 × 64, 16-bit, one frame
_HEADER = struct.Struct("<16I")


def crafted_rle(path: Path) -> Path:
    """MR_small_RLE.dcm whose first RLE segment decodes 128 bytes past its 4096 pixels.

    One replicate run (0x81: 128 copies) is put in front of the segment holding the high bytes;
    pylibjpeg-rle 2.x, writing those bytes two apart, indexes past its frame buffer and panics.
    A fresh SOP Instance UID keeps it apart from the real file in any index.
    """
    ds = pydicom.dcmread(MR_RLE)
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    _, *declared = _HEADER.unpack_from(frame)
    bounds = [offset for offset in declared if offset] + [len(frame)]
    segments = [frame[a:b] for a, b in pairwise(bounds)]
    segments[0] = b"\x81\x00" + segments[0]
    starts, position = [], _HEADER.size
    for segment in segments:
        starts.append(position)
        position += len(segment)
    header = _HEADER.pack(len(segments), *starts, *[0] * (15 - len(segments)))
    ds.PixelData = encapsulate([header + b"".join(segments)])
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(path)
    return path
