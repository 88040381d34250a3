"""Demo data to try the product with: one organization, two clinics in different time zones, approved
doctors with weekly schedules, 50 patients, a sign-in for each role, a few appointments tomorrow, and
today's live queue for every doctor (patients checked in with tokens, one in consultation, some seen,
one no-show), so the dashboard and the waiting room open on a working day.

Idempotent: everything is looked up by a stable key first, so a second run changes nothing. Every write
goes through the services the admin and the API use (and is audited like theirs). The
passwords are fixed and printed, which is acceptable only because this is demo data: the command
refuses to run with DEBUG off unless --force says this really is a demo database.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from consultations.services import consultation_complete, consultation_open
from devtools.authenticator import code_for, key_of
from devtools.management.commands.seed_scale import SCALE_OPTIONS, add_scale_arguments, run_scale
from opd.core.crypto import blind_index_candidates
from opd.core.errors import Conflict
from opd.core.models import Clinic, Department, Membership, Organization, Role, User
from opd.core.services import (
    clinic_create,
    department_create,
    membership_add,
    membership_set_nurse,
    organization_create,
    second_factor_enrolment_begin,
    second_factor_enrolment_confirm,
    user_change_role,
    user_create,
    user_reactivate,
    user_set_password,
    user_update,
)
from patients.models import Allergy, Medication, Patient, Problem, Sex
from patients.services import (
    allergy_record,
    allergy_set_no_known_allergies,
    medication_add,
    patient_create,
    problem_add,
)
from scheduling.models import (
    Appointment,
    AppointmentStatus,
    ApprovalStatus,
    AvailabilityException,
    AvailabilityRule,
    BookingChannel,
    Doctor,
    ExceptionKind,
    Slot,
)
from scheduling.selectors import local_day_bounds
from scheduling.services import (
    appointment_book,
    appointment_check_in,
    appointment_mark_no_show,
    appointment_start,
    availability_exception_create,
    availability_rule_create,
    doctor_create,
    doctor_set_approval,
    doctor_update,
    queue_call_next,
    slots_generate,
)

SEED = 1729  # the same names, birthdays and phone numbers on every machine
PATIENT_COUNT = 50
DAYS_OF_SLOTS = 14
APPOINTMENTS_PER_DOCTOR = 3
SLOT_MINUTES = 15

ORGANIZATION = {"slug": "demo", "name": "Demo Health Group"}
# Reception may check patients in from two hours before their appointment (the clinics' setting).
CHECKIN_OPENS_MINUTES = 120


@dataclass(frozen=True)
class ClinicSpec:
    code: str
    name: str
    time_zone: str
    address: str
    phone: str
    departments: tuple[tuple[str, str], ...]


CLINICS = (
    ClinicSpec(
        "london",
        "Demo London Clinic",
        "Europe/London",
        "1 Example Street, London EC1A 1AA",
        "+44 20 7946 0000",
        (("gen", "General medicine"), ("paed", "Paediatrics")),
    ),
    ClinicSpec(
        "kolkata",
        "Demo Kolkata Clinic",
        "Asia/Kolkata",
        "12 Park Street, Kolkata 700016",
        "+91 33 4000 0000",
        (("gen", "General medicine"), ("cardio", "Cardiology")),
    ),
)


@dataclass(frozen=True)
class DoctorSpec:
    username: str
    first_name: str
    last_name: str
    clinic: str
    department: str
    specialization: str
    license_number: str
    room: str


DOCTORS = (
    DoctorSpec(
        "demo-dr-hart", "Amelia", "Hart", "london", "gen", "General practice", "DEMO-GMC-1001", "Room 1"
    ),
    DoctorSpec(
        "demo-dr-okafor", "Samuel", "Okafor", "london", "paed", "Paediatrics", "DEMO-GMC-1002", "Room 2"
    ),
    DoctorSpec(
        "demo-dr-sen", "Priya", "Sen", "kolkata", "gen", "General medicine", "DEMO-NMC-2001", "Room 11"
    ),
    DoctorSpec(
        "demo-dr-banerjee", "Arjun", "Banerjee", "kolkata", "cardio", "Cardiology", "DEMO-NMC-2002", "Room 12"
    ),
)

# Weekly sessions in clinic local time. Every day has one, so each of the next 14 days has slots.
WEEKDAY_SESSIONS = ((dt.time(9), dt.time(12, 30)), (dt.time(14), dt.time(17)))
WEEKEND_SESSIONS = ((dt.time(10), dt.time(13)),)

# Demo credentials: published here on purpose. Never reuse them anywhere real.
PASSWORDS = {
    "superuser": "master-keys-2468",
    Role.ADMIN: "run-the-org-2468",
    Role.STAFF: "front-desk-2468",
    "nurse": "take-vitals-2468",
    Role.DOCTOR: "stethoscope-2468",
    Role.PATIENT: "see-my-doctor-2468",
}

NAMES = {
    # clinic code -> (female first names, male first names, last names)
    "london": (
        ["Amelia", "Isla", "Ava", "Mia", "Freya", "Grace", "Lily", "Evie", "Sophie", "Poppy"],
        ["Oliver", "George", "Harry", "Noah", "Jack", "Leo", "Arthur", "Oscar", "Alfie", "Henry"],
        ["Smith", "Jones", "Taylor", "Brown", "Wilson", "Davies", "Evans", "Walker", "Wright", "Khan"],
    ),
    "kolkata": (
        ["Ananya", "Diya", "Ishita", "Kavya", "Riya", "Meera", "Pooja", "Sneha", "Tania", "Moumita"],
        ["Aarav", "Vihaan", "Arjun", "Rohan", "Sourav", "Aditya", "Kunal", "Rahul", "Debashis", "Arnab"],
        ["Das", "Ghosh", "Chatterjee", "Mukherjee", "Bose", "Roy", "Dutta", "Mitra", "Saha", "Basu"],
    ),
}


@dataclass
class Credential:
    role: str
    username: str
    password: str
    where: str
    authenticator_key: str = ""


@dataclass
class Demo:
    organization: Organization
    clinics: dict[str, Clinic] = field(default_factory=dict)
    departments: dict[tuple[str, str], Department] = field(default_factory=dict)
    doctors: list[Doctor] = field(default_factory=list)
    patients: list[Patient] = field(default_factory=list)
    credentials: list[Credential] = field(default_factory=list)
    admin: User | None = None


class Command(BaseCommand):
    help = (
        "Load demo data (two clinics, doctors with schedules, 50 patients, a user per role, a few "
        "appointments) and print the demo sign-ins. Running it again changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--force",
            action="store_true",
            help="Run even though DEBUG is off (the demo users have published passwords).",
        )
        # Data at scale: any of these also generates that much history in bulk (devtools.seeding),
        # e.g. `seed_demo --patients 200000 --days 730 --doctors 40` for a million appointments.
        add_scale_arguments(parser, suppress_defaults=True)

    def handle(self, *args, force: bool = False, **options) -> None:
        if not settings.DEBUG and not force:
            raise CommandError(
                "seed_demo creates users with published demo passwords and DEBUG is off. "
                "If this really is a demo database, run it again with --force."
            )
        with transaction.atomic():
            demo = seed()
        self._print_summary(demo)
        self._print_credentials(demo.credentials)
        if any(name in options for name in SCALE_OPTIONS):
            run_scale(self, options)

    def _print_summary(self, demo: Demo) -> None:
        org = demo.organization
        horizon = timezone.now() + dt.timedelta(days=DAYS_OF_SLOTS)
        open_slots = Slot.objects.filter(
            organization=org, is_active=True, start__gt=timezone.now(), start__lte=horizon
        ).count()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo organization '{org.name}': {len(demo.clinics)} clinics, "
                f"{len(demo.departments)} departments, {len(demo.doctors)} doctors, "
                f"{Patient.objects.filter(organization=org).count()} patients, "
                f"{open_slots} slots in the next {DAYS_OF_SLOTS} days, "
                f"{Appointment.objects.filter(organization=org).count()} appointments."
            )
        )
        waiting = 0
        for doctor in demo.doctors:
            clinic = doctor.departments.select_related("clinic").first().clinic
            start, end = local_day_bounds(clinic, timezone.now())
            waiting += Appointment.objects.filter(
                doctor=doctor, start__gte=start, start__lt=end, status=AppointmentStatus.CHECKED_IN
            ).count()
        self.stdout.write(
            f"Today's queues: {waiting} patients checked in and waiting or called. Doctors see theirs at "
            "/queue/dashboard/, reception the waiting rooms at /queue/waiting-rooms/, nurses the same page "
            "with a Triage button per clinic (vitals of waiting patients; NEWS2 moves them up the queue)."
        )
        links = ", ".join(f"/portal/c/{org.slug}/{clinic.code}/signup/" for clinic in demo.clinics.values())
        self.stdout.write(
            f"New patients sign up from their clinic's own link ({links}) and confirm their e-mail "
            "address before booking (the link is e-mailed; with the console backend it is printed)."
        )

    def _print_credentials(self, credentials: list[Credential]) -> None:
        headers = ("role", "username", "password", "where")
        rows = [(c.role, c.username, c.password, c.where) for c in credentials]
        widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
        line = "  ".join(f"{{:<{w}}}" for w in widths)
        self.stdout.write("")
        self.stdout.write(
            self.style.WARNING(
                "WARNING: these are DEMO credentials with published passwords. "
                "Never load this data into a real system."
            )
        )
        self.stdout.write(line.format(*headers).rstrip())
        self.stdout.write(line.format(*("-" * w for w in widths)).rstrip())
        for row in rows:
            self.stdout.write(line.format(*row).rstrip())
        self.stdout.write("Sign in at /admin/ (superuser, admin, staff, nurse) or /api/ with these.")
        self.stdout.write("")
        self.stdout.write(
            "Staff, doctors and administrators confirm each sign-in with a second factor. Get the code an "
            "authenticator app would show with `.venv/bin/python manage.py otp_code USERNAME` "
            "(in another terminal), or add the account's key to an authenticator app:"
        )
        for credential in credentials:
            if credential.authenticator_key:
                self.stdout.write(f"  {credential.username:<24} {credential.authenticator_key}")


def seed() -> Demo:
    org = Organization.objects.filter(slug=ORGANIZATION["slug"]).first() or organization_create(
        actor=None, **ORGANIZATION
    )
    demo = Demo(organization=org)
    seed_clinics(demo)
    seed_users(demo)
    seed_doctors(demo)
    enrol_demo_staff(demo)
    seed_patients(demo)
    seed_safety_data(demo)
    # Rules plan OPD_SLOT_HORIZON_DAYS ahead; make sure the demo always shows at least two weeks (one
    # day more, as the horizon counts from today in UTC and a clinic east of UTC may be a day ahead).
    slots_generate(
        days=max(settings.OPD_SLOT_HORIZON_DAYS, DAYS_OF_SLOTS + 1),
        doctors=Doctor.objects.filter(pk__in=[d.pk for d in demo.doctors]),
    )
    book_demo_appointments(demo)
    fill_todays_queues(demo)
    return demo


def seed_clinics(demo: Demo) -> None:
    for spec in CLINICS:
        clinic = Clinic.objects.filter(organization=demo.organization, code=spec.code).first()
        if clinic is None:
            clinic = clinic_create(
                actor=None,
                organization=demo.organization,
                code=spec.code,
                name=spec.name,
                time_zone=spec.time_zone,
                address=spec.address,
                phone=spec.phone,
                email=f"{spec.code}@demo.example.org",
                checkin_opens_minutes=CHECKIN_OPENS_MINUTES,
            )
        demo.clinics[spec.code] = clinic
        for code, name in spec.departments:
            department = Department.objects.filter(clinic=clinic, code=code).first()
            demo.departments[spec.code, code] = department or department_create(
                actor=None, clinic=clinic, code=code, name=name
            )


def ensure_user(
    username: str,
    *,
    password: str,
    role: str,
    organization: Organization | None,
    first_name: str = "",
    last_name: str = "",
    is_staff: bool = False,
    is_superuser: bool = False,
    clinics: tuple[Clinic, ...] = (),
) -> User:
    """The demo user as specified; writes only what differs, so a second run writes nothing."""
    wanted = {
        "first_name": first_name,
        "last_name": last_name,
        "email": f"{username}@demo.example.org",
        "is_staff": is_staff or is_superuser,
        "is_superuser": is_superuser,
    }
    user = User.objects.filter(username=username).first()
    if user is None:
        user = user_create(
            actor=None, username=username, password=password, role=role, organization=organization, **wanted
        )
    else:
        if user.role != role:
            user = user_change_role(actor=None, user=user, role=role, is_staff=wanted["is_staff"])
        changed = {name: value for name, value in wanted.items() if getattr(user, name) != value}
        if changed:
            user = user_update(actor=None, user=user, **changed)
        if not user.is_active:
            user = user_reactivate(actor=None, user=user)
        # The printed table must be true: put the demo password back if someone changed it.
        if not user.check_password(password):
            user = user_set_password(actor=None, user=user, password=password)
    for clinic in clinics:
        if not Membership.objects.filter(user=user, clinic=clinic).exists():
            membership_add(actor=None, user=user, clinic=clinic)
    return user


def seed_users(demo: Demo) -> None:
    org = demo.organization
    ensure_user(
        "demo-super",
        password=PASSWORDS["superuser"],
        role=Role.ADMIN,
        organization=None,
        first_name="Demo",
        last_name="Superuser",
        is_superuser=True,
    )
    demo.credentials.append(Credential("superuser", "demo-super", PASSWORDS["superuser"], "everything"))
    demo.admin = ensure_user(
        "demo-admin",
        password=PASSWORDS[Role.ADMIN],
        role=Role.ADMIN,
        organization=org,
        first_name="Demo",
        last_name="Administrator",
        is_staff=True,
    )
    demo.credentials.append(Credential("admin", "demo-admin", PASSWORDS[Role.ADMIN], org.name))
    for code, clinic in demo.clinics.items():
        username = f"demo-reception-{code}"
        ensure_user(
            username,
            password=PASSWORDS[Role.STAFF],
            role=Role.STAFF,
            organization=org,
            first_name="Reception",
            last_name=code.title(),
            is_staff=True,
            clinics=(clinic,),
        )
        demo.credentials.append(Credential("staff", username, PASSWORDS[Role.STAFF], clinic.name))
        # A nurse: a staff member whose membership of the clinic carries the nurse capability (triage).
        username = f"demo-nurse-{code}"
        nurse = ensure_user(
            username,
            password=PASSWORDS["nurse"],
            role=Role.STAFF,
            organization=org,
            first_name="Nurse",
            last_name=code.title(),
            is_staff=True,
            clinics=(clinic,),
        )
        membership = Membership.objects.get(user=nurse, clinic=clinic)
        if not membership.is_nurse:
            membership_set_nurse(actor=None, membership=membership, is_nurse=True)
        demo.credentials.append(Credential("nurse", username, PASSWORDS["nurse"], f"{clinic.name} (triage)"))


def seed_doctors(demo: Demo) -> None:
    for spec in DOCTORS:
        clinic = demo.clinics[spec.clinic]
        department = demo.departments[spec.clinic, spec.department]
        user = ensure_user(
            spec.username,
            password=PASSWORDS[Role.DOCTOR],
            role=Role.DOCTOR,
            organization=demo.organization,
            first_name=spec.first_name,
            last_name=spec.last_name,
            clinics=(clinic,),
        )
        doctor = Doctor.objects.filter(user=user).first()
        if doctor is None:
            doctor = doctor_create(
                actor=demo.admin,
                user=user,
                organization=demo.organization,
                specialization=spec.specialization,
                license_number=spec.license_number,
                room=spec.room,
                departments=[department],
            )
        if not doctor.room:  # a demo from before rooms were shown; an admin's own choice is kept
            doctor = doctor_update(actor=demo.admin, doctor=doctor, room=spec.room)
        if not doctor.departments.filter(pk=department.pk).exists():
            doctor = doctor_update(
                actor=demo.admin, doctor=doctor, departments=[*doctor.departments.all(), department]
            )
        add_weekly_sessions(demo, doctor, department)
        # A new doctor starts pending; approval opens their slots (one re-plan instead of one per rule).
        doctor_set_approval(actor=demo.admin, doctor=doctor, status=ApprovalStatus.APPROVED)
        demo.doctors.append(doctor)
        demo.credentials.append(
            Credential("doctor", spec.username, PASSWORDS[Role.DOCTOR], f"{clinic.name}, {department.name}")
        )


def enrol_demo_staff(demo: Demo) -> None:
    """Every demo account but the patients' gets an authenticator, enrolled the way a person enrols one
    (the first code confirms it), so a newcomer signs in with `otp_code` or by typing the key in an app."""
    for credential in demo.credentials:
        if credential.role == "patient":
            continue
        user = User.objects.get(username=credential.username)
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
        if device is None:
            device = second_factor_enrolment_begin(user=user)
            second_factor_enrolment_confirm(user=user, device=device, code=code_for(device).code)
        credential.authenticator_key = key_of(device)


def add_weekly_sessions(demo: Demo, doctor: Doctor, department: Department) -> None:
    for weekday in range(7):
        for start, end in WEEKDAY_SESSIONS if weekday < 5 else WEEKEND_SESSIONS:
            exists = AvailabilityRule.objects.filter(
                doctor=doctor, department=department, weekday=weekday, start_time=start, end_time=end
            ).exists()
            if not exists:
                availability_rule_create(
                    actor=demo.admin,
                    doctor=doctor,
                    department=department,
                    weekday=weekday,
                    start_time=start,
                    end_time=end,
                    slot_minutes=SLOT_MINUTES,
                )


def patient_specs() -> list[dict]:
    """PATIENT_COUNT deterministic patients, alternating between the clinics."""
    rng = random.Random(SEED)  # noqa: S311 (demo names, not security)
    specs = []
    codes = [spec.code for spec in CLINICS]
    for n in range(1, PATIENT_COUNT + 1):
        clinic_code = codes[n % len(codes)]
        female, male, last = NAMES[clinic_code]
        sex = rng.choice([Sex.FEMALE, Sex.MALE])
        specs.append(
            {
                "clinic": clinic_code,
                "first_name": rng.choice(female if sex == Sex.FEMALE else male),
                "last_name": rng.choice(last),
                "sex": sex,
                "date_of_birth": dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(80 * 365)),
                # Ofcom's drama range (07700 900xxx) for London; a made-up range for Kolkata.
                "phone": f"+44 7700 900{n:03d}" if clinic_code == "london" else f"+91 90000 {n:05d}",
                "email": f"demo.patient{n:02d}@example.org",
            }
        )
    return specs


def seed_patients(demo: Demo) -> None:
    specs = patient_specs()
    # The first patient can sign in, so the patient's own views have someone to show.
    user = ensure_user(
        "demo-patient",
        password=PASSWORDS[Role.PATIENT],
        role=Role.PATIENT,
        organization=demo.organization,
        first_name=specs[0]["first_name"],
        last_name=specs[0]["last_name"],
    )
    for n, spec in enumerate(specs):
        demo.patients.append(ensure_patient(demo, spec, user=user if n == 0 else None))
    demo.credentials.append(
        Credential("patient", user.username, PASSWORDS[Role.PATIENT], f"patient {demo.patients[0].mrn}")
    )


# Safety data for the first demo patients, in turn: allergies (or "no known allergies"), problems with
# ICD-10 codes and current medications. The first patient (the demo patient's own sign-in) is allergic to
# amoxicillin, so prescribing a penicillin to them shows the allergy check.
SAFETY_DATA: list[dict] = [
    {
        "allergies": [("Amoxicillin", "drug", "severe", "Hives and facial swelling")],
        "problems": [("Essential hypertension", "I10", dt.date(2019, 4, 1))],
        "medications": [("Amlodipine", "5 mg", "once daily", dt.date(2019, 4, 15))],
    },
    {
        "allergies": [
            ("Peanuts", "food", "life_threatening", "Anaphylaxis"),
            ("Ibuprofen", "drug", "moderate", ""),
        ],
        "problems": [("Type 2 diabetes mellitus", "E11.9", dt.date(2016, 9, 1)), ("Asthma", "J45.9", None)],
        "medications": [
            ("Metformin", "500 mg", "twice daily", dt.date(2016, 9, 10)),
            ("Salbutamol inhaler", "100 micrograms", "as needed", None),
        ],
    },
    {
        "allergies": None,
        "problems": [("Hypothyroidism", "E03.9", dt.date(2021, 1, 20))],
        "medications": [("Levothyroxine", "50 micrograms", "once daily", dt.date(2021, 2, 1))],
    },
    {"allergies": [("Sulfamethoxazole", "drug", "mild", "Rash")], "problems": [], "medications": []},
]


def seed_safety_data(demo: Demo) -> None:
    """Allergies, problems and medications for the first demo patients, recorded by a demo doctor through
    the services; a patient who already has any is left alone (running the command again adds nothing)."""
    doctor = next((d for d in demo.doctors if d.user.organization_id == demo.organization.pk), None)
    if doctor is None:
        return
    actor = doctor.user
    for patient, data in zip(demo.patients, SAFETY_DATA, strict=False):
        if (
            patient.no_known_allergies_at is not None
            or Allergy.objects.filter(patient=patient).exists()
            or Problem.objects.filter(patient=patient).exists()
            or Medication.objects.filter(patient=patient).exists()
        ):
            continue
        if data["allergies"] is None:
            allergy_set_no_known_allergies(actor=actor, patient=patient)
        for substance, category, severity, reaction in data["allergies"] or []:
            allergy_record(
                actor=actor,
                patient=patient,
                substance=substance,
                category=category,
                severity=severity,
                reaction=reaction,
            )
        for description, code, onset in data["problems"]:
            problem_add(
                actor=actor, patient=patient, description=description, icd10_code=code, onset_date=onset
            )
        for name, dose, frequency, started in data["medications"]:
            medication_add(
                actor=actor, patient=patient, name=name, dose=dose, frequency=frequency, started_on=started
            )


def ensure_patient(demo: Demo, spec: dict, *, user: User | None) -> Patient:
    fields = {name: value for name, value in spec.items() if name != "clinic"}
    # The e-mail is encrypted (no equality lookup): a demo patient is found by name and phone blind index.
    existing = Patient.objects.filter(
        organization=demo.organization,
        first_name=fields["first_name"],
        last_name=fields["last_name"],
        phone_index__in=blind_index_candidates("phone", fields["phone"]),
    ).first()
    if existing is not None:
        return existing
    return patient_create(
        actor=demo.admin,
        organization=demo.organization,
        registered_at_clinic=demo.clinics[spec["clinic"]],
        user=user,
        confirm_new_patient=True,  # the demo's people are distinct by design
        **fields,
    )


def book_demo_appointments(demo: Demo) -> None:
    """A few appointments on each doctor's next working day from tomorrow, unless the demo has some."""
    if Appointment.objects.filter(organization=demo.organization).exists():
        return
    patients = iter(demo.patients)  # the demo patient first, so their own views show a booking
    for doctor in demo.doctors:
        for slot in first_open_slots(doctor, APPOINTMENTS_PER_DOCTOR):
            appointment_book(
                actor=None,
                patient=next(patients),
                slot=slot,
                reason="Demo appointment",
                channel=BookingChannel.SYSTEM,
            )


def first_open_slots(doctor: Doctor, count: int) -> list[Slot]:
    """`count` open slots, half an hour apart, on the doctor's first day with slots from tomorrow."""
    clinic = doctor.departments.select_related("clinic").first().clinic
    tomorrow = timezone.localdate(timezone=clinic.tz) + dt.timedelta(days=1)
    open_slots = Slot.objects.filter(
        doctor=doctor, date__gte=tomorrow, is_active=True, booked_count__lt=F("capacity")
    ).order_by("start")
    first = open_slots.first()
    if first is None:
        return []
    return list(open_slots.filter(date=first.date))[: count * 2 : 2]


# Today's live queue --------------------------------------------------------------------------------------
#
# Bookings are only taken for slots that have not started, so today's patients are booked into the next
# free slots from now; the morning is then replayed through the queue services with explicit times before
# now: arrivals (check-in, tokens in order of arrival), the doctor calling, seeing and completing patients,
# one called patient who never came (no-show), and the patient in consultation now. A clinic whose check-in
# window is too short for some of them leaves those booked ("expected later").

QUEUE_PATIENTS = 10
# The doctor's morning, in order: a consultation of so many minutes, or a called patient who never came.
MORNING = (12, "no-show", 10, 14)
LIVE_SESSION_REASON = "Demo: today's live queue (seed_demo)"
TODAY_REASON = "Demo: today's queue"
# Today's patients are booked into slots starting within this much from now (inside the check-in window).
QUEUE_HORIZON = dt.timedelta(hours=3)
LAST_START = dt.time(23, 30)


def fill_todays_queues(demo: Demo) -> None:
    patients = demo.patients[len(demo.doctors) * APPOINTMENTS_PER_DOCTOR :] + demo.patients
    for index, doctor in enumerate(demo.doctors):
        department = doctor.departments.select_related("clinic").first()
        fill_todays_queue(
            demo, doctor, department, patients[index * QUEUE_PATIENTS : (index + 1) * QUEUE_PATIENTS]
        )


def fill_todays_queue(demo: Demo, doctor: Doctor, department: Department, patients: list[Patient]) -> None:
    clinic = department.clinic
    now = timezone.now().replace(second=0, microsecond=0)
    day_start, day_end = local_day_bounds(clinic, now)
    today = Appointment.objects.filter(doctor=doctor, start__gte=day_start, start__lt=day_end)
    under_way = today.exclude(status__in=(AppointmentStatus.BOOKED, AppointmentStatus.CANCELLED))
    if under_way.exists() or today.filter(reason=TODAY_REASON).exists():
        return  # today's queue is under way (an earlier run, or real use)
    slots = free_slots_today(demo, doctor, department, now, day_end)
    booked = []
    for slot, patient in zip(slots, patients, strict=False):
        try:
            booked.append(
                appointment_book(
                    actor=None,
                    patient=patient,
                    slot=slot,
                    reason="Demo: today",
                    channel=BookingChannel.SYSTEM,
                )
            )
        except Conflict:
            continue  # this patient is busy then (their own booking); leave the slot free
    replay_morning(doctor, booked, now=now, earliest=day_start + dt.timedelta(minutes=1))


def free_slots_today(
    demo: Demo, doctor: Doctor, department: Department, now: dt.datetime, day_end
) -> list[Slot]:
    """The next free slots today, adding an extra session from now when the weekly ones do not cover it."""

    def free() -> list[Slot]:
        return list(
            Slot.objects.filter(
                doctor=doctor,
                start__gt=now + dt.timedelta(minutes=2),
                start__lt=min(day_end, now + QUEUE_HORIZON),
                is_active=True,
                booked_count__lt=F("capacity"),
            ).order_by("start")[:QUEUE_PATIENTS]
        )

    slots = free()
    local_now = timezone.localtime(now, department.clinic.tz)
    # The next quarter hour (on the weekly sessions' grid), at least two minutes away.
    start = (local_now + dt.timedelta(minutes=2 + 14)).replace(second=0, microsecond=0)
    start = start.replace(minute=start.minute - start.minute % 15)
    exists = AvailabilityException.objects.filter(
        doctor=doctor, date=local_now.date(), kind=ExceptionKind.EXTRA, reason=LIVE_SESSION_REASON
    ).exists()
    if (
        len(slots) < QUEUE_PATIENTS
        and not exists
        and start.date() == local_now.date()
        and start.time() < LAST_START
    ):
        end = min(start + QUEUE_HORIZON, start.replace(hour=23, minute=45))
        availability_exception_create(
            actor=demo.admin,
            doctor=doctor,
            kind=ExceptionKind.EXTRA,
            date=local_now.date(),
            start_time=start.time(),
            end_time=end.time(),
            department=department,
            slot_minutes=SLOT_MINUTES,
            reason=LIVE_SESSION_REASON,
        )
        slots = free()
    return slots


# The minimum record of a demo visit seen this morning (consultations.services.missing_from_record).
DEMO_RECORD = {
    "respiratory_rate": 16,
    "spo2": 98,
    "on_supplemental_oxygen": False,
    "systolic_bp": 122,
    "diastolic_bp": 78,
    "pulse": 72,
    "consciousness": "A",
    "temperature": Decimal("36.8"),
    "assessment": "Demo visit: no acute findings.",
    "plan": "Review in clinic if symptoms persist.",
}


def replay_morning(doctor: Doctor, appointments: list[Appointment], *, now: dt.datetime, earliest) -> None:
    minute = dt.timedelta(minutes=1)
    opens = dt.timedelta(minutes=doctor.departments.first().clinic.checkin_opens_minutes)
    # Arrivals every eight minutes from 70 minutes ago, never before check-in opens for the appointment.
    arrivals = []
    for n, appt in enumerate(appointments[:-1]):  # the last one arrives later today
        at = max(now - dt.timedelta(minutes=70 - 8 * n), appt.start - opens + minute, earliest)
        if at <= now - minute:
            arrivals.append((at, appt))
    if not arrivals:
        return

    def arrive_until(moment: dt.datetime) -> None:
        while arrivals and arrivals[0][0] <= moment:
            at, appt = arrivals.pop(0)
            appointment_check_in(actor=None, appointment=appt, now=at)

    # The doctor's clock, planned so the patient now in consultation started about six minutes ago.
    planned = sum(step + 3 if isinstance(step, int) else 4 for step in MORNING)
    clock = max(now - dt.timedelta(minutes=planned + 7), arrivals[0][0] + 2 * minute)
    for step in (*MORNING, "in consultation"):
        arrive_until(clock)
        if clock >= now - 2 * minute:
            break
        try:
            called = queue_call_next(actor=doctor.user, doctor=doctor, now=clock)
        except Conflict:
            break  # nobody has arrived yet
        if step == "no-show":
            appointment_mark_no_show(actor=doctor.user, appointment=called, now=clock + 3 * minute)
            clock += 4 * minute
            continue
        started = appointment_start(actor=doctor.user, appointment=called, now=clock + minute)
        if step == "in consultation":
            break
        done = clock + (1 + step) * minute
        if done >= now - minute:
            break  # still with the doctor
        # Completed the way a doctor does: through the consultation record, with its minimum record.
        consultation = consultation_open(actor=doctor.user, appointment=started)
        consultation_complete(actor=doctor.user, consultation=consultation, now=done, **DEMO_RECORD)
        clock = done + 2 * minute
    arrive_until(now - minute)
