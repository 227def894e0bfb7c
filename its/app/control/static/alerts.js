// Live alert feed over server-sent events: reconnection with backoff, freshness indicator,
// alert list with acknowledge and show-on-map actions.

import { ApiError, el, formatAge, postJSON, swap } from "./api.js";

export const STALE_AFTER_S = 15;

export class AlertFeed {
  constructor({ list, empty, count, status, onLocate = () => {}, onChange = () => {}, onEvent = () => {} }) {
    Object.assign(this, { list, empty, count, status, onLocate, onChange, onEvent });
    this.alerts = new Map();
    this.source = null;
    this.retries = 0;
    this.retryTimer = null;
    this.lastUpdate = null;
    this.closed = false;
    this.ticker = setInterval(() => this.showFreshness(), 1000);
  }

  connect() {
    if (this.closed) return;
    const source = new EventSource("/v1/control/stream");
    this.source = source;
    source.addEventListener("open", () => { this.retries = 0; });
    source.addEventListener("snapshot", (e) => {
      const data = JSON.parse(e.data);
      this.alerts = new Map(data.alerts.map((a) => [a.alert_id, a]));
      this.touch();
      this.render();
    });
    source.addEventListener("alert", (e) => {
      const { event, alert } = JSON.parse(e.data);
      if (event === "cleared") this.alerts.delete(alert.alert_id);
      else this.alerts.set(alert.alert_id, alert);
      this.touch();
      this.render();
      this.onEvent(event, alert);
    });
    source.addEventListener("heartbeat", () => this.touch());
    source.addEventListener("resync", () => this.reconnect());
    source.addEventListener("error", () => this.reconnect());
  }

  /** Close the stream and reconnect after 1, 2, 4 … 30 s (with jitter); a lost session goes to login. */
  reconnect() {
    if (this.source) this.source.close();
    this.source = null;
    if (this.closed || this.retryTimer) return;
    const delay = Math.min(30000, 1000 * 2 ** this.retries) * (0.8 + 0.4 * Math.random());
    this.retries += 1;
    this.showFreshness();
    this.retryTimer = setTimeout(async () => {
      this.retryTimer = null;
      try {
        await fetch("/v1/auth/me", { credentials: "same-origin", cache: "no-store" }).then((r) => {
          if (r.status === 401) window.location.assign("/control/login");
        });
      } catch (exc) {
        // the server is away: keep backing off
      }
      this.connect();
    }, delay);
  }

  close() {
    this.closed = true;
    clearInterval(this.ticker);
    clearTimeout(this.retryTimer);
    if (this.source) this.source.close();
  }

  touch() {
    this.lastUpdate = Date.now();
    this.showFreshness();
  }

  showFreshness() {
    if (this.lastUpdate === null) {
      this.status.textContent = this.retries ? "reconnecting…" : "connecting…";
      this.status.classList.toggle("stale", this.retries > 0);
      return;
    }
    const age = (Date.now() - this.lastUpdate) / 1000;
    const reconnecting = this.source === null ? " · reconnecting" : "";
    this.status.textContent = `last update ${formatAge(age)} ago${reconnecting}`;
    this.status.classList.toggle("stale", age > STALE_AFTER_S);
  }

  sorted() {
    const rank = { critical: 0, warning: 1, info: 2 };
    return [...this.alerts.values()].sort((a, b) =>
      (a.acked_at ? 1 : 0) - (b.acked_at ? 1 : 0) || rank[a.severity] - rank[b.severity]
      || b.raised_at.localeCompare(a.raised_at));
  }

  render() {
    const items = this.sorted();
    swap(this.list, ...items.map((a) => this.item(a)));
    this.empty.hidden = items.length > 0;
    const open = items.filter((a) => !a.acked_at).length;
    this.count.textContent = items.length ? `(${open} open / ${items.length})` : "";
    this.onChange(items);
  }

  item(a) {
    const located = Number.isFinite(a.lat) && Number.isFinite(a.lon);
    const raised = new Date(a.raised_at);
    const ack = el("button", {
      type: "button", class: "ack", disabled: Boolean(a.acked_at), "data-focus-key": `ack:${a.alert_id}`,
      "aria-label": `Acknowledge ${a.kind} ${a.subject}`,
      onclick: (e) => this.acknowledge(a, e.currentTarget),
    }, a.acked_at ? "Acknowledged" : "Acknowledge");
    const locate = located ? el("button", {
      type: "button", class: "locate", "data-focus-key": `locate:${a.alert_id}`, "aria-label": `Show ${a.subject} on the map`,
      onclick: () => this.onLocate(a),
    }, "Show on map") : null;
    const acked = a.acked_at
      ? el("div", { class: "meta" }, `acknowledged by ${a.acked_by} at ${new Date(a.acked_at).toLocaleTimeString()}`)
      : null;
    return el("li", { class: `alert ${a.severity}${a.acked_at ? " acked" : ""}`, "data-alert-id": a.alert_id },
      el("div", { class: "title" }, `${a.kind.replaceAll("_", " ")} · ${a.subject}`),
      el("div", {}, a.message),
      el("div", { class: "meta" }, `${a.severity} · raised ${raised.toLocaleTimeString()}`),
      acked,
      el("div", { class: "actions" }, ack, locate));
  }

  async acknowledge(alert, button) {
    button.disabled = true;
    try {
      const updated = await postJSON(`/v1/control/alerts/${encodeURIComponent(alert.alert_id)}/ack`);
      this.alerts.set(updated.alert_id, updated);
    } catch (exc) {
      if (exc instanceof ApiError && exc.status === 404) this.alerts.delete(alert.alert_id);
      else button.disabled = false;
      if (!(exc instanceof ApiError)) console.warn("acknowledge failed", exc);
    }
    this.render();
  }
}
