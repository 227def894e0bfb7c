// Reports view: indicators of a date range (/v1/reports/kpis), CSV downloads per table and stored report files.

import { ApiError, el } from "./api.js";

/** A local date as YYYY-MM-DD. */
function isoDay(d) {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

/** GET JSON; API errors (any status) become an ApiError with the server's message. */
async function fetchJSON(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-cache" });
  if (response.status === 401) {
    window.location.assign("/control/login");
    throw new ApiError(401, "unauthorized", "session ended");
  }
  let data = null;
  try {
    data = await response.json();
  } catch (exc) {
    throw new ApiError(response.status, "bad_json", `${path}: not JSON (HTTP ${response.status})`);
  }
  if (!response.ok) {
    const err = data && data.error ? data.error : { code: "http_error", message: `HTTP ${response.status}` };
    throw new ApiError(response.status, err.code, err.message);
  }
  return data;
}

function formatValue(v, unit) {
  if (v === null || v === undefined) return null;
  const text = typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(Math.abs(v) >= 100 ? 1 : 3)) : String(v);
  return unit ? `${text} ${unit}` : text;
}

function formatBytes(n) {
  if (!Number.isFinite(n)) return "";
  if (n < 1024) return `${n} B`;
  if (n < 1048576) return `${(n / 1024).toFixed(1)} kB`;
  return `${(n / 1048576).toFixed(1)} MB`;
}

export class ReportsView {
  /** @param {{toggle: HTMLElement, box: HTMLElement, from: HTMLInputElement, to: HTMLInputElement,
   *           form: HTMLFormElement, status: HTMLElement, sections: HTMLElement, files: HTMLElement}} els */
  constructor(els) {
    this.els = els;
    const today = new Date();
    const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
    els.from.value = isoDay(yesterday);
    els.to.value = isoDay(today);
    els.toggle.addEventListener("click", () => this.setOpen(els.box.hidden));
    els.form.addEventListener("submit", (ev) => { ev.preventDefault(); this.show(); });
    if (window.location.hash === "#reports") this.setOpen(true);
  }

  setOpen(open) {
    this.els.box.hidden = !open;
    this.els.toggle.setAttribute("aria-expanded", String(open));
    if (open) this.els.box.scrollIntoView({ block: "nearest" });
    if (open && !this.filesLoaded) this.loadFiles();
  }

  query() {
    return new URLSearchParams({ from: this.els.from.value, to: this.els.to.value }).toString();
  }

  /** Load the indicators of the chosen range and render one table per section. */
  async show() {
    const { status, sections } = this.els;
    status.className = "reports-status";
    status.textContent = "loading…";
    const q = this.query();
    let data;
    try {
      data = await fetchJSON(`/v1/reports/kpis?${q}`);
    } catch (exc) {
      status.className = "reports-status error";
      status.textContent = `Cannot load the report: ${exc.message || exc}`;
      sections.replaceChildren();
      return;
    }
    const period = data.period || {};
    status.textContent = `${period.from || this.els.from.value} until ${period.to || this.els.to.value} (end excluded)`;
    const nodes = [el("p", {}, el("a", { href: `/v1/reports/tables/summary.csv?${q}`, download: "summary.csv",
      class: "csv-link" }, "Summary (CSV)"))];
    for (const [name, entries] of Object.entries(data.sections || {})) {
      const tbody = el("tbody");
      for (const [key, item] of Object.entries(entries)) {
        let cell;
        if ("rows" in item) {
          const n = Array.isArray(item.rows) ? item.rows.length : null;
          cell = el("td", {}, n === null ? el("span", { class: "reason" }, item.reason || "no data") : `${n} rows `,
            n !== null ? el("a", { href: `/v1/reports/tables/${encodeURIComponent(`${name}.${key}`)}.csv?${q}`,
              download: `${name}.${key}.csv`, class: "csv-link", "aria-label": `Download ${name} ${key} as CSV` }, "CSV") : null);
        } else {
          const text = formatValue(item.value, item.unit);
          cell = el("td", {}, text === null ? el("span", { class: "reason" }, item.reason || "no data") : text);
        }
        tbody.append(el("tr", { "data-indicator": `${name}.${key}` }, el("th", { scope: "row", title: item.definition || "" }, key), cell));
      }
      nodes.push(el("section", { class: "report-section", "data-section": name }, el("h3", {}, name),
        el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Indicator"), el("th", {}, "Value"))), tbody)));
    }
    sections.replaceChildren(...nodes);
    sections.scrollIntoView({ block: "nearest" });
  }

  /** List the stored nightly report files with download links. */
  async loadFiles() {
    const box = this.els.files;
    try {
      const data = await fetchJSON("/v1/reports");
      this.filesLoaded = true;
      const files = (data.reports || []).filter((r) => r.format !== "csv");
      if (!files.length) {
        box.replaceChildren(el("p", { class: "empty" }, "No stored reports yet."));
        return;
      }
      box.replaceChildren(el("ul", { class: "report-files" }, ...files.map((r) => el("li", {},
        el("a", { href: `/v1/reports/files/${encodeURIComponent(r.name)}`, download: r.name }, r.name),
        ` ${r.format.toUpperCase()}, ${formatBytes(r.bytes)}, ${r.modified}`))));
    } catch (exc) {
      box.replaceChildren(el("p", { class: "error" }, `Cannot list stored reports: ${exc.message || exc}`));
    }
  }
}
