"""/api/v1/consultations/, /prescriptions/, /results/, /care-notes/ and /patients/{id}/history/."""

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
    *router.urls,
]
