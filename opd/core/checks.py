"""System checks of the deployment's own security settings (`manage.py check --deploy`)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def second_factor_required(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    if getattr(settings, "OPD_REQUIRE_SECOND_FACTOR", True):
        return []
    return [
        Warning(
            "OPD_REQUIRE_SECOND_FACTOR is off: administrators, staff and doctors sign in with a password "
            "alone, whatever their organization requires.",
            hint="Unset OPD_REQUIRE_SECOND_FACTOR (it defaults to on) unless this deployment only serves "
            "automated clients or test rigs.",
            id="opd.W001",
        )
    ]
