"""Pages of the live queue: the doctor's dashboard and the waiting-room display."""

app_name = "queue"
urlpatterns: list = []
