from rest_framework.authtoken.views import ObtainAuthToken


class ObtainTokenView(ObtainAuthToken):
    """POST username and password; answers {"token": ...} for `Authorization: Token ...`."""
