"""The results as a Markdown table (bench-results/latest.md)."""

from __future__ import annotations


def ratio(value: float | None, ceiling: float | None) -> str:
    if not value or not ceiling:
        return "-"
    return f"{value / ceiling:.2f}x"


def cpu_split(split: dict | None) -> str:
    """`web 6.1, mariadb 2.0, ...` ms of CPU per booking, largest first, `other` and `idle` last."""
    if not split:
        return "-"
    parts = sorted((k for k in split if k not in ("other", "idle")), key=lambda k: -split[k])
    return ", ".join(f"{k} {split[k]:.1f}" for k in [*parts, "other", "idle"] if k in split)


def server_cpu(row: dict) -> str:
    """`; server CPU 410 us/request`, when the run measured it."""
    value = row.get("server_cpu_us_per_request")
    return f"; server CPU {value} us/request" if value else ""


def render(results: dict) -> str:
    m = results["machine"]
    c = results["ceiling"]
    s = results["stats"]
    lines = [
        f"# Benchmark ({results['finished_at']})",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']} RAM; {m['os']}; Python {m['python']}; "
        f"MariaDB {m['mariadb']}; Redis {m['redis']}. Load average at start "
        f"{', '.join(f'{v:.2f}' for v in m['load_average_at_start'])}.",
        f"Data: {results['data']['appointments']:,} appointments, {results['data']['care_notes']:,} care notes "
        f"over {s['daily_all']['days']} days (seeded in {results['data']['seed_seconds'] or 'an earlier run'}"
        f"{' s' if results['data']['seed_seconds'] else ''}; daily figures of {results['data']['summary_days']:,} closed "
        f"clinic-days stored in {results['data']['summaries_seconds']} s by this run). HTTP: gunicorn, 2 sync "
        f"workers, CONN_MAX_AGE=60; one Celery worker (nice 10) planning and sending the bookings' messages. "
        f"Indexes asked of scheduling, present: {', '.join(results['indexes'])}.",
        "",
        "| figure | value | ratio to the DRF ceiling | target |",
        "|---|---|---|---|",
        f"| DRF ceiling: GET /devtools/ping/ (wrk, 32 conns) | {c['rps']:.0f} req/s, p50 {c['single_p50_ms']:.1f} ms"
        f"{server_cpu(c)} | 1.00x | - |",
    ]
    for key, title in (
        ("daily_all", "Daily statistics, whole history"),
        ("care_notes_all", "Care notes per day, whole history"),
        ("news2_all", "NEWS2 bands per day, whole history"),
        ("daily_30d", "Daily statistics, last 30 days"),
    ):
        row = s[key]
        cold_ok = "yes" if row["cold_ms"] < 1000 else "NO"
        warm_ok = "yes" if row["warm_p95_ms"] < 100 else "NO"
        lines.append(
            f"| {title} ({row['days']} days), cold (cache cleared) | {row['cold_ms']:.0f} ms | "
            f"{ratio(row['cold_ms'], c['single_p50_ms'])} | < 1 s: {cold_ok} |"
        )
        lines.append(
            f"| {title}, warm | p50 {row['warm_p50_ms']:.1f} ms, p95 {row['warm_p95_ms']:.1f} ms | "
            f"{ratio(row['warm_p50_ms'], c['single_p50_ms'])} | < 100 ms: {warm_ok} |"
        )
    listings = results["slots"]
    if "rps" in listings:  # a run from before the three listings
        listings = {"clinic_day": listings}
    titles = {
        "clinic_day": "one clinic-day, as staff",
        "doctor_day": "a patient: one doctor's open slots for a day (25)",
        "doctor_week": "a patient: one doctor's open slots for a week (first page of 125)",
        "department_first": "a patient: a department's first available, across its doctors",
    }
    for name, sl in listings.items():
        met = sl["rps"] >= 0.5 * c["rps"] and (sl["p99_ms"] or 1e9) < 50
        lines.append(
            f"| Slot listing GET /api/v1/slots/, {titles[name]} (wrk, 32 conns) | {sl['rps']:.0f} req/s, "
            f"p50 {sl['p50_ms']:.1f} ms, p99 {sl['p99_ms']:.1f} ms{server_cpu(sl)}"
            f"{f'; first answer after a change {first:.1f} ms' if (first := sl.get('first_request_ms')) else ''} | "
            f"{ratio(sl['rps'], c['rps'])} | "
            f">= 0.5x and p99 < 50 ms: {'yes' if met else 'NO'} |"
        )
    sl = listings.get("doctor_day") or next(iter(listings.values()))
    b = results["booking"]
    ok = "yes" if (b["bookings_per_second"] or 0) >= 0.15 * c["rps"] else "NO"
    lines.append(
        f"| Booking POST /api/v1/appointments/, {b['clients']} concurrent clients on {b['slots']} slots "
        f"({b['seats']} seats), {b['seconds']} s | {b['bookings_per_second']} bookings/s "
        f"({b['requests_per_second']} req/s); all p50 {b['all']['p50_ms']:.1f} / p95 {b['all']['p95_ms']:.1f} / "
        f"p99 {b['all']['p99_ms']:.1f} ms; booked p95 {b['booked_latency']['p95_ms']:.1f} ms | "
        f"{ratio(b['bookings_per_second'], c['rps'])} | >= 0.15x bookings/s: {ok} |"
    )
    if b.get("cpu_ms_per_booking"):
        lines.append(
            f"| Where the CPU went in that closed loop (ms of CPU per booking, the machine's two cores) | "
            f"{cpu_split(b['cpu_ms_per_booking'])} | - | - |"
        )
    w = b.get("wrk")
    if w:
        ok = "yes" if (w["bookings_per_second"] or 0) >= 0.15 * c["rps"] else "NO"
        lines.append(
            f"| Booking, the same closed loop from wrk ({w['connections']} connections, {w['slots']} slots), "
            f"{w['seconds']} s | {w['bookings_per_second']} bookings/s ({w['requests_per_second']} req/s, "
            f"statuses {w['outcomes']}); p50 {w.get('p50_ms', 0):.1f} / p99 {w.get('p99_ms', 0):.1f} ms | "
            f"{ratio(w['bookings_per_second'], c['rps'])} | >= 0.15x bookings/s: {ok} |"
        )
        if w.get("cpu_ms_per_booking"):
            lines.append(
                f"| Where the CPU went in wrk's closed loop (ms of CPU per booking) | "
                f"{cpu_split(w['cpu_ms_per_booking'])} | - | - |"
            )
    for pc in results["paced"]:
        ok = "yes" if (pc["all"]["p95_ms"] or 1e9) < 50 else "NO"
        lines.append(
            f"| Booking, the same {pc['clients']} clients each booking every {pc['interval_s']:g} s "
            f"({pc['offered_per_second']:g}/s offered"
            f"{', half the closed loop maximum' if pc.get('half_of_maximum') else ''}), {pc['seconds']:g} s | "
            f"{pc['booked']} booked; p50 {pc['all']['p50_ms']:.1f} / p95 {pc['all']['p95_ms']:.1f} / "
            f"p99 {pc['all']['p99_ms']:.1f} ms | {ratio(pc['all']['p50_ms'], c['single_p50_ms'])} | "
            f"p95 < 50 ms: {ok} |"
        )
    r = results["race"]
    lines.append(
        f"| Race: {r['clients']} clients at once for {r['seats']} seats | {r['booked']} booked, "
        f"{r['outcomes']}; p95 {r['all']['p95_ms']:.1f} ms | - | exactly {r['seats']} booked: "
        f"{'yes' if r['booked'] == r['seats'] else 'NO'} |"
    )
    p = results["proof"]
    clean = all(
        p[k] == 0
        for k in (
            "slots_booked_count_over_capacity",
            "slots_booked_count_not_equal_seats_held",
            "slots_seats_held_over_capacity",
            "duplicate_seats",
            "overbooked_slots_in_database",
        )
    )
    lines.append(
        f"| No overbooking (database check after both runs) | {p['slots']} slots, {p['seats_held']} seats held; "
        f"over capacity {p['slots_booked_count_over_capacity']}, booked_count != seats held "
        f"{p['slots_booked_count_not_equal_seats_held']}, duplicate seats {p['duplicate_seats']}, overbooked "
        f"anywhere {p['overbooked_slots_in_database']} | - | all 0: {'yes' if clean else 'NO'} |"
    )
    e = results.get("embedded")
    if e:
        for key, title, gunicorn in (
            ("ping", "GET /devtools/ping/", c),
            ("slots", "a patient's doctor-day slot listing", sl),
        ):
            row = e[key]
            ok = "yes" if row["rps"] * 2 >= gunicorn["rps"] else "NO"
            lines.append(
                f"| `make run`'s server (one uvicorn process, opd.asgi), {title} | {row['rps']:.0f} req/s, "
                f"p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms{server_cpu(row)}; gunicorn {gunicorn['rps']:.0f} req/s "
                f"({ratio(row['rps'], gunicorn['rps'])} of it) | {ratio(row['rps'], c['rps'])} | "
                f"within 2x of gunicorn: {ok} |"
            )
    fan = results.get("fanout")
    if fan:
        many, base = fan["many"], fan["baseline"]
        met = many["lost_deliveries"] == 0 and not many["closed_early"] and (many["p99_ms"] or 1e9) < 100
        lines.append(
            f"| Websocket fan-out: {many['sockets']:,} sockets on one clinic's queue over "
            f"{many['processes']} ASGI processes (Redis layer), {many['changes']} changes through gunicorn | "
            f"p50 {many['p50_ms']:.0f} ms, p99 {many['p99_ms']:.0f} ms; lost {many['lost_deliveries']} of "
            f"{many['expected_deliveries']:,}, closed early {many['closed_early'] or 0}; server CPU "
            f"{many['servers_cpu_us_per_delivery']} us, client CPU {many['client_cpu_us_per_delivery']} us per "
            f"delivery; 3 sockets: p50 {base['p50_ms']:.0f} ms | - | none lost, p99 < 100 ms: "
            f"{'yes' if met else 'NO'} |"
        )
    mem = results.get("memory")
    if mem:
        before = mem.get("previous") or {}
        parts = []
        for key, title in (
            ("gunicorn_mb", "gunicorn (master and 2 workers)"),
            ("asgi_mb", "uvicorn (make run)"),
            ("celery_worker_mb", "Celery worker (and its pool)"),
        ):
            growth = f", previous run {before[key]} MB" if key in before else ""
            parts.append(f"{title} {mem[key]} MB{growth}")
        lines.append(f"| Memory (RSS after the run) | {'; '.join(parts)} | - | - |")
    g = results.get("growth")
    if g:
        names = {"booking": "Booking, closed loop (bookings/s)"} | {
            f"slots.{k}": f"Slot listing, {v} (req/s)" for k, v in titles.items()
        }
        for label, row in g["figures"].items():
            within = row["diff_pct"] is not None and abs(row["diff_pct"]) <= 10
            lines.append(
                f"| Growth: {names.get(label, label)}, {g['small_appointments']:,} vs "
                f"{g['full_appointments']:,} appointments ({g['small_finished_at']} vs {g['full_finished_at']}) | "
                f"{row['small']:.0f} vs {row['full']:.0f} | {row['small_ratio']:.3f}x vs {row['full_ratio']:.3f}x "
                f"({row['diff_pct']:+.1f} %) | within 10 %: {'yes' if within else 'NO'} |"
            )
    lines += [
        "",
        "Cold daily statistics of the whole history, by part (in-process, ms; the stored figures replace "
        "the parts computed from appointments for closed days): "
        + ", ".join(f"{k} {v}" for k, v in results["breakdown"].items())
        + ".",
        "",
        "Ratios: throughputs are divided by the ceiling's req/s; latencies by the ceiling's single-client p50.",
    ]
    return "\n".join(lines) + "\n"
