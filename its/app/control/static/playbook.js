// Operating-mode playbook panel: the network's mode now and, in `incident` or `peak`, the
// recommended actions (holds on the affected routes, diversions away from full car parks,
// detours around incident edges) with their expected effect; the dispatcher applies one and
// the log records who and when.

import { ApiError, el, getJSON, hasRoute, poll, postJSON, swap } from "./api.js";

const PLAYBOOK = "/v1/control/playbook";
const LOG = "/v1/control/playbook/log";
const KIND = { headway: "Headway", guidance: "Parking", detour: "Detour" };

function clock(iso) {
  return iso ? new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" }) : "–";
}

function value(v, unit) {
  if (v === null || v === undefined) return "?";
  return unit === "probability" ? `${Math.round(v * 100)} %` : `${Math.round(v)} ${unit}`;
}

function modeText(data) {
  const tti = data.network_tti === null ? "travel time index unknown" : `travel time index ${data.network_tti.toFixed(2)} (peak from ${data.peak_tti})`;
  const inc = data.incidents.length ? `, ${data.incidents.length} incident${data.incidents.length > 1 ? "s" : ""}` : "";
  return `${tti}${inc}`;
}

export class PlaybookPanel {
  constructor(box, map) {
    this.box = box;
    this.map = map;
    this.data = null;
    this.log = [];
    this.error = null;
    this.busy = new Set();
  }

  start() {
    if (!hasRoute(PLAYBOOK)) {
      swap(this.box, el("p", { class: "empty" }, "no data yet"));
      return;
    }
    poll(() => this.refresh(), 5000);
  }

  async refresh() {
    const [data, log] = await Promise.all([getJSON(PLAYBOOK), hasRoute(LOG) ? getJSON(`${LOG}?limit=8`) : null]);
    if (data === null) return null;
    this.data = data;
    if (log) this.log = log.entries;
    this.render();
    return data;
  }

  async apply(a) {
    this.busy.add(a.action_id);
    this.error = null;
    this.render();
    try {
      await postJSON(`${PLAYBOOK}/actions/${encodeURIComponent(a.action_id)}/apply`, {});
    } catch (exc) {
      this.error = exc instanceof ApiError ? exc.message : String(exc);
    } finally {
      this.busy.delete(a.action_id);
    }
    await this.refresh().catch(() => this.render());
  }

  locate(a) {
    if (a.lat === null || a.lon === null) return;
    this.map.flyTo(a.lon, a.lat, Math.max(this.map.zoom, 15));
  }

  row(a) {
    const busy = this.busy.has(a.action_id);
    const apply = el("button", {
      type: "button", class: "apply", disabled: busy, "data-focus-key": `apply:${a.action_id}`,
      "aria-label": `Apply: ${a.title}`, onclick: () => this.apply(a),
    }, a.applied ? "Apply again" : "Apply");
    const e = a.effect;
    const title = a.lat !== null
      ? el("button", { type: "button", class: "link", "data-focus-key": `where:${a.action_id}`, onclick: () => this.locate(a) }, a.title)
      : a.title;
    const applied = a.applied ? `applied by ${a.applied.by} at ${clock(a.applied.at)}` : "recommended";
    return el("tr", { "data-action-id": a.action_id, "data-kind": a.kind, class: `action ${a.applied ? "applied" : ""}`, title: a.detail },
      el("td", {}, KIND[a.kind] || a.kind),
      el("td", {}, title, el("div", { class: "meta" }, a.detail)),
      el("td", { class: "effect" }, `${e.metric}: ${value(e.without, e.unit)} → ${value(e.with_action, e.unit)}`,
        el("div", { class: "meta" }, e.text)),
      el("td", { class: "decision" }, applied),
      el("td", {}, el("div", { class: "actions" }, apply)));
  }

  render() {
    const d = this.data;
    const parts = [];
    if (this.error) parts.push(el("p", { class: "error", role: "alert" }, this.error));
    if (!d || d.mode === null) {
      parts.push(el("p", { class: "empty" }, "no data yet"));
      parts.push(el("p", { class: "meta" }, "The operating mode comes from the live traffic estimate and its incidents."));
    } else {
      parts.push(el("p", { class: `mode mode-${d.mode}`, "data-mode": d.mode }, el("strong", {}, `Mode: ${d.mode}`), ` — ${modeText(d)}`));
      if (d.mode === "normal") {
        parts.push(el("p", { class: "empty" }, "normal operation: no action recommended"));
      } else if (!d.actions.length) {
        parts.push(el("p", { class: "empty" }, "no action to recommend for this situation"));
      } else {
        const head = el("thead", {}, el("tr", {}, ...["Kind", "Action", "Expected effect", "Status", ""].map((h) => el("th", {}, h))));
        parts.push(el("table", { class: "playbook-table" }, head, el("tbody", {}, ...d.actions.map((a) => this.row(a)))));
      }
    }
    if (this.log.length) {
      parts.push(el("h3", {}, "Applied actions"));
      parts.push(el("ul", { class: "audit" }, ...this.log.map((e) => el("li", {},
        `${clock(e.applied_at)} ${e.actor} applied (${e.mode}): ${e.title} — ${e.effect.text}`))));
    }
    swap(this.box, ...parts);
  }
}
