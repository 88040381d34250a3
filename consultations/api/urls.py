"""/api/v1/consultations/, /prescriptions/, /results/, /care-notes/, /patients/{id}/history/ and
/appointments/{id}/triage/."""

from django.urls import path

from opd.core.api.routers import IdRouter

from . import views

router = IdRouter()
router.register("consultations", views.ConsultationViewSet, basename="consultation")
router.register("prescriptions", views.PrescriptionViewSet, basename="prescription")
router.register("results", views.ResultViewSet, basename="result")
router.register("care-notes", views.CareNoteViewSet, basename="care-note")

urlpatterns = [
    path("patients/<int:pk>/history/", views.PatientHistoryView.as_view(), name="patient-history"),
    path("appointments/<int:pk>/triage/", views.TriageView.as_view(), name="appointment-triage"),
    *router.urls,
]
