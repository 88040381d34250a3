"""Pages of the patient's safety data (allergies, problems, medications), mounted at /patients/."""

from django.urls import path

from . import views

app_name = "patients"
urlpatterns = [
    path("<int:patient_id>/safety/", views.safety, name="safety"),
    path("<int:patient_id>/safety/no-known-allergies/", views.no_known_allergies, name="no-known-allergies"),
    path("<int:patient_id>/safety/<slug:kind>/add/", views.add, name="safety-add"),
    path("<int:patient_id>/safety/<slug:kind>/<int:pk>/", views.edit, name="safety-edit"),
    path("<int:patient_id>/safety/<slug:kind>/<int:pk>/close/", views.close, name="safety-close"),
]
