// Side panels fed from the domain routes (fleet, parking, cameras, traffic); each also feeds a
// map layer. A panel whose routes the API does not serve says "no data yet" and polls nothing.

import { ageSeconds, delayClass, el, formatAge, formatDelay, getJSON, hasRoute, poll, swap } from "./api.js";

const MAX_ROUTES = 60;
const MAX_SITES = 200;

function noData(box, why = "no data yet") {
  swap(box, el("p", { class: "empty" }, why));
}

async function limited(items, limit, task) {
  const out = [];
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await task(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * Line chart (or bars) of `values` on a canvas, sized to its CSS box. `xs` (optional, same length,
 * fractions 0-1 of the width) places the points in time; a non-finite value breaks the line.
 * `labels` ({left, right, top}) writes small captions in the corners.
 */
export function drawSeries(canvas, values, { bars = false, color = "#6cb4ff", min = null, max = null, xs = null, labels = null } = {}) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 100;
  const h = canvas.clientHeight || 24;
  canvas.width = Math.round(w * ratio);
  canvas.height = Math.round(h * ratio);
  const c = canvas.getContext("2d");
  c.setTransform(ratio, 0, 0, ratio, 0, 0);
  c.clearRect(0, 0, w, h);
  if (labels) {
    c.fillStyle = "#a9b7c6";
    c.font = "11px system-ui, sans-serif";
    c.textBaseline = "bottom";
    c.textAlign = "left";
    if (labels.left) c.fillText(labels.left, 3, h - 2);
    c.textAlign = "right";
    if (labels.right) c.fillText(labels.right, w - 3, h - 2);
    c.textBaseline = "top";
    c.textAlign = "left";
    if (labels.top) c.fillText(labels.top, 3, 2);
  }
  const finite = values.filter(Number.isFinite);
  if (!finite.length) return;
  const lo = min ?? Math.min(...finite);
  const hi = Math.max(max ?? Math.max(...finite), lo + 1e-9);
  const [top, bottom] = labels ? [16, 16] : [2, 2];  // keep the line clear of the captions
  const y = (v) => h - bottom - ((v - lo) / (hi - lo)) * (h - top - bottom);
  const xAt = (i) => (xs ? xs[i] * (w - 8) + 4 : values.length > 1 ? (i / (values.length - 1)) * (w - 2) + 1 : w / 2);
  c.fillStyle = color;
  c.strokeStyle = color;
  c.lineWidth = 1.5;
  if (bars) {
    const bw = w / values.length;
    values.forEach((v, i) => { if (Number.isFinite(v)) c.fillRect(i * bw + 1, y(v), Math.max(1, bw - 2), h - y(v)); });
    return;
  }
  const dots = [];
  c.beginPath();
  values.forEach((v, i) => {
    if (!Number.isFinite(v)) return;
    if (Number.isFinite(values[i - 1])) c.lineTo(xAt(i), y(v));
    else if (Number.isFinite(values[i + 1])) c.moveTo(xAt(i), y(v));
    else dots.push([xAt(i), y(v)]);  // a point with no neighbour is drawn as a dot
  });
  c.stroke();
  for (const [x, yy] of dots) {
    c.beginPath();
    c.arc(x, yy, 2.5, 0, 2 * Math.PI);
    c.fill();
  }
}

// ---------------------------------------------------------------------- fleet
export class FleetPanel {
  constructor(box, map) {
    this.box = box;
    this.map = map;
    this.routes = new Map();
    this.routesAt = 0;
    this.vehicles = [];
  }

  /** Whole fleet in one call (``/v1/vehicles``, stale ones flagged), else route by route. */
  start() {
    this.whole = hasRoute("/v1/vehicles");
    if (!this.whole && !(hasRoute("/v1/routes") && hasRoute("/v1/routes/{route_id}/vehicles"))) return noData(this.box);
    poll(() => this.refresh(), 5000);
  }

  /** Route definitions (names), reloaded every 5 min; false when the API cannot give them now. */
  async loadRoutes() {
    if (!hasRoute("/v1/routes")) return true;
    if (!this.routes.size || Date.now() - this.routesAt > 300000) {
      const data = await getJSON("/v1/routes");
      if (data === null) return false;
      this.routes = new Map(data.routes.map((r) => [r.route_id, r]));
      this.routesAt = Date.now();
    }
    return true;
  }

  vehicleItem(v, route) {
    const name = (route && (route.short_name || route.route_id)) || v.route_id || "no trip";
    return { ...v, kind: "vehicle", id: v.vehicle_id, route_name: name, label: v.route_id ? name : null,
      observed_at: v.observed_at || v.updated_at };
  }

  async activeRouteIds() {
    if (!(await this.loadRoutes())) return null;
    if (hasRoute("/gtfs-rt/vehicle-positions")) {
      const feed = await getJSON("/gtfs-rt/vehicle-positions?format=json");
      if (feed === null) return null;
      const ids = new Set();
      for (const e of feed.entity || []) {
        const trip = e.vehicle && e.vehicle.trip;
        if (trip && trip.route_id && this.routes.has(trip.route_id)) ids.add(trip.route_id);
      }
      return [...ids];
    }
    return [...this.routes.keys()].slice(0, MAX_ROUTES);
  }

  async refresh() {
    const vehicles = this.whole ? await this.wholeFleet() : await this.byRoute();
    if (vehicles === null) return null;
    this.vehicles = vehicles;
    this.map.setPoints("vehicles", vehicles);
    this.map.autoFit();
    this.render();
    return vehicles;
  }

  async wholeFleet() {
    const [data] = await Promise.all([getJSON("/v1/vehicles"), this.loadRoutes()]);
    if (data === null) return null;
    return data.vehicles.map((v) => this.vehicleItem(v, this.routes.get(v.route_id)));
  }

  async byRoute() {
    const ids = await this.activeRouteIds();
    if (ids === null) return null;
    const answers = await limited(ids.slice(0, MAX_ROUTES), 4, (id) => getJSON(`/v1/routes/${encodeURIComponent(id)}/vehicles`));
    const vehicles = [];
    answers.forEach((a) => {
      if (a) for (const v of a.vehicles) vehicles.push(this.vehicleItem(v, a.route));
    });
    return vehicles;
  }

  render() {
    if (!this.vehicles.length) return noData(this.box, "no vehicles on the road");
    const byRoute = new Map();
    for (const v of this.vehicles) {
      if (!byRoute.has(v.route_name)) byRoute.set(v.route_name, []);
      byRoute.get(v.route_name).push(v);
    }
    const rows = [];
    const order = (a, b) => (a[1][0].route_id ? 0 : 1) - (b[1][0].route_id ? 0 : 1)  // vehicles off trips last
      || String(a[0]).localeCompare(String(b[0]), undefined, { numeric: true });
    for (const [name, list] of [...byRoute].sort(order)) {
      const late = list.filter((v) => (v.delay_s ?? 0) > 300).length;
      const stale = list.filter((v) => v.stale).length;
      const head = list[0].route_id ? `Route ${name}` : "Not on a trip";
      rows.push(el("tr", { class: "route-head" }, el("td", { colspan: 3 },
        `${head} · ${list.length} vehicles${late ? ` · ${late} late` : ""}${stale ? ` · ${stale} silent` : ""}`)));
      for (const v of list.sort((a, b) => String(a.vehicle_id).localeCompare(String(b.vehicle_id), undefined, { numeric: true }))) {
        rows.push(el("tr", { "data-vehicle-id": v.vehicle_id, class: v.stale ? "stale" : null },
          el("td", {}, el("button", { type: "button", class: "link", "data-focus-key": `v:${v.vehicle_id}`, onclick: () => this.locate(v) }, v.vehicle_id)),
          el("td", { class: `num ${delayClass(v.delay_s)}` }, formatDelay(v.delay_s)),
          el("td", { class: `num${v.stale ? " late" : ""}`, title: v.stale ? "no position for too long" : null },
            `${formatAge(v.age_s ?? ageSeconds(v.observed_at))}${v.stale ? " (stale)" : ""}`)));
      }
    }
    swap(this.box, el("table", {},
      el("thead", {}, el("tr", {}, el("th", {}, "Vehicle"), el("th", { class: "num" }, "Delay"), el("th", { class: "num" }, "Updated"))),
      el("tbody", {}, ...rows)));
  }

  locate(v) {
    this.map.flyTo(v.lon, v.lat, Math.max(this.map.zoom, 15));
    this.map.select(this.map.layers.vehicles.find((x) => x.id === v.vehicle_id) || null);
  }
}

// ---------------------------------------------------------------------- parking
export class ParkingPanel {
  constructor(box, map) {
    this.box = box;
    this.map = map;
    this.sites = new Map();   // site_id -> definition (name, lat, lon)
    this.history = new Map(); // site_id -> [free...]
    this.forecasts = new Map();
    this.current = [];
  }

  start() {
    if (!hasRoute("/v1/parking/availability")) return noData(this.box);
    poll(() => this.refresh(), 10000);
    if (hasRoute("/v1/parking/sites/{site_id}/history")) poll(() => this.loadHistory(), 300000);
    if (hasRoute("/v1/parking/sites/{site_id}/forecast")) poll(() => this.loadForecasts(), 60000);
  }

  async refresh() {
    const data = await getJSON("/v1/parking/availability");
    if (data === null) return null;
    const rank = { full: 0, almostFull: 1, spacesAvailable: 2, unknown: 3, closed: 4 };
    this.current = data.sites.slice(0, MAX_SITES)
      .sort((a, b) => (rank[a.status] ?? 5) - (rank[b.status] ?? 5) || String(a.site_id).localeCompare(String(b.site_id)));
    const missing = this.current.filter((s) => !this.sites.has(s.site_id)).map((s) => s.site_id);
    if (missing.length && hasRoute("/v1/parking/sites/{site_id}")) {
      const defs = await limited(missing, 4, (id) => getJSON(`/v1/parking/sites/${encodeURIComponent(id)}`));
      defs.forEach((d, i) => this.sites.set(missing[i], d || { site_id: missing[i] }));
      if (!this.history.size) this.loadHistory();
      if (!this.forecasts.size) this.loadForecasts();
    }
    this.map.setPoints("parking", this.current.map((s) => {
      const def = this.sites.get(s.site_id) || {};
      return { ...s, kind: "parking", id: s.site_id, name: def.name, lat: def.lat, lon: def.lon };
    }));
    this.map.autoFit();
    this.render();
    return data;
  }

  async loadHistory() {
    if (!hasRoute("/v1/parking/sites/{site_id}/history") || !this.current.length) return null;
    const ids = this.current.map((s) => s.site_id);
    const answers = await limited(ids, 3, (id) => getJSON(`/v1/parking/sites/${encodeURIComponent(id)}/history?interval=15m`));
    answers.forEach((a, i) => {
      if (a) this.history.set(ids[i], a.records.map((r) => r.mean_free ?? r.free ?? null));
    });
    this.render();
    return answers;
  }

  async loadForecasts() {
    if (!hasRoute("/v1/parking/sites/{site_id}/forecast") || !this.current.length) return null;
    const ids = this.current.map((s) => s.site_id);
    const answers = await limited(ids, 3, (id) => getJSON(`/v1/parking/sites/${encodeURIComponent(id)}/forecast`));
    answers.forEach((a, i) => { if (a) this.forecasts.set(ids[i], a.forecasts || []); });
    this.render();
    return answers;
  }

  render() {
    if (!this.current.length) return noData(this.box);
    const rows = this.current.map((s) => {
      const def = this.sites.get(s.site_id) || {};
      const spark = el("canvas", { class: "spark", "aria-label": `free spaces over the last 24 h at ${def.name || s.site_id}` });
      const series = this.history.get(s.site_id);
      const fc = (this.forecasts.get(s.site_id) || []).map((f) => (f.free === null ? "–" : Math.round(f.free))).join(" / ");
      requestAnimationFrame(() => drawSeries(spark, series || [], { min: 0, max: s.capacity, color: "#3ccf6b" }));
      return el("tr", { "data-site-id": s.site_id },
        el("td", {}, el("button", { type: "button", class: "link", "data-focus-key": `p:${s.site_id}`, onclick: () => this.locate(s.site_id) }, def.name || s.site_id)),
        el("td", { class: `num status-${s.status}` }, `${s.free ?? "?"}/${s.capacity}`),
        el("td", {}, series && series.length ? spark : "–"),
        el("td", { class: "num" }, fc || "–"));
    });
    swap(this.box, el("table", {},
      el("thead", {}, el("tr", {}, el("th", {}, "Site"), el("th", { class: "num" }, "Free"),
        el("th", {}, "24 h"), el("th", { class: "num", title: "forecast free spaces at +15 / +30 / +60 min" }, "+15/30/60"))),
      el("tbody", {}, ...rows)));
  }

  locate(siteId) {
    const p = this.map.layers.parking.find((x) => x.id === siteId);
    if (!p) return;
    this.map.flyTo(p.lon, p.lat, Math.max(this.map.zoom, 16));
    this.map.select(p);
  }
}

// ---------------------------------------------------------------------- cameras
export class CamerasPanel {
  constructor(box, map) {
    this.box = box;
    this.map = map;
    this.cameras = [];
    this.selected = null;
    this.series = new Map(); // camera_id -> Map(interval_start -> total count)
    this.missing = new Map(); // camera_id -> when its snapshot was found missing (ms)
  }

  start() {
    if (!hasRoute("/v1/cameras")) return noData(this.box);
    poll(() => this.refresh(), 10000);
  }

  async refresh() {
    const data = await getJSON("/v1/cameras");
    if (data === null) return null;
    this.cameras = data.cameras;
    this.map.setPoints("cameras", this.cameras.map((c) => ({ ...c, kind: "camera", id: c.camera_id })));
    if (!this.cameras.length) {
      noData(this.box, "no cameras yet");
      return data;
    }
    if (!this.selected || !this.cameras.some((c) => c.camera_id === this.selected)) this.selected = this.cameras[0].camera_id;
    const detail = hasRoute("/v1/cameras/{camera_id}") ? await getJSON(`/v1/cameras/${encodeURIComponent(this.selected)}`) : null;
    if (detail && detail.interval_start) {
      const series = this.series.get(this.selected) || new Map();
      series.set(detail.interval_start, detail.counts.reduce((n, r) => n + r.count, 0));
      while (series.size > 60) series.delete(series.keys().next().value);
      this.series.set(this.selected, series);
    }
    this.render(detail);
    return data;
  }

  render(detail) {
    const select = el("select", { id: "camera-select", "aria-label": "Camera", "data-focus-key": "camera-select" },
      ...this.cameras.map((c) => el("option", { value: c.camera_id, selected: c.camera_id === this.selected },
        `${c.camera_id}${c.synthetic ? " (synthetic)" : ""}${c.online === false ? " (offline)" : c.stale ? " (stale)" : ""}`)));
    select.addEventListener("change", () => this.show(select.value));
    const camera = this.cameras.find((c) => c.camera_id === this.selected);
    const located = camera && Number.isFinite(camera.lat) && Number.isFinite(camera.lon);
    const locate = located ? el("button", { type: "button", class: "locate", "data-focus-key": "camera-locate",
      "aria-label": `Show camera ${this.selected} on the map`, onclick: () => this.locate(this.selected) }, "Show on map") : null;
    const parts = [el("div", { class: "camera-head" }, select, locate)];
    if (camera && camera.synthetic) {
      parts.push(el("p", { class: "meta synthetic", "data-synthetic": "true" },
        camera.description || "synthetic scene rendered by the platform, not real footage"));
    }
    // request the JPEG only when the camera has one: snapshot_at when the API gives it, else once it
    // counts; a camera whose snapshot was missing is not asked again for 5 min (unless snapshot_at says so)
    const id = this.selected;
    const missingSince = this.missing.get(id);
    const hasSnapshot = detail && ("snapshot_at" in detail ? detail.snapshot_at !== null
      : Boolean(detail.interval_start) && !(missingSince && Date.now() - missingSince < 300000));
    if (hasRoute("/v1/cameras/{camera_id}/snapshot.jpg") && hasSnapshot) {
      // one <img> per camera, reloaded only when a new interval has been counted
      const stamp = detail.snapshot_at || detail.interval_start;
      const key = `${id}@${stamp}`;
      if (!this.image || this.imageKey !== key) {
        this.image = el("img", { class: "snapshot", alt: `latest annotated snapshot of camera ${id}`,
          src: `/v1/cameras/${encodeURIComponent(id)}/snapshot.jpg?t=${encodeURIComponent(stamp)}` });
        this.image.addEventListener("load", () => this.missing.delete(id));
        this.image.addEventListener("error", (e) => {
          this.missing.set(id, Date.now());
          e.currentTarget.replaceWith(el("p", { class: "empty" }, "no snapshot yet"));
        });
        this.imageKey = key;
      }
      parts.push(this.image);
    }
    if (detail && detail.counts && detail.counts.length) {
      const chart = el("canvas", { class: "chart", "aria-label": "vehicles counted per interval" });
      const values = [...(this.series.get(this.selected) || new Map()).values()];
      requestAnimationFrame(() => drawSeries(chart, values, { bars: true, min: 0, color: "#b48cff" }));
      parts.push(el("p", { class: "meta" }, `counts per ${detail.interval_s} s interval, latest ${formatAge(detail.age_s)} ago`), chart);
      parts.push(el("table", {}, el("tbody", {}, ...detail.counts.map((r) => el("tr", {},
        el("td", {}, `${r.line_id} ${r.direction}`), el("td", {}, r.vehicle_class), el("td", { class: "num" }, r.count))))));
    } else if (!(detail && detail.people)) {
      parts.push(el("p", { class: "empty" }, "no counts yet"));
    }
    if (detail && detail.people) parts.push(...peopleRows(detail.people));
    swap(this.box, ...parts);
  }

  /** Select a camera in the panel (from the list or a click on the map) and load its counts. */
  show(cameraId) {
    if (!this.cameras.some((c) => c.camera_id === cameraId)) return;
    this.selected = cameraId;
    this.refresh().catch(() => {});
  }

  locate(cameraId) {
    const p = this.map.layers.cameras.find((x) => x.id === cameraId);
    if (!p) return;
    this.map.flyTo(p.lon, p.lat, Math.max(this.map.zoom, 16));
    this.map.select(p);
  }
}

/** Pedestrians of a camera's latest people interval: people present per zone, crossings per line. */
function peopleRows(people) {
  const how = people.crossings_measured ? "" : " (zones only: frames too far apart or no people lines)";
  return [
    el("p", { class: "meta" }, `pedestrians per ${people.interval_s} s interval${how}`),
    el("table", { class: "people" }, el("tbody", {},
      ...people.zones.map((z) => el("tr", {}, el("td", {}, z.zone_id === "all" ? "whole view" : z.zone_id),
        el("td", {}, "present"), el("td", { class: "num" }, `${z.people_mean.toFixed(1)} (max ${Math.round(z.people_max)})`))),
      ...people.lines.map((l) => el("tr", {}, el("td", {}, `${l.line_id} ${l.direction}`),
        el("td", {}, "crossed"), el("td", { class: "num" }, l.crossings.toFixed(1)))))),
  ];
}

// ---------------------------------------------------------------------- traffic
/** Network travel time index (current / free-flow travel time, length weighted) and slowest named roads. */
export function congestionSummary(geojson) {
  let tt = 0;
  let ff = 0;
  const byName = new Map();
  for (const f of geojson.features || []) {
    const p = f.properties || {};
    if (!(p.speed_mps > 0) || !(p.freeflow_mps > 0) || !(p.length_m > 0)) continue;
    tt += p.length_m / p.speed_mps;
    ff += p.length_m / p.freeflow_mps;
    if (!p.name) continue;
    const g = byName.get(p.name) || { name: p.name, tt: 0, ff: 0, length: 0, lon: 0, lat: 0 };
    g.tt += p.length_m / p.speed_mps;
    g.ff += p.length_m / p.freeflow_mps;
    g.length += p.length_m;
    const mid = f.geometry.coordinates[Math.floor(f.geometry.coordinates.length / 2)];
    if (mid) { g.lon = mid[0]; g.lat = mid[1]; }
    byName.set(p.name, g);
  }
  const corridors = [...byName.values()].filter((g) => g.length >= 300)
    .map((g) => ({ ...g, tti: g.tt / g.ff })).sort((a, b) => b.tti - a.tti).slice(0, 8);
  return { tti: ff > 0 ? tt / ff : null, corridors };
}

const TTI_HISTORY = "/v1/traffic/indices/history";
const DAY_MS = 24 * 3600 * 1000;
const LARGE_NETWORK = 20000; // edges above which the map asks only for the roads in view
const FULL_EVERY_MS = 300000;

export class TrafficPanel {
  constructor(box, map) {
    this.box = box;
    this.map = map;
    this.key = `its-tti-${new Date().toISOString().slice(0, 10)}`;
    this.samples = JSON.parse(sessionStorage.getItem(this.key) || "[]");
    this.incidents = [];
    this.summary = null;
    this.large = false;
    this.fullAt = 0;
    this.viewTimer = null;
    this.history = null; // [[epoch ms, tti]...] from the server, oldest first
    this.historyStep = null;
    this.geo = null;
  }

  start() {
    if (!hasRoute("/v1/traffic/congestion")) return noData(this.box);
    poll(() => this.refresh(), 30000);
    if (hasRoute(TTI_HISTORY)) poll(() => this.loadHistory(), 60000);
    this.map.onView(() => {
      if (!this.large) return;
      clearTimeout(this.viewTimer);
      this.viewTimer = setTimeout(() => this.refresh().catch(() => {}), 600);
    });
  }

  /** The whole network (small networks, and large ones every 5 min for the index), else the view's bbox. */
  congestionPath() {
    if (!this.large || !this.map.userMoved || Date.now() - this.fullAt > FULL_EVERY_MS) return null;
    const v = this.map.view();
    const padX = (v.east - v.west) * 0.25;
    const padY = (v.north - v.south) * 0.25;
    const box = [Math.max(-180, v.west - padX), Math.max(-90, v.south - padY),
      Math.min(180, v.east + padX), Math.min(90, v.north + padY)];
    return `/v1/traffic/congestion?bbox=${box.map((x) => x.toFixed(5)).join(",")}`;
  }

  async refresh() {
    const viewPath = this.congestionPath();
    const geo = await getJSON(viewPath || "/v1/traffic/congestion");
    if (geo === null) return null;
    this.map.setRoads(geo);
    this.map.autoFit();
    if (!viewPath) {
      this.fullAt = Date.now();
      this.large = (geo.features || []).length > LARGE_NETWORK;
      this.summary = congestionSummary(geo);
      if (this.summary.tti !== null && !hasRoute(TTI_HISTORY)) {  // no server history: sample it here
        this.samples.push([Date.now(), this.summary.tti]);
        const since = Date.now() - 24 * 3600 * 1000;
        this.samples = this.samples.filter(([t]) => t >= since).slice(-2000);
        sessionStorage.setItem(this.key, JSON.stringify(this.samples));
      }
    }
    const inc = hasRoute("/v1/traffic/incidents") ? await getJSON("/v1/traffic/incidents") : null;
    this.incidents = inc ? inc.incidents : [];
    this.geo = geo;
    this.render();
    return geo;
  }

  /** The network's travel time index over the last 24 h, as the traffic service recorded it. */
  async loadHistory() {
    const data = await getJSON(`${TTI_HISTORY}?hours=24`);
    if (data === null) return null;
    this.history = (data.points || []).map((p) => [Date.parse(p.time), p.tti])
      .filter(([t, v]) => Number.isFinite(t) && Number.isFinite(v));
    this.historyStep = data.step_s;
    if (this.geo) this.render();
    return data;
  }

  /** Chart values, x positions (fractions of the last 24 h) and a caption. */
  series() {
    const now = Date.now();
    const server = this.history !== null;
    const points = server ? this.history : this.samples;
    const gap = server && this.historyStep ? 3 * this.historyStep * 1000 : 15 * 60 * 1000;
    const values = [];
    const xs = [];
    points.forEach(([t, v], i) => {
      if (i > 0 && t - points[i - 1][0] > gap) { values.push(NaN); xs.push(0); }  // a hole in the record
      values.push(v);
      xs.push(Math.max(0, Math.min(1, 1 - (now - t) / DAY_MS)));
    });
    const n = points.length;
    let caption = server ? `travel time index over the last 24 h (${n} point${n === 1 ? "" : "s"})`
      : `index over the day as sampled by this screen (${n} sample${n === 1 ? "" : "s"})`;
    if (points.length) {
      const [tPeak, peak] = points.reduce((best, p) => (p[1] > best[1] ? p : best));
      caption += ` · peak ${peak.toFixed(2)} at ${new Date(tPeak).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}`;
    }
    return { values, xs, caption, peak: points.length ? Math.max(...points.map((p) => p[1])) : null };
  }

  render() {
    const geo = this.geo || {};
    const s = this.summary;
    if (!s || s.tti === null) return noData(this.box, `no speed estimates yet (${(geo.features || []).length} roads)`);
    const { values, xs, caption, peak } = this.series();
    const chart = el("canvas", { class: "chart", "aria-label": `chart: ${caption}` });
    const labels = { left: "24 h ago", right: "now", top: peak === null ? "" : `max ${peak.toFixed(2)}` };
    const lo = Math.min(1, ...values.filter(Number.isFinite));  // below 1: faster than free flow
    requestAnimationFrame(() => drawSeries(chart, values, { min: lo, color: "#f0b429", xs, labels }));
    const rows = s.corridors.map((g) => el("tr", {},
      el("td", {}, el("button", { type: "button", class: "link", "data-focus-key": `c:${g.name}`, onclick: () => this.map.flyTo(g.lon, g.lat, 15) }, g.name)),
      el("td", { class: "num" }, g.tti.toFixed(2)),
      el("td", { class: "num" }, `${(g.length / 1000).toFixed(1)} km`)));
    const head = el("thead", {}, el("tr", {}, el("th", {}, "Slowest corridors"), el("th", { class: "num" }, "TTI"),
      el("th", { class: "num" }, "Length")));
    const corridors = rows.length ? el("table", {}, head, el("tbody", {}, ...rows))
      : el("p", { class: "empty" }, "no named corridors in this road network");
    swap(this.box,
      el("p", {}, "Travel time index now: ", el("strong", {}, s.tti.toFixed(2)), ` · ${this.incidents.length} incidents`),
      chart, el("p", { class: "meta tti-caption" }, caption),
      corridors);
  }
}
