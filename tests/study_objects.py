"""Objects of one study for the tests: CT images and the objects without pixels a study holds.

pydicom ships an RT plan and two SRs; a key-object selection, a presentation state and an
encapsulated PDF are written here with pydicom, each a minimal but valid instance of its SOP
class (the modules PS3.3 makes Type 1 for it, no Pixel Data). Every object is re-identified into
one study (fresh SOP Instance UIDs, the given Study Instance UID), so tests never collide with
the records of another test.
"""

from __future__ import annotations

from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

KOS = "1.2.840.10008.5.1.4.1.1.88.59"
GSPS = "1.2.840.10008.5.1.4.1.1.11.1"
PDF = "1.2.840.10008.5.1.4.1.1.104.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
_PDF_BYTES = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def _into_study(ds: Dataset, study: str, series: str | None = None) -> Dataset:
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series or generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName, ds.PatientID = "Study^Test", "STUDY01"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    return ds


def _new(sop_class: str, modality: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.Modality = modality
    ds.StudyDate = ds.ContentDate = "20261201"
    ds.StudyTime, ds.ContentTime = "101500", "101600"
    ds.SeriesNumber, ds.InstanceNumber = 99, 1
    return ds


def _reference(ct: Dataset) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = ct.SOPClassUID
    item.ReferencedSOPInstanceUID = ct.SOPInstanceUID
    return item


def key_objects(ct: Dataset) -> Dataset:
    """A key-object selection naming ``ct`` (of_interest), in ``ct``'s study."""
    ds = _new(KOS, "KO")
    concept = Dataset()
    concept.CodeValue, concept.CodingSchemeDesignator = "113000", "DCM"
    concept.CodeMeaning = "Of Interest"
    ds.ValueType, ds.ContinuityOfContent = "CONTAINER", "SEPARATE"
    ds.ConceptNameCodeSequence = Sequence([concept])
    series = Dataset()
    series.SeriesInstanceUID = ct.SeriesInstanceUID
    series.ReferencedSOPSequence = Sequence([_reference(ct)])
    study = Dataset()
    study.StudyInstanceUID = ct.StudyInstanceUID
    study.ReferencedSeriesSequence = Sequence([series])
    ds.CurrentRequestedProcedureEvidenceSequence = Sequence([study])
    return _into_study(ds, ct.StudyInstanceUID)


def presentation_state(ct: Dataset) -> Dataset:
    """A grayscale softcopy presentation state on ``ct``."""
    ds = _new(GSPS, "PR")
    ds.ContentLabel = "WINDOW"
    ds.PresentationCreationDate, ds.PresentationCreationTime = "20261201", "101700"
    series = Dataset()
    series.SeriesInstanceUID = ct.SeriesInstanceUID
    series.ReferencedImageSequence = Sequence([_reference(ct)])
    ds.ReferencedSeriesSequence = Sequence([series])
    ds.PresentationLUTShape = "IDENTITY"
    return _into_study(ds, ct.StudyInstanceUID)


def encapsulated_pdf(study: str) -> Dataset:
    """An encapsulated PDF report."""
    ds = _new(PDF, "DOC")
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.DocumentTitle = "Report"
    ds.BurnedInAnnotation = "YES"
    ds.EncapsulatedDocument = _PDF_BYTES + (b"\0" if len(_PDF_BYTES) % 2 else b"")
    return _into_study(ds, study)


def from_pydicom(name: str, study: str) -> Dataset:
    """A pydicom test file (``rtplan.dcm``, ``test-SR.dcm``…) moved into ``study``."""
    return _into_study(pydicom.dcmread(str(get_testdata_file(name))), study)


def ct_images(study: str, count: int, series: str | None = None) -> list[Dataset]:
    """``count`` CT images of one series of ``study`` (CT_small.dcm, fresh UIDs)."""
    series = series or generate_uid()
    images = []
    for number in range(count):
        ds = _into_study(pydicom.dcmread(str(get_testdata_file("CT_small.dcm"))), study, series)
        ds.InstanceNumber = number + 1
        images.append(ds)
    return images


def non_image_objects(study: str, ct: Dataset) -> list[Dataset]:
    """An RT plan, two SRs, a key-object selection, a presentation state and a PDF."""
    return [
        from_pydicom("rtplan.dcm", study),
        from_pydicom("test-SR.dcm", study),
        from_pydicom("reportsi.dcm", study),
        key_objects(ct),
        presentation_state(ct),
        encapsulated_pdf(study),
    ]


def mixed_study(count: int = 3, study: str | None = None) -> list[Dataset]:
    """A study of ``count`` CT images and every kind of object without pixels above."""
    study = study or generate_uid()
    images = ct_images(study, count)
    return [*images, *non_image_objects(study, images[0])]


def write(datasets: list[Dataset], directory: Path) -> list[Path]:
    """Each data set as ``directory/<SOPInstanceUID>.dcm``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for ds in datasets:
        path = directory / f"{ds.SOPInstanceUID}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
