"""Pages of the clinical record (consultation panel, printable prescription)."""

app_name = "consultations"
urlpatterns: list = []
