"""/api/v1/: check-in and the doctor's queue actions, and the queue snapshots (scheduling.api.queue)."""

from django.urls import path

from . import queue

urlpatterns = [
    path("appointments/<int:pk>/check-in/", queue.CheckInView.as_view(), name="appointment-check-in"),
    path("appointments/<int:pk>/start/", queue.StartView.as_view(), name="appointment-start"),
    path("appointments/<int:pk>/complete/", queue.CompleteView.as_view(), name="appointment-complete"),
    path("appointments/<int:pk>/no-show/", queue.NoShowView.as_view(), name="appointment-no-show"),
    path(
        "appointments/<int:pk>/undo-no-show/", queue.UndoNoShowView.as_view(), name="appointment-undo-no-show"
    ),
    path("appointments/<int:pk>/undo-skip/", queue.UndoSkipView.as_view(), name="appointment-undo-skip"),
    path("appointments/<int:pk>/skip/", queue.SkipView.as_view(), name="appointment-skip"),
    path("appointments/<int:pk>/recall/", queue.RecallView.as_view(), name="appointment-recall"),
    path("doctors/<int:pk>/queue/", queue.DoctorQueueView.as_view(), name="doctor-queue"),
    path("doctors/<int:pk>/queue/call-next/", queue.CallNextView.as_view(), name="doctor-queue-call-next"),
    path("clinics/<int:pk>/queue/", queue.ClinicQueueView.as_view(), name="clinic-queue"),
]
