"""Every write of the clinical record. The API, the pages and the admin call these and nothing else.

Who may write:
* consultations, their prescriptions and results: the doctor the appointment is assigned to
  (superusers too, for the admin); everyone else 403;
* addenda: the consultation's doctor, once it is completed (before that the draft itself is edited);
* care notes: staff and doctors at the clinic; edits by their author only;
* triage observations: nurses at the clinic (a staff capability per clinic membership), its doctors.
"""

from .care_notes import care_note_create, care_note_update
from .consultations import (
    CONSULTATION_FIELDS,
    OPENABLE,
    addendum_create,
    consultation_complete,
    consultation_open,
    consultation_update,
)
from .prescriptions import (
    ALLERGY_CONFLICT,
    ITEM_FIELDS,
    prescription_create,
    prescription_delete,
    prescription_update,
)
from .results import result_create, result_is_abnormal
from .triage import (
    TRIAGE_FIELDS,
    check_may_triage,
    is_rescore_due,
    may_triage_at,
    triage_record,
    triage_rescore_reminders,
)

__all__ = [
    "ALLERGY_CONFLICT",
    "CONSULTATION_FIELDS",
    "ITEM_FIELDS",
    "OPENABLE",
    "TRIAGE_FIELDS",
    "addendum_create",
    "care_note_create",
    "care_note_update",
    "check_may_triage",
    "consultation_complete",
    "consultation_open",
    "consultation_update",
    "is_rescore_due",
    "may_triage_at",
    "prescription_create",
    "prescription_delete",
    "prescription_update",
    "result_create",
    "result_is_abnormal",
    "triage_record",
    "triage_rescore_reminders",
]
