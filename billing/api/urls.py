"""/api/v1/invoices/ (with /{id}/payments/ and /{id}/refunds/) and /api/v1/me/invoices/."""

from django.urls import path

from opd.core.api.routers import IdRouter

from . import views

router = IdRouter()
router.register("invoices", views.InvoiceViewSet, basename="invoice")

urlpatterns = [path("me/invoices/", views.MyInvoicesView.as_view(), name="my-invoices"), *router.urls]
