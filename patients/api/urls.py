from django.urls import path

from opd.core.api.routers import IdRouter

from .allergies import AllergyDetailView, NoKnownAllergiesView, PatientAllergiesView
from .history import (
    MedicationDetailView,
    MedicationStopView,
    PatientMedicationsView,
    PatientProblemsView,
    ProblemDetailView,
    ProblemResolveView,
)
from .views import PatientViewSet

router = IdRouter()
router.register("patients", PatientViewSet, basename="patient")

urlpatterns = [
    path("patients/<int:patient_id>/allergies/", PatientAllergiesView.as_view(), name="patient-allergies"),
    path(
        "patients/<int:patient_id>/allergies/no-known/",
        NoKnownAllergiesView.as_view(),
        name="patient-no-known-allergies",
    ),
    path("allergies/<int:pk>/", AllergyDetailView.as_view(), name="allergy-detail"),
    path("patients/<int:patient_id>/problems/", PatientProblemsView.as_view(), name="patient-problems"),
    path("problems/<int:pk>/", ProblemDetailView.as_view(), name="problem-detail"),
    path("problems/<int:pk>/resolve/", ProblemResolveView.as_view(), name="problem-resolve"),
    path(
        "patients/<int:patient_id>/medications/", PatientMedicationsView.as_view(), name="patient-medications"
    ),
    path("medications/<int:pk>/", MedicationDetailView.as_view(), name="medication-detail"),
    path("medications/<int:pk>/stop/", MedicationStopView.as_view(), name="medication-stop"),
    *router.urls,
]
