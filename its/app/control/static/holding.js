// Holding advice panel: the headway control's advice per bus (its next control stop, how long
// to hold and why), accepted or dismissed by the dispatcher, and the latest decisions.

import { ApiError, el, getJSON, hasRoute, poll, postJSON, swap } from "./api.js";

const ADVICE = "/v1/holding/advice";
const AUDIT = "/v1/holding/audit";

function seconds(s) {
  if (s === null || s === undefined) return "–";
  const m = Math.floor(Math.abs(s) / 60);
  const r = Math.abs(Math.round(s)) % 60;
  return m ? `${m}:${String(r).padStart(2, "0")}` : `${Math.round(s)} s`;
}

function clock(iso) {
  return iso ? new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" }) : "–";
}

export class HoldingPanel {
  constructor(box, map) {
    this.box = box;
    this.map = map;
    this.advice = [];
    this.audit = [];
    this.error = null;
    this.busy = new Set();
  }

  start() {
    if (!hasRoute(ADVICE)) {
      swap(this.box, el("p", { class: "empty" }, "no data yet"));
      return;
    }
    poll(() => this.refresh(), 5000);
  }

  async refresh() {
    const [data, audit] = await Promise.all([getJSON(ADVICE), hasRoute(AUDIT) ? getJSON(`${AUDIT}?limit=8`) : null]);
    if (data === null) return null;
    this.advice = data.advice;
    if (audit) this.audit = audit.entries;
    this.render();
    return data;
  }

  async decide(a, action) {
    this.busy.add(a.advice_id);
    this.error = null;
    this.render();
    try {
      const updated = await postJSON(`${ADVICE}/${encodeURIComponent(a.advice_id)}`, { action });
      this.advice = this.advice.map((x) => (x.advice_id === updated.advice_id ? updated : x));
    } catch (exc) {
      this.error = exc instanceof ApiError ? exc.message : String(exc);
    } finally {
      this.busy.delete(a.advice_id);
    }
    await this.refresh().catch(() => this.render());
  }

  locate(a) {
    const bus = this.map.layers.vehicles.find((v) => v.id === a.vehicle_id);
    if (!bus) return;
    this.map.flyTo(bus.lon, bus.lat, Math.max(this.map.zoom, 15));
    this.map.select(bus);
  }

  row(a) {
    const busy = this.busy.has(a.advice_id);
    const who = `bus ${a.vehicle_id} at ${a.stop_name || a.stop_id}`;
    const accept = el("button", {
      type: "button", class: "accept", disabled: busy || a.status === "accepted", "data-focus-key": `accept:${a.advice_id}`,
      "aria-label": `Accept: hold ${who} for ${a.hold_s} s`, onclick: () => this.decide(a, "accept"),
    }, a.status === "accepted" ? "Accepted" : "Accept");
    const dismiss = el("button", {
      type: "button", class: "dismiss", disabled: busy || a.status === "dismissed", "data-focus-key": `dismiss:${a.advice_id}`,
      "aria-label": `Dismiss the hold of ${who}`, onclick: () => this.decide(a, "dismiss"),
    }, a.status === "dismissed" ? "Dismissed" : "Dismiss");
    const decided = a.decided_by ? `${a.status} by ${a.decided_by} at ${clock(a.decided_at)}` : "advised";
    const gaps = `${seconds(a.forward_headway_s)} / ${seconds(a.backward_headway_s)}`;
    return el("tr", { "data-advice-id": a.advice_id, "data-vehicle-id": a.vehicle_id, class: `advice ${a.status}`, title: a.reason },
      el("td", {}, el("button", { type: "button", class: "link", "data-focus-key": `bus:${a.advice_id}`, onclick: () => this.locate(a) }, a.vehicle_id)),
      el("td", {}, a.route_id),
      el("td", {}, a.stop_name || a.stop_id, a.at_origin ? el("span", { class: "meta" }, " (terminal)") : null),
      el("td", { class: "num hold" }, seconds(a.hold_s)),
      el("td", { class: "num" }, gaps, el("div", { class: "meta" }, `every ${seconds(a.scheduled_headway_s)}${a.frequent ? "" : " · timetabled"}`)),
      el("td", { class: "decision" }, decided, a.published ? el("div", { class: "meta" }, "sent to the bus") : null),
      el("td", {}, el("div", { class: "actions" }, accept, dismiss)));
  }

  render() {
    const parts = [];
    if (this.error) parts.push(el("p", { class: "error", role: "alert" }, this.error));
    if (!this.advice.length) {
      parts.push(el("p", { class: "empty" }, "no bus needs holding now"));
    } else {
      const head = el("thead", {}, el("tr", {}, ...["Bus", "Route", "Hold at", "Hold", "Gap ahead / behind", "Decision", ""]
        .map((h, i) => el("th", { class: i === 3 || i === 4 ? "num" : null }, h))));
      parts.push(el("table", { class: "holding-table" }, head, el("tbody", {}, ...this.advice.map((a) => this.row(a)))));
      parts.push(el("p", { class: "meta" }, "Hover a row for the reason; the bus's display shows accepted and advised holds, not dismissed ones."));
    }
    if (this.audit.length) {
      parts.push(el("h3", {}, "Latest decisions"));
      parts.push(el("ul", { class: "audit" }, ...this.audit.map((e) => el("li", {},
        `${clock(e.decided_at)} ${e.actor} ${e.action} ${Math.round(e.hold_s)} s for bus ${e.vehicle_id} (route ${e.route_id}, stop ${e.stop_id})`))));
    }
    swap(this.box, ...parts);
  }
}
