"""The bench's growth rows: slot listing and booking on the small and the full database side by side."""

from devtools.bench.run import growth


def results(scale: str, appointments: int, doctor_day: float, bookings: float) -> dict:
    return {
        "scale": scale,
        "finished_at": "2026-12-06 10:00 UTC",
        "data": {"appointments": appointments},
        "ceiling": {"rps": 2000.0 if scale == "small" else 1000.0},
        "slots": {"doctor_day": {"rps": doctor_day}},
        "booking": {"bookings_per_second": bookings},
    }


def test_it_sets_the_full_databases_ratios_beside_the_small_ones_in_percent():
    # The full run's machine was twice as loaded (half the ceiling): its figures are read as ratios.
    small = results("small", 10_000, 1000.0, 200.0)
    full = results("full", 1_000_000, 425.0, 105.0)

    # Whichever scale ran last, the small database is the reference.
    for this, other in ((full, small), (small, full)):
        g = growth(this, other)
        assert g is not None
        assert g["small_appointments"] == 10_000
        assert g["full_appointments"] == 1_000_000
        assert g["figures"]["slots.doctor_day"] == {
            "small": 1000.0,
            "full": 425.0,
            "small_ratio": 0.5,
            "full_ratio": 0.425,
            "diff_pct": -15.0,
        }
        assert g["figures"]["booking"]["diff_pct"] == 5.0


def test_without_a_run_on_the_other_database_there_is_no_growth_row():
    assert growth(results("full", 1_000_000, 850.0, 210.0), None) is None
