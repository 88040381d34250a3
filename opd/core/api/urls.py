from django.urls import path

from opd.core.api.routers import IdRouter

from . import views

router = IdRouter()
router.register("organizations", views.OrganizationViewSet, basename="organization")
router.register("clinics", views.ClinicViewSet, basename="clinic")
router.register("departments", views.DepartmentViewSet, basename="department")
router.register("auth/tokens", views.ApiTokenViewSet, basename="api-token-item")

urlpatterns = [
    path("auth/token/", views.ObtainTokenView.as_view(), name="api-token"),
    path("auth/logout/", views.LogoutView.as_view(), name="api-logout"),
    path("auth/ws-ticket/", views.WsTicketView.as_view(), name="api-ws-ticket"),
    *router.urls,
]
