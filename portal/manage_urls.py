"""The manage-booking link under /m/ (namespace "manage"): short, because it travels in SMS too."""

from django.urls import path

from .views import manage

app_name = "manage"
urlpatterns = [
    path("<str:token>/", manage.page, name="page"),
    path("<str:token>/calendar.ics", manage.calendar_file, name="ics"),
    path("<str:token>/cancel/", manage.cancel, name="cancel"),
    path("<str:token>/reschedule/", manage.reschedule, name="reschedule"),
]
