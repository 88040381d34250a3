"""Pages of the clinical record (consultation panel, printable prescription), mounted at /consultations/."""

from django.urls import path

from . import record_views, triage_views, views

app_name = "consultations"
urlpatterns = [
    path("appointments/<int:appointment_id>/panel/", views.panel, name="panel"),
    path("appointments/<int:appointment_id>/panel/open/", views.panel_open, name="panel-open"),
    path("appointments/<int:appointment_id>/panel/save/", views.panel_save, name="panel-save"),
    path(
        "appointments/<int:appointment_id>/panel/prescription/",
        views.panel_prescription,
        name="panel-prescription",
    ),
    path("appointments/<int:appointment_id>/panel/complete/", views.panel_complete, name="panel-complete"),
    path("appointments/<int:appointment_id>/record/", record_views.record, name="record"),
    path(
        "appointments/<int:appointment_id>/record/addenda/",
        record_views.record_addendum,
        name="record-addendum",
    ),
    path("prescriptions/<int:pk>/print/", views.prescription_print, name="prescription-print"),
    path("patients/<int:patient_id>/break-glass/", views.break_glass, name="break-glass"),
    path("triage/clinics/<int:clinic_id>/", triage_views.triage, name="triage"),
    path("triage/clinics/<int:clinic_id>/board/", triage_views.triage_board, name="triage-board"),
    path(
        "triage/appointments/<int:appointment_id>/record/",
        triage_views.triage_record_view,
        name="triage-record",
    ),
    path("appointments/<int:appointment_id>/summary/", triage_views.summary, name="summary"),
]
