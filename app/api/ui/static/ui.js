// Ferry dashboard: the little script the pages need. No framework, no build step.
// 1. Forms with data-confirm ask first.  2. The runs list polls the runs in flight and
// refreshes its rows when one finishes.  3. Charts from the page's JSON, with Chart.js.
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  const button = event.submitter;
  const question = (button && button.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) event.preventDefault();
});

function liveRuns() {
  const panel = document.getElementById("in-flight");
  if (!panel) return;
  const list = document.getElementById("live-list");
  const count = document.getElementById("live-count");
  let known = new Set(Array.from(list.querySelectorAll("li[data-run]"), (li) => li.dataset.run));

  function item(run) {
    const li = document.createElement("li");
    li.dataset.run = run.run_id;
    const link = document.createElement("a");
    link.href = "/ui/runs/" + encodeURIComponent(run.run_id);
    link.className = "mono";
    link.textContent = run.run_id.slice(0, 8);
    const badge = document.createElement("span");
    badge.className = "badge status-" + (run.state === "running" ? "running" : "queued");
    badge.textContent = run.state;
    li.append(link, " " + run.agent + " ", badge, " " + Math.round(run.seconds) + " s");
    return li;
  }

  async function refreshRows() {
    const response = await fetch(window.location.href, { headers: { "X-Ferry-Fragment": "rows" }, credentials: "same-origin" });
    if (!response.ok) return;
    const holder = document.createElement("table");
    holder.innerHTML = await response.text(); // the server's escaped rows, same origin
    const rows = holder.querySelector("tbody");
    const current = document.getElementById("run-rows");
    if (rows && current) current.replaceWith(rows);
  }

  async function poll() {
    try {
      const response = await fetch(panel.dataset.live, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (response.status === 401) { window.location.reload(); return; }
      if (!response.ok) return;
      const body = await response.json();
      const now = new Set(body.in_flight.map((r) => r.run_id));
      const finished = Array.from(known).some((id) => !now.has(id));
      list.replaceChildren(...(body.in_flight.length ? body.in_flight.map(item) : [Object.assign(document.createElement("li"), { className: "dim", textContent: "Nothing in flight." })]));
      count.textContent = "(" + body.in_flight.length + ")";
      known = now;
      if (finished) await refreshRows();
    } catch (error) {
      // The server restarting or the network blinking: try again at the next tick.
    }
  }
  window.setInterval(poll, 3000);
}

function charts() {
  const data = document.getElementById("chart-data");
  if (!data || typeof window.Chart === "undefined") return;
  const chart = JSON.parse(data.textContent);
  const style = getComputedStyle(document.documentElement);
  const fg = style.getPropertyValue("--fg").trim();
  const line = style.getPropertyValue("--line").trim();
  const palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
  const reduced = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  document.querySelectorAll("canvas[data-series]").forEach((canvas) => {
    const field = canvas.dataset.series;
    const datasets = chart.series.map((s, i) => ({ label: s.key, data: s[field], backgroundColor: palette[i % palette.length], borderWidth: 0 }));
    canvas.chart = new window.Chart(canvas, {
      type: "bar",
      data: { labels: chart.labels, datasets },
      options: {
        animation: reduced ? false : { duration: 300 },
        maintainAspectRatio: false,
        responsive: true,
        scales: {
          x: { stacked: true, ticks: { color: fg, maxRotation: 0, autoSkip: true }, grid: { color: line } },
          y: { stacked: true, beginAtZero: true, ticks: { color: fg, precision: field === "cost" ? undefined : 0 }, grid: { color: line } },
        },
        plugins: { legend: { labels: { color: fg } } },
      },
    });
  });
}

document.addEventListener("DOMContentLoaded", () => { liveRuns(); charts(); });
