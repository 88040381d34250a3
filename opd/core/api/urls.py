from django.urls import path

from opd.core.api.routers import IdRouter

from . import views

router = IdRouter()
router.register("organizations", views.OrganizationViewSet, basename="organization")
router.register("clinics", views.ClinicViewSet, basename="clinic")
router.register("departments", views.DepartmentViewSet, basename="department")

urlpatterns = [
    path("auth/token/", views.ObtainTokenView.as_view(), name="api-token"),
    *router.urls,
]
