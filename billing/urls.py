"""The desk's money pages under /billing/ (namespace "billing")."""

from django.urls import path

from . import views

app_name = "billing"
urlpatterns = [
    path("invoices/<int:pk>/receipt/", views.receipt, name="receipt"),
    path("cash-up/", views.cash_up_page, name="cash-up"),
]
