from django.urls import path

from opd.core.api.routers import IdRouter

from .allergies import AllergyDetailView, NoKnownAllergiesView, PatientAllergiesView
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
    *router.urls,
]
