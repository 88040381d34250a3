from opd.core.api.routers import IdRouter

from .views import PatientViewSet

router = IdRouter()
router.register("patients", PatientViewSet, basename="patient")

urlpatterns = router.urls
