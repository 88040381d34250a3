"""/api/v1/slots/ and /api/v1/appointments/ (with /{id}/cancel/ and /{id}/reschedule/)."""

from opd.core.api.routers import IdRouter

from . import booking

router = IdRouter()
router.register("slots", booking.SlotViewSet, basename="slot")
router.register("appointments", booking.AppointmentViewSet, basename="appointment")

urlpatterns = router.urls
