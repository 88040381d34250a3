"""devtools is installed where the suite, `make run` and `make bench` run, and never in production."""

from __future__ import annotations

from django.urls import reverse

from tests.core.test_settings import manage, production_env


def test_the_ping_needs_nothing(api):
    response = api.get(reverse("devtools-ping"))

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_the_ping_is_not_part_of_the_api_contract(api):
    schema = api.get("/api/schema/?format=json").json()

    assert not [path for path in schema["paths"] if "ping" in path]


def test_production_settings_install_neither_seeding_nor_the_ping():
    probe = (
        "import django; django.setup(); from django.apps import apps; from django.urls import resolve, Resolver404\n"
        "print(apps.is_installed('devtools'))\n"
        "try:\n    resolve('/devtools/ping/'); print('routed')\nexcept Resolver404:\n    print('404')\n"
    )
    result = manage("shell", "--no-imports", "-c", probe, env=production_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "404"]

    seed = manage("seed_demo", env=production_env())
    assert seed.returncode != 0
    assert "Unknown command: 'seed_demo'" in seed.stderr
