"""The patient portal under /portal/ (namespace "portal")."""

from django.urls import path

from . import views

app_name = "portal"
urlpatterns = [
    path("", views.index, name="index"),
    path("after-login/", views.after_login, name="after-login"),
    path("signup/", views.signup, name="signup"),
    path("c/<slug:organization>/<slug:clinic>/signup/", views.signup_at_clinic, name="signup-at-clinic"),
    path("verify-email/resend/", views.verify_email_resend, name="verify-email-resend"),
    path("verify-email/<str:token>/", views.verify_email, name="verify-email"),
    path("find/", views.find, name="find"),
    path("book/<int:slot_id>/", views.book, name="book"),
    path(
        "book/first-available/<int:department_id>/",
        views.book_first_available,
        name="book-first-available",
    ),
    path("appointments/", views.appointments, name="appointments"),
    path("appointments/<int:pk>/", views.appointment_detail, name="appointment"),
    path("appointments/<int:pk>/confirmed/", views.confirmation, name="confirmation"),
    path("appointments/<int:pk>/calendar.ics", views.appointment_calendar, name="appointment-ics"),
    path("appointments/<int:pk>/cancel/", views.cancel, name="cancel"),
    path("appointments/<int:pk>/reschedule/", views.reschedule, name="reschedule"),
    path("record/", views.record, name="record"),
    path("record/accesses/", views.accesses, name="accesses"),
    path("bills/", views.bills, name="bills"),
    path("profile/", views.profile, name="profile"),
    path("messages/", views.inbox, name="messages"),
    path("messages/read-all/", views.mark_all_read, name="messages-read-all"),
    path("messages/<int:pk>/read/", views.mark_read, name="message-read"),
]
