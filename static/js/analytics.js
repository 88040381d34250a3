// Charts of the analytics page, drawn with the vendored Chart.js from the data the page embeds
// (#analytics-data). The tables below the charts show the same figures without JavaScript.
(function () {
  "use strict";

  function start() {
    var source = document.getElementById("analytics-data");
    if (!source || typeof window.Chart === "undefined") return;
    var data = JSON.parse(source.textContent);
    var labels = data.daily.map(function (row) { return row.date; });
    var palette = ["#1d4ed8", "#0f766e", "#b45309", "#7c3aed", "#be123c", "#4b5563", "#15803d"];

    function series(rows, key) { return rows.map(function (row) { return row[key]; }); }
    function percent(rows, key) {
      return rows.map(function (row) { return row[key] === null ? null : Math.round(row[key] * 1000) / 10; });
    }
    function dataset(label, values, index, extra) {
      var color = palette[index % palette.length];
      return Object.assign({ label: label, data: values, backgroundColor: color, borderColor: color }, extra || {});
    }
    function draw(id, type, datasets, options) {
      var canvas = document.getElementById(id);
      if (!canvas) return;
      new window.Chart(canvas, {
        type: type,
        data: { labels: labels, datasets: datasets },
        options: Object.assign(
          {
            responsive: true,
            animation: false,
            interaction: { mode: "index", intersect: false },
            plugins: { legend: { position: "bottom" } },
            elements: { point: { radius: labels.length > 60 ? 0 : 2 } },
          },
          options || {}
        ),
      });
    }
    var stacked = { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } };

    var statuses = [
      ["completed", "Completed"], ["no_show", "No-show"], ["cancelled", "Cancelled"],
      ["booked", "Booked"], ["checked_in", "Checked in"], ["in_consultation", "In consultation"],
    ];
    draw("chart-status", "bar", statuses.map(function (s, i) {
      return dataset(s[1], series(data.daily, s[0]), i);
    }), stacked);

    draw("chart-wait", "line", [
      dataset("Average wait", series(data.daily, "wait_avg_minutes"), 0),
      dataset("90th percentile wait", series(data.daily, "wait_p90_minutes"), 4),
      dataset("Average consultation", series(data.daily, "consultation_avg_minutes"), 1),
    ], { scales: { y: { beginAtZero: true, title: { display: true, text: "minutes" } } } });

    draw("chart-utilization", "line", [
      dataset("Utilization %", percent(data.daily, "utilization"), 0),
      dataset("No-show rate %", percent(data.daily, "no_show_rate"), 4),
      dataset("Cancellation rate %", percent(data.daily, "cancellation_rate"), 2),
    ], { scales: { y: { beginAtZero: true, title: { display: true, text: "%" } } } });

    draw("chart-patients", "bar", [
      dataset("New", series(data.daily, "new_patients"), 1),
      dataset("Returning", series(data.daily, "returning_patients"), 0),
    ], stacked);

    var bands = [["low", "Low"], ["low_medium", "Low-medium"], ["medium", "Medium"], ["high", "High"]];
    var bandColors = [1, 2, 2, 4];
    draw("chart-news2", "bar", bands.map(function (b, i) {
      return dataset(b[1], series(data.news2, b[0]), bandColors[i], i === 1 ? { backgroundColor: "#f59e0b" } : {});
    }), stacked);

    var categories = Object.keys(data.care_notes[0] || {}).filter(function (k) { return k !== "date" && k !== "total"; });
    draw("chart-care-notes", "bar", categories.map(function (c, i) {
      return dataset(c.charAt(0).toUpperCase() + c.slice(1), series(data.care_notes, c), i);
    }), stacked);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
