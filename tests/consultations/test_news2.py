"""NEWS2 against the Royal College of Physicians' 2017 chart: every threshold from both sides.

Pure functions: no database."""

from __future__ import annotations

from decimal import Decimal

import pytest

from consultations import news2
from consultations.news2 import Observations

CALM = {
    "respiratory_rate": 16,
    "spo2": 98,
    "on_supplemental_oxygen": False,
    "systolic_bp": 120,
    "pulse": 70,
    "consciousness": "A",
    "temperature": Decimal("37.0"),
}


def scored(**changes) -> news2.News2:
    result = news2.score(Observations(**{**CALM, **changes}))
    assert result is not None
    return result


# Respiration rate (per minute): <=8: 3 · 9-11: 1 · 12-20: 0 · 21-24: 2 · >=25: 3
@pytest.mark.parametrize(
    ("rate", "points"),
    [(4, 3), (8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3), (80, 3)],
)
def test_it_scores_respiration_rate_as_the_chart(rate, points):
    assert news2.score_respiratory_rate(rate) == points
    assert scored(respiratory_rate=rate).respiratory_rate == points


# SpO2 scale 1 (%): <=91: 3 · 92-93: 2 · 94-95: 1 · >=96: 0
@pytest.mark.parametrize(
    ("spo2", "points"),
    [(50, 3), (91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0)],
)
def test_it_scores_spo2_on_scale_1_as_the_chart(spo2, points):
    assert news2.score_spo2_scale_1(spo2) == points
    # Scale 1 does not depend on oxygen for the SpO2 parameter itself.
    assert scored(spo2=spo2).spo2 == points
    assert scored(spo2=spo2, on_supplemental_oxygen=True).spo2 == points


# SpO2 scale 2 (%): <=83: 3 · 84-85: 2 · 86-87: 1 · 88-92 (or >=93 on air): 0
#                   93-94 on oxygen: 1 · 95-96 on oxygen: 2 · >=97 on oxygen: 3
@pytest.mark.parametrize(
    ("spo2", "on_oxygen", "points"),
    [
        (50, False, 3),
        (83, False, 3),
        (83, True, 3),
        (84, False, 2),
        (85, True, 2),
        (86, False, 1),
        (87, True, 1),
        (88, False, 0),
        (88, True, 0),
        (92, False, 0),
        (92, True, 0),
        (93, False, 0),
        (97, False, 0),
        (100, False, 0),
        (93, True, 1),
        (94, True, 1),
        (95, True, 2),
        (96, True, 2),
        (97, True, 3),
        (100, True, 3),
    ],
)
def test_it_scores_spo2_on_scale_2_as_the_chart(spo2, on_oxygen, points):
    assert news2.score_spo2_scale_2(spo2, on_oxygen=on_oxygen) == points
    result = scored(spo2=spo2, on_supplemental_oxygen=on_oxygen, spo2_scale_2=True)
    assert result.spo2 == points
    assert result.spo2_scale == 2


def test_it_uses_scale_1_unless_the_patient_is_flagged():
    # 90 % on air: 3 points on scale 1, 0 on scale 2 (within an 88-92 % target).
    assert scored(spo2=90).spo2 == 3
    assert scored(spo2=90).spo2_scale == 1
    assert scored(spo2=90, spo2_scale_2=True).spo2 == 0


# Air or oxygen: air 0 · oxygen 2
@pytest.mark.parametrize(("on_oxygen", "points"), [(False, 0), (True, 2)])
def test_it_scores_supplemental_oxygen(on_oxygen, points):
    assert scored(on_supplemental_oxygen=on_oxygen).air_or_oxygen == points


# Systolic blood pressure (mmHg): <=90: 3 · 91-100: 2 · 101-110: 1 · 111-219: 0 · >=220: 3
@pytest.mark.parametrize(
    ("systolic", "points"),
    [(50, 3), (90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3), (300, 3)],
)
def test_it_scores_systolic_pressure_as_the_chart(systolic, points):
    assert scored(systolic_bp=systolic).systolic_bp == points


# Pulse (per minute): <=40: 3 · 41-50: 1 · 51-90: 0 · 91-110: 1 · 111-130: 2 · >=131: 3
@pytest.mark.parametrize(
    ("pulse", "points"),
    [(20, 3), (40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2), (130, 2), (131, 3)],
)
def test_it_scores_pulse_as_the_chart(pulse, points):
    assert scored(pulse=pulse).pulse == points


# Consciousness: Alert 0 · new Confusion, Voice, Pain, Unresponsive 3
@pytest.mark.parametrize(("level", "points"), [("A", 0), ("C", 3), ("V", 3), ("P", 3), ("U", 3)])
def test_it_scores_consciousness_acvpu(level, points):
    assert scored(consciousness=level).consciousness == points


def test_it_refuses_an_unknown_consciousness_level():
    with pytest.raises(ValueError, match="ACVPU"):
        news2.score_consciousness("X")


# Temperature (°C): <=35.0: 3 · 35.1-36.0: 1 · 36.1-38.0: 0 · 38.1-39.0: 1 · >=39.1: 2
@pytest.mark.parametrize(
    ("celsius", "points"),
    [
        ("30.0", 3),
        ("35.0", 3),
        ("35.1", 1),
        ("36.0", 1),
        ("36.1", 0),
        ("38.0", 0),
        ("38.1", 1),
        ("39.0", 1),
        ("39.1", 2),
        ("45.0", 2),
    ],
)
def test_it_scores_temperature_as_the_chart(celsius, points):
    assert scored(temperature=Decimal(celsius)).temperature == points


# Aggregate and clinical risk: 0-4 low (a single 3: low-medium) · 5-6 medium · >=7 high
@pytest.mark.parametrize(
    ("changes", "total", "band"),
    [
        ({}, 0, "low"),
        # 1 + 1 + 1 + 1: four parameters slightly off, still low.
        ({"respiratory_rate": 10, "spo2": 95, "systolic_bp": 105, "pulse": 95}, 4, "low"),
        # A single parameter scoring 3 makes it low-medium even with a total of 3.
        ({"respiratory_rate": 8}, 3, "low_medium"),
        ({"consciousness": "C"}, 3, "low_medium"),
        ({"temperature": Decimal("35.0"), "pulse": 95}, 4, "low_medium"),
        # 5 and 6: medium (also when one parameter scores 3).
        ({"on_supplemental_oxygen": True, "systolic_bp": 90}, 5, "medium"),
        ({"respiratory_rate": 22, "spo2": 93, "pulse": 95}, 5, "medium"),
        ({"respiratory_rate": 22, "spo2": 93, "systolic_bp": 100}, 6, "medium"),
        # 7 and more: high.
        ({"respiratory_rate": 22, "spo2": 93, "systolic_bp": 100, "pulse": 95}, 7, "high"),
        (
            {
                "respiratory_rate": 30,
                "spo2": 85,
                "on_supplemental_oxygen": True,
                "systolic_bp": 85,
                "pulse": 140,
                "consciousness": "U",
                "temperature": Decimal("40.0"),
            },
            19,
            "high",
        ),
    ],
)
def test_it_adds_up_and_bands_the_clinical_risk(changes, total, band):
    result = scored(**changes)
    assert result.total == total
    assert result.band == band


@pytest.mark.parametrize(
    "missing",
    [
        "respiratory_rate",
        "spo2",
        "on_supplemental_oxygen",
        "systolic_bp",
        "pulse",
        "consciousness",
        "temperature",
    ],
)
def test_it_gives_no_score_until_all_seven_parameters_are_recorded(missing):
    observations = Observations(**{**CALM, missing: None})
    assert news2.score(observations) is None
    expected = "air_or_oxygen" if missing == "on_supplemental_oxygen" else missing
    assert news2.missing_parameters(observations) == [expected]


def test_it_keeps_each_sub_score():
    result = scored(respiratory_rate=22, temperature=Decimal("38.5"))
    assert result.sub_scores == {
        "respiratory_rate": 2,
        "spo2": 0,
        "air_or_oxygen": 0,
        "systolic_bp": 0,
        "pulse": 0,
        "consciousness": 0,
        "temperature": 1,
    }


@pytest.mark.parametrize(
    ("changes", "level"),
    [
        # 0: routine care.
        ({}, news2.ROUTINE),
        # 1-4 with no single 3: a ward-based response, at both ends.
        ({"temperature": Decimal("38.5")}, news2.WARD),
        ({"respiratory_rate": 10, "spo2": 95, "systolic_bp": 105, "pulse": 95}, news2.WARD),
        # A single parameter scoring 3 (total 3 or 4): urgent ward-based.
        ({"respiratory_rate": 8}, news2.URGENT_WARD),
        ({"temperature": Decimal("35.0"), "pulse": 95}, news2.URGENT_WARD),
        # 5 and 6: urgent, with or without a single 3 (the total asks for more).
        ({"on_supplemental_oxygen": True, "systolic_bp": 90}, news2.URGENT),
        ({"respiratory_rate": 22, "spo2": 93, "systolic_bp": 100}, news2.URGENT),
        # 7 and more: emergency.
        ({"respiratory_rate": 22, "spo2": 93, "systolic_bp": 100, "pulse": 95}, news2.EMERGENCY),
        ({"respiratory_rate": 30, "consciousness": "U", "systolic_bp": 85}, news2.EMERGENCY),
    ],
)
def test_it_gives_the_charts_clinical_response_at_each_trigger(changes, level):
    result = scored(**changes)
    response = news2.clinical_response(result.total, result.sub_scores.values())
    assert response.level == level
    assert response == news2.RESPONSES[level]


def test_each_response_says_who_acts_and_how_often_to_observe():
    emergency = news2.RESPONSES[news2.EMERGENCY]
    assert emergency.title == "Emergency response"
    assert "critical-care" in emergency.action
    assert emergency.monitoring == "Continuous monitoring of vital signs."
    assert news2.RESPONSES[news2.URGENT_WARD].monitoring == "Observations at least every hour."
