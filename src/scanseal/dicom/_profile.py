"""The attributes of DICOM PS3.15 Table E.1-1 (Basic Application Level Confidentiality Profile).

Only the keywords pydicom knows are listed; anything the table does not name is still caught by
the generic rules in :mod:`scanseal.dicom.deid` (every UID re-mapped, every person name, date and
time emptied, private groups, curves and overlays removed), so an attribute missing here is not
a leak. Actions: ``X`` remove, ``Z`` keep empty, ``D`` replace by a keyed pseudonym.
"""

from __future__ import annotations

from typing import Final


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


REPLACE: Final = _names(
    """
    PatientID PatientName
    """
)

EMPTY: Final = _names(
    """
    AccessionNumber PatientBirthDate PatientSex StudyDate StudyTime ReferringPhysicianName
    StudyID ContentDate ContentTime ContentCreatorName ContrastBolusAgent VerifyingObserverName
    VerifyingObserverIdentificationCodeSequence FillerOrderNumberImagingServiceRequest
    PlacerOrderNumberImagingServiceRequest
    """
)

REMOVE: Final = _names(
    """
    AcquisitionComments AcquisitionDate AcquisitionDateTime AcquisitionTime
    ActualHumanPerformersSequence AdditionalPatientHistory AdmissionID
    AdmittingDiagnosesCodeSequence AdmittingDiagnosesDescription Allergies Arbitrary
    AuthorObserverSequence BranchOfService CassetteID CommentsOnThePerformedProcedureStep
    ConfidentialityConstraintOnPatientDataDescription ContentSequence CountryOfResidence
    CurrentPatientLocation CurveDate CurveTime DerivationDescription DetectorID
    DeviceSerialNumber DischargeDiagnosisDescription DistributionAddress DistributionName
    EthnicGroup GantryID GeneratorID HumanPerformerName HumanPerformerOrganization
    IconImageSequence IdentifyingComments ImageComments ImagePresentationComments
    ImagingServiceRequestComments InstanceCreationDate InstanceCreationTime InstanceCreatorUID
    InstitutionAddress InstitutionCodeSequence InstitutionName InstitutionalDepartmentName
    InsurancePlanIdentification IntendedRecipientsOfResultsIdentificationSequence
    InterpretationApproverSequence InterpretationAuthor InterpretationDiagnosisDescription
    InterpretationIDIssuer InterpretationRecorder InterpretationText InterpretationTranscriber
    IssuerOfAdmissionID IssuerOfPatientID LastMenstrualDate MedicalAlerts MedicalRecordLocator
    MilitaryRank ModifiedAttributesSequence ModifiedImageDescription ModifyingDeviceID
    NameOfPhysiciansReadingStudy NamesOfIntendedRecipientsOfResults Occupation
    OperatorIdentificationSequence OperatorsName OriginalAttributesSequence
    OrderCallbackPhoneNumber OrderEnteredBy OrderEntererLocation OtherPatientIDs
    OtherPatientIDsSequence OtherPatientNames ParticipantSequence PatientAddress PatientAge
    PatientBirthName PatientBirthTime PatientComments PatientInstitutionResidence
    PatientInsurancePlanCodeSequence PatientMotherBirthName PatientPrimaryLanguageCodeSequence
    PatientReligiousPreference PatientSize PatientState PatientTelephoneNumbers
    PatientTransportArrangements PatientWeight PerformedLocation
    PerformedProcedureStepDescription PerformedProcedureStepEndDate
    PerformedProcedureStepEndTime PerformedProcedureStepID PerformedProcedureStepStartDate
    PerformedProcedureStepStartTime PerformedStationAETitle
    PerformedStationGeographicLocationCodeSequence PerformedStationName
    PerformedStationNameCodeSequence PerformingPhysicianIdentificationSequence
    PerformingPhysicianName PersonAddress PersonIdentificationCodeSequence PersonName
    PersonTelephoneNumbers PhysicianApprovingInterpretation PhysiciansOfRecord
    PhysiciansOfRecordIdentificationSequence PhysiciansReadingStudyIdentificationSequence
    PlateID PreMedication PregnancyStatus ProtocolName ReasonForTheImagingServiceRequest
    ReasonForStudy ReferencedPatientAliasSequence ReferencedPatientSequence
    ReferencedStudySequence ReferringPhysicianAddress ReferringPhysicianIdentificationSequence
    ReferringPhysicianTelephoneNumbers RegionOfResidence RequestAttributesSequence
    RequestedContrastAgent RequestedProcedureComments RequestedProcedureDescription
    RequestedProcedureID RequestedProcedureLocation RequestingPhysician RequestingService
    ResponsibleOrganization ResponsiblePerson ResultsComments ResultsDistributionListSequence
    ResultsIDIssuer ScheduledHumanPerformersSequence ScheduledPatientInstitutionResidence
    ScheduledPerformingPhysicianIdentificationSequence ScheduledPerformingPhysicianName
    ScheduledProcedureStepDescription ScheduledProcedureStepEndDate
    ScheduledProcedureStepEndTime ScheduledProcedureStepLocation ScheduledProcedureStepStartDate
    ScheduledProcedureStepStartTime ScheduledStationAETitle
    ScheduledStationGeographicLocationCodeSequence ScheduledStationName
    ScheduledStationNameCodeSequence ScheduledStudyLocation ScheduledStudyLocationAETitle
    SeriesDate SeriesDescription SeriesTime ServiceEpisodeDescription ServiceEpisodeID
    SmokingStatus SoftwareVersions SourceImageSequence SpecialNeeds StationName StudyComments
    StudyDescription StudyIDIssuer TextComments TextString TimezoneOffsetFromUTC TopicAuthor
    TopicKeywords TopicSubject TopicTitle VerifyingOrganization VisitComments
    """
)

PATIENT_CHARACTERISTICS: Final = _names(
    """
    PatientSex PatientAge PatientSize PatientWeight EthnicGroup SmokingStatus PregnancyStatus
    """
)
"""Kept under option 113108 (Retain Patient Characteristics)."""

DEVICE_IDENTITY: Final = _names(
    """
    StationName DeviceSerialNumber DetectorID GantryID PlateID CassetteID GeneratorID
    SoftwareVersions DeviceUID
    """
)
"""Kept under option 113109 (Retain Device Identity)."""
