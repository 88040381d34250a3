"""One door for every write: models are written by services, never by a view, form, serializer, admin,
consumer, task or command.

Three checks, each for a way a write slips past a service:
- in the code: every project module outside services (`services.py`, `services/`), migrations, tests
  and devtools is parsed and may not call a model write (`.save()`, `.delete()`, `.create()`,
  `get_or_create`, `update_or_create`, `bulk_create`, `bulk_update`, or `.update()` on a queryset).
  `insert`/`update` of a name bound to an `opd.core.db.RowWriter` (save()'s statements, prebuilt) count
  too. Many-to-many `add`/`set` and raw SQL are not looked for: write them in services all the same.
- in the admin: Django saves a form's row by default, with no call in our code to see. Every admin of
  ours that grants add, change or delete must say how it saves (`save_model`, `save_formset`,
  `delete_model`), and OpdModelAdminMixin's defaults refuse rather than save.
- in the API: DRF's create/update/destroy mixins save through the serializer by default.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.contrib import admin
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework import mixins

from opd.core.admin_mixins import ADD, CHANGE, DELETE, OpdModelAdminMixin, RoleScopedMixin

ROOT = Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = (
    "opd",
    "patients",
    "scheduling",
    "consultations",
    "notifications",
    "archive",
    "analytics",
    "portal",
    "billing",
)
ALWAYS_WRITES = {
    "save",
    "delete",
    "create",
    "get_or_create",
    "update_or_create",
    "bulk_create",
    "bulk_update",
}
# What makes a receiver a queryset, for `.update()` (a dict has one too).
QUERYSET_STEPS = {
    "objects",
    "_default_manager",
    "_base_manager",
    "filter",
    "exclude",
    "all",
    "select_for_update",
    "select_related",
    "prefetch_related",
    "order_by",
    "only",
    "defer",
    "annotate",
    "distinct",
    "using",
}

# Writes that are not a door's: (file, receiver.method) -> why. Keep it short: move a real write into a
# service rather than listing it here.
ALLOWED = {
    (
        "opd/core/audit.py",
        "_AUDIT_ROW.insert",
    ): "the audit helper; only services call it, in their transaction",
    (
        "opd/core/audit.py",
        "AuditEvent.bulk_create",
    ): "the access log: a request's buffered reads, written in one INSERT at the end of it",
    (
        "opd/core/db.py",
        "rows.update",
    ): "next_in_sequence, the counter helper services call in their transaction",
    ("opd/core/db.py", "model.create"): "next_in_sequence (see above)",
    (
        "opd/core/models.py",
        "self.update",
    ): "RecoveryCodeDevice.verify_token: django-otp's device API, as its "
    "TOTP device's, spends the code and moves the throttle; services call it in their transaction",
    ("opd/core/models.py", "self.save"): "RecoveryCodeDevice.verify_token (see above)",
    ("opd/core/idempotency.py", "IdempotencyRecord.create"): "the transport's replay cache of API answers",
    ("opd/core/idempotency.py", "record.save"): "the transport's replay cache of API answers",
    ("opd/core/views.py", "cache.delete"): "a cache key, not a model",
    # The session store (Django's session engine API, called by its middleware): the database copy and
    # the Redis copy of a session, not a record of the product's.
    ("opd/core/sessions.py", "db.save"): "the session engine (see above)",
    ("opd/core/sessions.py", "db.delete"): "the session engine",
    ("opd/core/sessions.py", "self.delete"): "a cache key, not a model",
    # Stored statistics: figures derived from appointments, rebuilt by the refresh task and marked stale
    # by the events' subscriber. A cache in tables, not a record anyone edits.
    ("analytics/summaries.py", "DailyStat.delete"): "derived statistics (see above)",
    ("analytics/summaries.py", "DailyStat.bulk_create"): "derived statistics",
    ("analytics/summaries.py", "DailyWait.delete"): "derived statistics",
    ("analytics/summaries.py", "SummaryDay.update"): "derived statistics",
    ("analytics/summaries.py", "SummaryDay.bulk_create"): "derived statistics",
    ("analytics/summaries.py", "SummaryLock.bulk_create"): "derived statistics",
}


def _root(node: ast.expr) -> str:
    """The name a call chain starts from: `DailyStat` in `DailyStat.objects.filter(...).delete`."""
    while isinstance(node, ast.Attribute | ast.Call | ast.Subscript):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else ast.unparse(node)


def _is_queryset(node: ast.expr, queryset_names: set[str]) -> bool:
    while True:
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Subscript):
            node = node.value
        elif isinstance(node, ast.Attribute):
            if node.attr in QUERYSET_STEPS:
                return True
            node = node.value
        else:
            return isinstance(node, ast.Name) and node.id in queryset_names


def _writes(source: str) -> list[tuple[int, str, str]]:
    """(line, "receiver.method", call) for each model write in `source`."""
    tree = ast.parse(source)
    # Names bound to a queryset anywhere in the module (`rows = Model.objects.filter(...)`).
    queryset_names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and _is_queryset(node.value, queryset_names):
            queryset_names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    # Names bound to a RowWriter (`_ROW = RowWriter(Model)`): its insert() and update() are save()'s.
    writer_names = {
        t.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Call)
        and _root(node.value) == "RowWriter"
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        method, receiver = node.func.attr, node.func.value
        by_writer = method in ("insert", "update") and _root(receiver) in writer_names
        if (
            method in ALWAYS_WRITES
            or by_writer
            or (method == "update" and _is_queryset(receiver, queryset_names))
        ):
            found.append((node.lineno, f"{_root(receiver)}.{method}", ast.unparse(node)[:100]))
    return found


def model_writes(source: str, path: str) -> list[str]:
    """`path:line: call` for each model write in `source` that ALLOWED does not list."""
    return sorted(
        f"{path}:{line}: {call}" for line, key, call in _writes(source) if (path, key) not in ALLOWED
    )


def _outside_services() -> list[Path]:
    files = []
    for package in PROJECT_PACKAGES:
        for file in (ROOT / package).rglob("*.py"):
            parts = file.relative_to(ROOT).parts
            if "migrations" in parts or file.name == "services.py" or "services" in parts[:-1]:
                continue
            files.append(file)
    return files


def test_it_finds_no_model_write_outside_services():
    found = []
    for file in _outside_services():
        found += model_writes(file.read_text(), file.relative_to(ROOT).as_posix())
    assert not found, "Model writes outside services (call a service instead):\n" + "\n".join(found)


def test_it_allows_nothing_that_is_not_there():
    seen = set()
    for file in _outside_services():
        path = file.relative_to(ROOT).as_posix()
        seen |= {(path, key) for _, key, _ in _writes(file.read_text())}
    assert not set(ALLOWED) - seen, "Stale ALLOWED entries: remove them"


def test_it_looks_at_every_door():
    looked_at = {file.relative_to(ROOT).as_posix() for file in _outside_services()}
    assert {"portal/views/account.py", "opd/core/admin.py", "scheduling/api/doctors.py"} <= looked_at
    assert not any("/services" in path or "/migrations/" in path for path in looked_at)


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("def view(request):\n    Clinic.objects.create(name='x')\n", "Clinic.objects.create(name='x')"),
        ("def view(request, clinic):\n    clinic.save()\n", "clinic.save()"),
        ("def view(request):\n    Slot.objects.filter(pk=1).update(is_active=False)\n", "update"),
        ("def view(request):\n    qs = Slot.objects.all()\n    qs.update(is_active=False)\n", "qs.update"),
        ("def view(request):\n    Slot.objects.filter(pk=1).delete()\n", "delete()"),
        ("def view(request, form):\n    form.save()\n", "form.save()"),
        ("def view(request, s):\n    s.save()\n", "s.save()"),
        ("def view(request, d):\n    d.departments.get_or_create(code='x')\n", "get_or_create"),
        ("def view(request):\n    User.objects.bulk_create([])\n", "bulk_create"),
        ("ROW = RowWriter(Slot)\ndef view(request, s):\n    ROW.insert(s)\n", "ROW.insert(s)"),
        ("ROW = RowWriter(Slot, ['seat'])\ndef view(request, s):\n    ROW.update(s)\n", "ROW.update(s)"),
    ],
)
def test_it_catches_a_model_write_in_a_view(snippet, expected):
    found = model_writes(snippet, "scheduling/api/views.py")
    assert len(found) == 1
    assert found[0].startswith("scheduling/api/views.py:")
    assert expected in found[0]


def test_it_leaves_dicts_and_the_allowed_calls_alone():
    snippet = "def f(cache):\n    context = {}\n    context.update(a=1)\n    cache.delete('k')\n"
    assert model_writes(snippet, "opd/core/views.py") == []
    # The allow-list is by file: the same call elsewhere is reported.
    assert len(model_writes(snippet, "portal/views/account.py")) == 1


def _grants(admin_or_inline) -> set[str]:
    if isinstance(admin_or_inline, RoleScopedMixin):
        granted = set(admin_or_inline.superuser_permissions or ())
        for perms in admin_or_inline.role_permissions.values():
            granted |= set(perms)
        return granted
    # A plain Django inline: editable unless every field is read-only and nothing can be deleted.
    editable = set(admin_or_inline.fields or ()) - set(admin_or_inline.readonly_fields)
    return ({CHANGE} if editable else set()) | ({DELETE} if admin_or_inline.can_delete else set())


def _defined_by_us(cls: type, name: str) -> bool:
    owner = next(klass for klass in cls.__mro__ if name in vars(klass))
    return owner is not OpdModelAdminMixin and not owner.__module__.startswith("django.")


# Third-party admins of models that are not ours; their apps own how they are written.
# axes: the lockout records, shown and deleted by superusers only (lifting a lockout is deleting them).
THIRD_PARTY_ADMINS = {"auth", "django_celery_beat", "axes"}


def test_every_admin_that_writes_says_which_service_it_calls():
    missing = []
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label in THIRD_PARTY_ADMINS:
            continue
        name = type(model_admin).__name__
        if not isinstance(model_admin, OpdModelAdminMixin):
            missing.append(f"{name}: not an OpdModelAdmin (its defaults would save)")
            continue
        grants = _grants(model_admin)
        if grants & {ADD, CHANGE} and not _defined_by_us(type(model_admin), "save_model"):
            missing.append(f"{name}.save_model")
        if DELETE in grants and not _defined_by_us(type(model_admin), "delete_model"):
            missing.append(f"{name}.delete_model")
        for inline_class in model_admin.inlines:
            inline = inline_class(model, admin.site)
            if _grants(inline) & {ADD, CHANGE, DELETE} and not _defined_by_us(
                type(model_admin), "save_formset"
            ):
                missing.append(f"{name}.save_formset (for {inline_class.__name__})")
    assert not missing, "Admins that would save without a service:\n" + "\n".join(missing)


def _views(patterns):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _views(pattern.url_patterns)
        elif isinstance(pattern, URLPattern) and getattr(pattern.callback, "cls", None):
            yield pattern.callback.cls


def test_no_api_view_saves_through_its_serializer():
    defaults = []
    for view in set(_views(get_resolver().url_patterns)):
        for mixin, methods in (
            (mixins.CreateModelMixin, ("create", "perform_create")),
            (mixins.UpdateModelMixin, ("update", "perform_update")),
            (mixins.DestroyModelMixin, ("destroy", "perform_destroy")),
        ):
            if issubclass(view, mixin) and all(getattr(view, m) is getattr(mixin, m) for m in methods):
                defaults.append(f"{view.__module__}.{view.__name__}: {mixin.__name__}'s default save")
    assert not defaults, "\n".join(defaults)
