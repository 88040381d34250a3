"""Pages of the live queue: the doctor's dashboard and the waiting-room display (scheduling.views)."""

from django.urls import path

from . import views

app_name = "queue"
urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("doctors/<int:pk>/", views.doctor_queue, name="doctor"),
    path("doctors/<int:pk>/board/", views.doctor_board, name="doctor-board"),
    path("doctors/<int:pk>/current/", views.doctor_current, name="doctor-current"),
    path("doctors/<int:pk>/call-next/", views.call_next, name="call-next"),
    path("appointments/<int:pk>/<slug:action>/", views.appointment_action, name="appointment-action"),
    path("waiting-rooms/", views.waiting_rooms, name="waiting-rooms"),
    path("clinics/<int:pk>/display/", views.waiting_room, name="waiting-room"),
    path("clinics/<int:pk>/display/board/", views.waiting_room_board, name="waiting-room-board"),
]
