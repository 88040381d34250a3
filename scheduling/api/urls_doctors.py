from django.urls import path

from opd.core.api.routers import IdRouter

from .doctors import AvailabilityExceptionViewSet, AvailabilityRuleViewSet, DoctorViewSet

router = IdRouter()
router.register("doctors", DoctorViewSet, basename="doctor")

rules = AvailabilityRuleViewSet.as_view({"get": "list", "post": "create"})
rule = AvailabilityRuleViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"})
exceptions = AvailabilityExceptionViewSet.as_view({"get": "list", "post": "create"})
exception = AvailabilityExceptionViewSet.as_view({"get": "retrieve", "delete": "destroy"})

urlpatterns = [
    *router.urls,
    path("doctors/<int:doctor_pk>/availability/", rules, name="doctor-availability-list"),
    path("doctors/<int:doctor_pk>/availability/<int:pk>/", rule, name="doctor-availability-detail"),
    path("doctors/<int:doctor_pk>/exceptions/", exceptions, name="doctor-exception-list"),
    path("doctors/<int:doctor_pk>/exceptions/<int:pk>/", exception, name="doctor-exception-detail"),
]
