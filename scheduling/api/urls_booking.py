"""/api/v1/slots/ and /api/v1/appointments/ (with /{id}/cancel/ and /{id}/reschedule/)."""

from rest_framework.routers import SimpleRouter

from . import booking

router = SimpleRouter()
router.register("slots", booking.SlotViewSet, basename="slot")
router.register("appointments", booking.AppointmentViewSet, basename="appointment")

urlpatterns = router.urls
