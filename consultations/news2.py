"""National Early Warning Score 2 (Royal College of Physicians, 2017): pure functions, no Django.

The thresholds are the published chart's, parameter by parameter. NEWS2 needs all seven parameters
(respiration rate, SpO2, air or oxygen, systolic blood pressure, pulse, consciousness, temperature);
with any of them missing there is no score, and `missing_parameters` says which.

Clinical risk: aggregate 0-4 is low, except that a score of 3 in any single parameter is low-medium
(an urgent ward-based response); 5-6 is medium; 7 or more is high.

SpO2 scale 2 is for patients with hypercapnic respiratory failure whose prescribed target saturation
is 88-92 %: above 92 % it scores only when the patient is on supplemental oxygen.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

LOW = "low"
LOW_MEDIUM = "low_medium"
MEDIUM = "medium"
HIGH = "high"

# ACVPU: Alert, new Confusion, Voice, Pain, Unresponsive.
ALERT = "A"
CONSCIOUSNESS_LEVELS = ("A", "C", "V", "P", "U")

PARAMETERS = (
    "respiratory_rate",
    "spo2",
    "air_or_oxygen",
    "systolic_bp",
    "pulse",
    "consciousness",
    "temperature",
)


@dataclass(frozen=True)
class Observations:
    respiratory_rate: int | None = None
    spo2: int | None = None
    on_supplemental_oxygen: bool | None = None
    systolic_bp: int | None = None
    pulse: int | None = None
    consciousness: str | None = None
    temperature: Decimal | None = None
    spo2_scale_2: bool = False


@dataclass(frozen=True)
class News2:
    respiratory_rate: int
    spo2: int
    air_or_oxygen: int
    systolic_bp: int
    pulse: int
    consciousness: int
    temperature: int
    spo2_scale: int

    @property
    def sub_scores(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in PARAMETERS}

    @property
    def total(self) -> int:
        return sum(self.sub_scores.values())

    @property
    def band(self) -> str:
        return risk_band(self.total, self.sub_scores.values())


def score_respiratory_rate(rate: int) -> int:
    if rate <= 8:
        return 3
    if rate <= 11:
        return 1
    if rate <= 20:
        return 0
    if rate <= 24:
        return 2
    return 3


def score_spo2_scale_1(spo2: int) -> int:
    if spo2 <= 91:
        return 3
    if spo2 <= 93:
        return 2
    if spo2 <= 95:
        return 1
    return 0


def score_spo2_scale_2(spo2: int, *, on_oxygen: bool) -> int:
    if spo2 <= 83:
        return 3
    if spo2 <= 85:
        return 2
    if spo2 <= 87:
        return 1
    if spo2 <= 92 or not on_oxygen:  # 88-92, or 93 and above on air
        return 0
    if spo2 <= 94:
        return 1
    if spo2 <= 96:
        return 2
    return 3


def score_air_or_oxygen(on_oxygen: bool) -> int:
    return 2 if on_oxygen else 0


def score_systolic_bp(systolic: int) -> int:
    if systolic <= 90:
        return 3
    if systolic <= 100:
        return 2
    if systolic <= 110:
        return 1
    if systolic <= 219:
        return 0
    return 3


def score_pulse(pulse: int) -> int:
    if pulse <= 40:
        return 3
    if pulse <= 50:
        return 1
    if pulse <= 90:
        return 0
    if pulse <= 110:
        return 1
    if pulse <= 130:
        return 2
    return 3


def score_consciousness(level: str) -> int:
    if level not in CONSCIOUSNESS_LEVELS:
        raise ValueError(f"Unknown ACVPU level {level!r}")
    return 0 if level == ALERT else 3


def score_temperature(celsius: Decimal) -> int:
    # The chart's bands are in tenths of a degree (35.0 / 35.1 ...): compare exact decimals.
    value = Decimal(celsius)
    if value <= Decimal("35.0"):
        return 3
    if value <= Decimal("36.0"):
        return 1
    if value <= Decimal("38.0"):
        return 0
    if value <= Decimal("39.0"):
        return 1
    return 2


def risk_band(total: int, sub_scores) -> str:
    if total >= 7:
        return HIGH
    if total >= 5:
        return MEDIUM
    if any(score == 3 for score in sub_scores):
        return LOW_MEDIUM
    return LOW


# The clinical response the RCP's NEWS2 chart ties to each trigger (RCP 2017, chart 4), in its own words
# where they fit an outpatient clinic: who is told, who assesses, how soon, and the least frequency of
# observation the chart gives for the score.
ROUTINE = "routine"
WARD = "ward"
URGENT_WARD = "urgent_ward"
URGENT = "urgent"
EMERGENCY = "emergency"


@dataclass(frozen=True)
class ClinicalResponse:
    level: str
    title: str
    action: str
    monitoring: str


RESPONSES = {
    ROUTINE: ClinicalResponse(
        ROUTINE,
        "No escalation",
        "Continue routine care.",
        "Observations at least every 12 hours.",
    ),
    WARD: ClinicalResponse(
        WARD,
        "Ward-based response",
        "A registered nurse assesses the patient and decides whether to observe more often or escalate care.",
        "Observations at least every 4 to 6 hours.",
    ),
    URGENT_WARD: ClinicalResponse(
        URGENT_WARD,
        "Urgent ward-based response",
        "A single parameter scores 3: a registered nurse informs the doctor caring for the patient, who "
        "reviews the patient and decides whether care must be escalated.",
        "Observations at least every hour.",
    ),
    URGENT: ClinicalResponse(
        URGENT,
        "Urgent response",
        "Inform the doctor caring for the patient now; urgent assessment by a clinician competent in "
        "the care of acutely ill patients; care where the patient can be monitored.",
        "Observations at least every hour.",
    ),
    EMERGENCY: ClinicalResponse(
        EMERGENCY,
        "Emergency response",
        "Inform the doctor caring for the patient now; emergency assessment by a team with critical-care "
        "skills, including airway management; consider transfer to a higher level of care (from an "
        "outpatient clinic, call the emergency team).",
        "Continuous monitoring of vital signs.",
    ),
}


def clinical_response(total: int, sub_scores) -> ClinicalResponse:
    """The response the chart asks for: 0 routine; 1-4 ward-based; a single parameter scoring 3, urgent
    ward-based (unless the total asks for more); 5-6 urgent; 7 or more emergency."""
    band = risk_band(total, sub_scores)
    if band == HIGH:
        return RESPONSES[EMERGENCY]
    if band == MEDIUM:
        return RESPONSES[URGENT]
    if band == LOW_MEDIUM:
        return RESPONSES[URGENT_WARD]
    return RESPONSES[WARD] if total > 0 else RESPONSES[ROUTINE]


def missing_parameters(obs: Observations) -> list[str]:
    given = {
        "respiratory_rate": obs.respiratory_rate,
        "spo2": obs.spo2,
        "air_or_oxygen": obs.on_supplemental_oxygen,
        "systolic_bp": obs.systolic_bp,
        "pulse": obs.pulse,
        "consciousness": obs.consciousness or None,
        "temperature": obs.temperature,
    }
    return [name for name in PARAMETERS if given[name] is None]


def score(obs: Observations) -> News2 | None:
    """The NEWS2 of a set of observations, or None when any of the seven parameters is missing."""
    if missing_parameters(obs):
        return None
    on_oxygen = bool(obs.on_supplemental_oxygen)
    if obs.spo2_scale_2:
        spo2 = score_spo2_scale_2(obs.spo2, on_oxygen=on_oxygen)
    else:
        spo2 = score_spo2_scale_1(obs.spo2)
    return News2(
        respiratory_rate=score_respiratory_rate(obs.respiratory_rate),
        spo2=spo2,
        air_or_oxygen=score_air_or_oxygen(on_oxygen),
        systolic_bp=score_systolic_bp(obs.systolic_bp),
        pulse=score_pulse(obs.pulse),
        consciousness=score_consciousness(obs.consciousness),
        temperature=score_temperature(obs.temperature),
        spo2_scale=2 if obs.spo2_scale_2 else 1,
    )
