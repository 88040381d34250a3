from django.urls import path
from rest_framework.routers import SimpleRouter

from .doctors import AvailabilityExceptionViewSet, AvailabilityRuleViewSet, DoctorViewSet

router = SimpleRouter()
router.register("doctors", DoctorViewSet, basename="doctor")

rules = AvailabilityRuleViewSet.as_view({"get": "list", "post": "create"})
rule = AvailabilityRuleViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"})
exceptions = AvailabilityExceptionViewSet.as_view({"get": "list", "post": "create"})
exception = AvailabilityExceptionViewSet.as_view({"get": "retrieve", "delete": "destroy"})

urlpatterns = [
    *router.urls,
    path("doctors/<doctor_pk>/availability/", rules, name="doctor-availability-list"),
    path("doctors/<doctor_pk>/availability/<pk>/", rule, name="doctor-availability-detail"),
    path("doctors/<doctor_pk>/exceptions/", exceptions, name="doctor-exception-list"),
    path("doctors/<doctor_pk>/exceptions/<pk>/", exception, name="doctor-exception-detail"),
]
