"""The files both de-identification checks run on: dciodvfy before and after
(test_deid_validity.py) and Orthanc's anonymizer beside ScanSeal's (test_deid_orthanc.py).

One or two of each kind pydicom and pydicom-data ship, found by name, so the list stays small
and fast: CT, MR, US, CR, NM, SC, RT, SR, SEG, ECG, enhanced MR and CT, in several encodings.
"""

from __future__ import annotations

from pathlib import Path

from pydicom.data import get_testdata_file

NAMES: tuple[str, ...] = (
    # CT, enhanced CT
    "CT_small.dcm", "693_UNCR.dcm", "explicit_VR-UN.dcm", "eCT_Supplemental.dcm",
    # MR (RLE, big endian, implicit VR, overlays), enhanced MR
    "MR_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm",
    "MR-SIEMENS-DICOM-WithOverlays.dcm", "MR2_UNCR.dcm", "examples_overlay.dcm", "emri_small.dcm",
    # US, single and multi-frame
    "US1_UNCR.dcm", "OBXXXX1A.dcm", "examples_ybr_color.dcm", "gdcm-US-ALOKA-16.dcm",
    "color3d_jpeg_baseline.dcm", "JPGLosslessP14SV1_1s_1f_8b.dcm",
    # CR
    "RG1_UNCR.dcm", "RG3_UNCR.dcm",
    # NM (as secondary capture) and SC (deflate, LUTs)
    "JPEG-LL.dcm", "JPEG2000.dcm", "SC_rgb.dcm", "SC_rgb_rle.dcm", "image_dfl.dcm",
    "mlut_18.dcm", "vlut_04.dcm",
    # RT, SR, SEG, ECG
    "rtplan.dcm", "rtdose.dcm", "reportsi.dcm", "test-SR.dcm", "liver.dcm",
    "waveform_ecg.dcm",
)  # fmt: skip


def corpus() -> list[Path]:
    """The files of :data:`NAMES` on this machine (pydicom's test files and pydicom-data)."""
    return [Path(str(get_testdata_file(name))) for name in NAMES]
