// Control-centre page: wires the session, the map, the live alert feed and the panels.

import { el, formatAge, formatDelay, getJSON, hasRoute, loadSession, postJSON, session } from "./api.js";
import { AlertFeed } from "./alerts.js";
import { MapView } from "./map.js";
import { HoldingPanel } from "./holding.js";
import { PlaybookPanel } from "./playbook.js";
import { CamerasPanel, FleetPanel, ParkingPanel, TrafficPanel } from "./panels.js";
import { ReportsView } from "./reports.js";

const $ = (id) => document.getElementById(id);

function kmh(mps) {
  return Number.isFinite(mps) ? `${Math.round(mps * 3.6)} km/h` : "–";
}

/** Details of a clicked map feature as a definition list. */
function describe(f) {
  if (!f) return [["", "Nothing here. Click a road, bus, stop, car park or camera."]];
  switch (f.kind) {
    case "road": return [["Road", f.props.name || `edge ${f.id}`], ["Class", f.props.road_class],
      ["Level", f.level || "no estimate"], ["Speed", kmh(f.props.speed_mps)], ["Usual", kmh(f.props.usual_mps)],
      ["Free flow", kmh(f.props.freeflow_mps)], ["Length", `${Math.round(f.props.length_m)} m`]];
    case "vehicle": return [["Bus", f.vehicle_id], ["Route", f.route_name], ["Trip", f.trip_id],
      ["Delay", formatDelay(f.delay_s)], ["Speed", kmh(f.speed_mps)], ["Next stop", f.next_stop_id],
      ["Last update", `${formatAge(f.age_s)} ago${f.stale ? " (stale)" : ""}`]];
    case "stop": return [["Stop", f.name || f.stop_id], ["Code", f.code || f.stop_code], ["Id", f.stop_id]];
    case "parking": return [["Car park", f.name || f.site_id], ["Free", `${f.free ?? "?"} of ${f.capacity}`],
      ["Status", f.status], ["Observed", `${formatAge(f.age_s)} ago`]];
    case "camera": return [["Camera", f.camera_id], ["Online", f.online === false ? "no" : "yes"],
      ["Counts", `${formatAge(f.age_s)} ago${f.stale ? " (stale)" : ""}`],
      ["Position", `${f.lat.toFixed(5)}, ${f.lon.toFixed(5)}`]];
    case "alert": return [["Alert", f.kind_name], ["Subject", f.subject], ["Message", f.message], ["Severity", f.severity]];
    default: return [["", String(f.id)]];
  }
}

function showDetails(f) {
  const dl = el("dl", { class: "kv" });
  for (const [k, v] of describe(f)) dl.append(el("dt", {}, k), el("dd", {}, v ?? "–"));
  $("map-details").replaceChildren(dl);
}

async function loadStops(map, view) {
  if (view.zoom < 15 || !hasRoute("/v1/stops")) {
    if (map.layers.stops.length) map.setPoints("stops", []);
    return;
  }
  const radius = Math.min(5000, Math.max(200, 111320 * Math.abs(view.north - view.south) * 0.75));
  const data = await getJSON(`/v1/stops?lat=${view.lat.toFixed(6)}&lon=${view.lon.toFixed(6)}&radius_m=${Math.round(radius)}&limit=100`);
  if (data) map.setPoints("stops", data.stops.map((s) => ({ ...s, kind: "stop", id: s.stop_id })));
}

function summarise(map) {
  const L = map.layers;
  const count = (n, one, many) => `${n} ${n === 1 ? one : many}`;
  const parts = [];
  if (L.vehicles.length) parts.push(count(L.vehicles.length, "bus", "buses"));
  if (L.roads.length) parts.push(count(L.roads.length, "road", "roads"));
  if (L.parking.length) parts.push(count(L.parking.length, "car park", "car parks"));
  if (L.cameras.length) parts.push(count(L.cameras.length, "camera", "cameras"));
  if (L.alerts.length) parts.push(count(L.alerts.length, "alert", "alerts"));
  $("map-summary").textContent = parts.length ? parts.join(" · ") : "no data yet";
}

async function main() {
  await loadSession();
  $("user-name").textContent = `${session.user} (${session.role})`;
  let cameras = null;
  const onSelect = (f) => {
    showDetails(f);
    if (f && f.kind === "camera" && cameras) cameras.show(f.id);  // its snapshot and counts in the panel
  };
  const map = new MapView($("map"), { onSelect, tileUrl: session.config.basemap_tile_url || null });
  const redrawSummary = map.redraw.bind(map);
  map.redraw = () => { redrawSummary(); summarise(map); };
  let stopsTimer = null;
  map.onView((view) => {
    clearTimeout(stopsTimer);
    stopsTimer = setTimeout(() => loadStops(map, view), 300);
  });
  $("zoom-in").addEventListener("click", () => map.zoomBy(1));
  $("zoom-out").addEventListener("click", () => map.zoomBy(-1));
  $("zoom-fit").addEventListener("click", () => { map.userMoved = false; map.fit(); });

  const fleet = new FleetPanel($("fleet"), map);
  const parking = new ParkingPanel($("parking"), map);
  const feed = new AlertFeed({
    list: $("alerts"), empty: $("alerts-empty"), count: $("alerts-count"), status: $("feed-status"),
    onLocate: (a) => {
      map.flyTo(a.lon, a.lat, Math.max(map.zoom, 16));
      map.select(map.layers.alerts.find((p) => p.id === a.alert_id) || null);
    },
    onChange: (alerts) => map.setPoints("alerts", alerts.filter((a) => !a.acked_at).map((a) => ({
      ...a, kind: "alert", kind_name: a.kind, id: a.alert_id }))),
    // a parking alert means availability changed: refresh that panel now rather than at its next poll
    onEvent: (event, a) => {
      if (event === "raised" && a.kind.startsWith("parking") && hasRoute("/v1/parking/availability")) {
        parking.refresh().catch(() => {});
      }
    },
  });
  feed.connect();

  $("logout").addEventListener("click", async () => {
    feed.close();
    try {
      await postJSON("/v1/auth/logout");
    } finally {
      window.location.assign("/control/login");
    }
  });

  cameras = new CamerasPanel($("cameras"), map);
  const panels = [fleet, parking, cameras, new TrafficPanel($("traffic"), map),
    new PlaybookPanel($("playbook"), map), new HoldingPanel($("holding"), map)];
  for (const panel of panels) panel.start();
  const reports = new ReportsView({
    toggle: $("reports-toggle"), box: $("reports-body"), form: $("reports-form"), from: $("reports-from"),
    to: $("reports-to"), status: $("reports-status"), sections: $("reports-sections"), files: $("reports-files"),
  });
  window.itsControl = { map, feed, panels, reports, session };
}

main().catch((exc) => {
  if (exc && exc.status === 401) return; // already on the way to the login page
  $("feed-status").textContent = `cannot start: ${exc.message || exc}`;
  $("feed-status").classList.add("stale");
});
