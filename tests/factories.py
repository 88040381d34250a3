from __future__ import annotations

import datetime as dt

import factory
from django.utils import timezone

from opd.core.models import Clinic, Department, Membership, Organization, Role, User
from patients.models import Patient
from patients.services import patient_create
from scheduling.models import ApprovalStatus, Doctor, Slot


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Health Group {n}")
    slug = factory.Sequence(lambda n: f"group-{n}")


class ClinicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Clinic

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Clinic {n}")
    code = factory.Sequence(lambda n: f"c{n}")
    time_zone = "Europe/London"


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Department

    clinic = factory.SubFactory(ClinicFactory)
    name = factory.Sequence(lambda n: f"Department {n}")
    code = factory.Sequence(lambda n: f"d{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    role = Role.STAFF
    organization = factory.SubFactory(OrganizationFactory)
    password = factory.django.Password("pass-word-123")
    # Like accounts the clinic creates; tests of self sign-up pass email_verified_at=None.
    email_verified_at = factory.LazyFunction(timezone.now)

    @factory.post_generation
    def clinics(self, create, extracted, **kwargs):
        for clinic in extracted or []:
            Membership.objects.create(user=self, clinic=clinic)


class DoctorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Doctor
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory, role=Role.DOCTOR)
    organization = factory.SelfAttribute("user.organization")
    specialization = "General practice"
    license_number = factory.Sequence(lambda n: f"LIC-{n:06d}")
    approval_status = ApprovalStatus.APPROVED

    @factory.post_generation
    def departments(self, create, extracted, **kwargs):
        for dept in extracted or []:
            self.departments.add(dept)
            Membership.objects.get_or_create(user=self.user, clinic=dept.clinic)


class PatientFactory(factory.django.DjangoModelFactory):
    """Registered through the service, so MRNs come from the real sequence."""

    class Meta:
        model = Patient

    organization = factory.SubFactory(OrganizationFactory)
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    date_of_birth = dt.date(1980, 5, 17)
    phone = factory.Sequence(lambda n: f"+44 20 7946 {n:04d}")  # stored in E.164 by patient_create
    email = factory.Sequence(lambda n: f"patient{n}@example.org")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        organization = kwargs.pop("organization")
        user = kwargs.pop("user", None)
        status = kwargs.pop("status", None)
        # Made-up people share a birthday and may draw alike names: tests of duplicate detection call
        # patient_create themselves.
        kwargs.setdefault("confirm_new_patient", True)
        patient = patient_create(actor=None, organization=organization, user=user, **kwargs)
        if status:
            patient.status = status
            patient.save(update_fields=["status"])
        return patient


class SlotFactory(factory.django.DjangoModelFactory):
    """A slot made directly (tests of booking); generation from availability has its own tests."""

    class Meta:
        model = Slot

    department = factory.SubFactory(DepartmentFactory)
    clinic = factory.SelfAttribute("department.clinic")
    organization = factory.SelfAttribute("department.clinic.organization")
    doctor = factory.LazyAttribute(
        lambda o: DoctorFactory(user__organization=o.organization, departments=[o.department])
    )
    start = factory.Sequence(
        lambda n: timezone.now().replace(microsecond=0) + dt.timedelta(days=1, minutes=15 * n)
    )
    end = factory.LazyAttribute(lambda o: o.start + dt.timedelta(minutes=15))
    date = factory.LazyAttribute(lambda o: timezone.localtime(o.start, o.clinic.tz).date())
    capacity = 1
