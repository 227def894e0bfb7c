// Offline map on a canvas: Web Mercator, pan (drag/arrows), zoom (wheel/buttons/keys), click for details.
// Layers: optional basemap tiles, roads by congestion level, stops, car parks, cameras, buses, alerts.

const TILE = 256;
const MIN_ZOOM = 2;
const MAX_ZOOM = 19;
export const LEVEL_COLORS = { free: "#3ccf6b", moderate: "#f0b429", heavy: "#ff7a3d", jammed: "#d7263d" };
const LEVEL_NAMES = ["free", "moderate", "heavy", "jammed"];
const NO_LEVEL = "#5d7085";
const PARKING_COLORS = { spacesAvailable: "#3ccf6b", almostFull: "#f0b429", full: "#d7263d" };

/** lon/lat degrees → Web Mercator world coordinates in [0, 1]. */
export function project(lon, lat) {
  const phi = (Math.max(-85.05112878, Math.min(85.05112878, lat)) * Math.PI) / 180;
  return [(lon + 180) / 360, (1 - Math.log(Math.tan(phi) + 1 / Math.cos(phi)) / Math.PI) / 2];
}

export function unproject(x, y) {
  const n = Math.PI - 2 * Math.PI * y;
  return [x * 360 - 180, (180 / Math.PI) * Math.atan(0.5 * (Math.exp(n) - Math.exp(-n)))];
}

/** Colour of a bus by delay (s, late positive). */
export function delayColor(delay) {
  if (delay === null || delay === undefined) return "#9aa9b8";
  if (delay > 300) return "#ff5a4f";
  if (delay > 60) return "#f0b429";
  if (delay < -60) return "#6cb4ff";
  return "#3ccf6b";
}

function levelName(level) {
  return typeof level === "number" ? LEVEL_NAMES[level] : level;
}

export class MapView {
  constructor(canvas, { onSelect = () => {}, tileUrl = null } = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.onSelect = onSelect;
    this.tileUrl = tileUrl;
    this.tiles = new Map();
    this.center = project(0, 20);
    this.zoom = 3;
    this.userMoved = false;
    this.layers = { roads: [], stops: [], parking: [], cameras: [], vehicles: [], alerts: [] };
    this.selected = null;
    this.viewListeners = [];
    this.pending = false;
    this.bindEvents();
    new ResizeObserver(() => this.redraw()).observe(canvas);
  }

  // ------------------------------------------------------------------ data
  setRoads(geojson) {
    const roads = [];
    for (const f of (geojson && geojson.features) || []) {
      const g = f.geometry;
      if (!g) continue;
      const lines = g.type === "LineString" ? [g.coordinates] : g.type === "MultiLineString" ? g.coordinates : [];
      for (const line of lines) {
        const xs = new Float64Array(line.length);
        const ys = new Float64Array(line.length);
        let minx = 1, miny = 1, maxx = 0, maxy = 0;
        line.forEach(([lon, lat], i) => {
          const [x, y] = project(lon, lat);
          xs[i] = x; ys[i] = y;
          minx = Math.min(minx, x); maxx = Math.max(maxx, x); miny = Math.min(miny, y); maxy = Math.max(maxy, y);
        });
        const props = f.properties || {};
        roads.push({ kind: "road", id: f.id ?? props.edge, props, xs, ys, bbox: [minx, miny, maxx, maxy],
          level: levelName(props.level) });
      }
    }
    this.layers.roads = roads;
    this.redraw();
  }

  /** Replace a point layer; items need lon/lat (degrees) and an id. */
  setPoints(layer, items) {
    this.layers[layer] = items.filter((it) => Number.isFinite(it.lon) && Number.isFinite(it.lat)).map((it) => {
      const [x, y] = project(it.lon, it.lat);
      return { ...it, x, y };
    });
    if (this.selected && this.selected.kind !== "road") {
      const again = this.layers[layer].find((it) => it.kind === this.selected.kind && it.id === this.selected.id);
      if (again) this.selected = again;
    }
    this.redraw();
  }

  extent() {
    let minx = 1, miny = 1, maxx = 0, maxy = 0, any = false;
    const grow = (x, y) => { any = true; minx = Math.min(minx, x); maxx = Math.max(maxx, x); miny = Math.min(miny, y); maxy = Math.max(maxy, y); };
    for (const r of this.layers.roads) { grow(r.bbox[0], r.bbox[1]); grow(r.bbox[2], r.bbox[3]); }
    for (const name of ["parking", "vehicles", "cameras"]) for (const p of this.layers[name]) grow(p.x, p.y);
    return any ? [minx, miny, maxx, maxy] : null;
  }

  /** Fit the view to the data once, until the user moves the map. */
  autoFit() {
    if (!this.userMoved) this.fit();
  }

  fit() {
    const box = this.extent();
    if (!box) return;
    const { w, h } = this.size();
    const dx = Math.max(box[2] - box[0], 1e-6);
    const dy = Math.max(box[3] - box[1], 1e-6);
    this.center = [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2];
    this.zoom = Math.max(MIN_ZOOM, Math.min(16, Math.log2(Math.min(w / (dx * TILE), h / (dy * TILE)) * 0.9)));
    this.changed();
  }

  flyTo(lon, lat, zoom = Math.max(this.zoom, 15)) {
    this.center = project(lon, lat);
    this.zoom = Math.min(MAX_ZOOM, zoom);
    this.userMoved = true;
    this.changed();
  }

  zoomBy(delta, sx = null, sy = null) {
    const { w, h } = this.size();
    sx = sx ?? w / 2; sy = sy ?? h / 2;
    const before = this.toWorld(sx, sy);
    this.zoom = Math.max(MIN_ZOOM, Math.min(MAX_ZOOM, this.zoom + delta));
    const after = this.toWorld(sx, sy);
    this.center = [this.center[0] + before[0] - after[0], this.center[1] + before[1] - after[1]];
    this.userMoved = true;
    this.changed();
  }

  panBy(dxPx, dyPx) {
    const s = this.scale();
    this.center = [this.center[0] - dxPx / s, Math.max(0, Math.min(1, this.center[1] - dyPx / s))];
    this.userMoved = true;
    this.changed();
  }

  /** Call `listener(view)` after every pan or zoom. */
  onView(listener) {
    this.viewListeners.push(listener);
  }

  /** Visible area as lon/lat degrees [west, south, east, north] and the centre. */
  view() {
    const { w, h } = this.size();
    const [west, north] = unproject(...this.toWorld(0, 0));
    const [east, south] = unproject(...this.toWorld(w, h));
    const [lon, lat] = unproject(...this.center);
    return { west, south, east, north, lon, lat, zoom: this.zoom };
  }

  changed() {
    this.redraw();
    const view = this.view();
    for (const listener of this.viewListeners) listener(view);
  }

  // ------------------------------------------------------------------ geometry
  size() {
    return { w: this.canvas.clientWidth || 1, h: this.canvas.clientHeight || 1 };
  }

  scale() {
    return TILE * 2 ** this.zoom;
  }

  toScreen(x, y) {
    const { w, h } = this.size();
    const s = this.scale();
    return [(x - this.center[0]) * s + w / 2, (y - this.center[1]) * s + h / 2];
  }

  toWorld(sx, sy) {
    const { w, h } = this.size();
    const s = this.scale();
    return [(sx - w / 2) / s + this.center[0], (sy - h / 2) / s + this.center[1]];
  }

  // ------------------------------------------------------------------ drawing
  redraw() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.draw(); });
  }

  draw() {
    const { w, h } = this.size();
    const ratio = window.devicePixelRatio || 1;
    if (this.canvas.width !== Math.round(w * ratio) || this.canvas.height !== Math.round(h * ratio)) {
      this.canvas.width = Math.round(w * ratio);
      this.canvas.height = Math.round(h * ratio);
    }
    const c = this.ctx;
    c.setTransform(ratio, 0, 0, ratio, 0, 0);
    c.fillStyle = "#0b1118";
    c.fillRect(0, 0, w, h);
    if (this.tileUrl) this.drawTiles(c, w, h);
    this.drawRoads(c, w, h);
    if (this.zoom >= 15) for (const p of this.layers.stops) this.drawStop(c, p);
    for (const p of this.layers.parking) this.drawParking(c, p);
    for (const p of this.layers.cameras) this.drawCamera(c, p);
    for (const p of this.layers.vehicles) this.drawVehicle(c, p);
    for (const p of this.layers.alerts) this.drawAlert(c, p);
    if (this.selected) this.drawSelection(c, this.selected);
    this.drawScale(c, w, h);
  }

  /** Scale bar (metres at the map centre's latitude) in the bottom-right corner. */
  drawScale(c, w, h) {
    const lat = unproject(...this.center)[1];
    const metresPerPx = (40075016.686 * Math.cos((lat * Math.PI) / 180)) / this.scale();
    const target = metresPerPx * 120;
    const step = 10 ** Math.floor(Math.log10(target));
    const nice = [5, 2, 1].map((k) => k * step).find((m) => m <= target) || step;
    const px = nice / metresPerPx;
    const x = w - px - 12;
    const y = h - 12;
    c.strokeStyle = "#e8eef4";
    c.lineWidth = 2;
    c.beginPath();
    c.moveTo(x, y - 5); c.lineTo(x, y); c.lineTo(x + px, y); c.lineTo(x + px, y - 5);
    c.stroke();
    c.fillStyle = "#e8eef4";
    c.font = "11px system-ui, sans-serif";
    c.textAlign = "center";
    c.textBaseline = "bottom";
    c.fillText(nice >= 1000 ? `${nice / 1000} km` : `${nice} m`, x + px / 2, y - 3);
  }

  drawTiles(c, w, h) {
    const z = Math.max(0, Math.min(MAX_ZOOM, Math.round(this.zoom)));
    const n = 2 ** z;
    const [x0, y0] = this.toWorld(0, 0);
    const [x1, y1] = this.toWorld(w, h);
    const size = this.scale() / n;
    for (let ty = Math.max(0, Math.floor(y0 * n)); ty <= Math.min(n - 1, Math.floor(y1 * n)); ty++) {
      for (let tx = Math.floor(x0 * n); tx <= Math.floor(x1 * n); tx++) {
        const wx = ((tx % n) + n) % n;
        const key = `${z}/${wx}/${ty}`;
        let img = this.tiles.get(key);
        if (!img) {
          if (this.tiles.size > 400) this.tiles.clear();
          img = new Image();
          img.onload = () => this.redraw();
          img.src = this.tileUrl.replace("{z}", z).replace("{x}", wx).replace("{y}", ty);
          this.tiles.set(key, img);
        }
        if (img.complete && img.naturalWidth) {
          const [sx, sy] = this.toScreen(tx / n, ty / n);
          c.drawImage(img, sx, sy, size + 0.5, size + 0.5);
        }
      }
    }
  }

  drawRoads(c, w, h) {
    const [x0, y0] = this.toWorld(0, 0);
    const [x1, y1] = this.toWorld(w, h);
    const s = this.scale();
    const [cx, cy] = [this.center[0] * s - w / 2, this.center[1] * s - h / 2];
    const groups = new Map();
    for (const r of this.layers.roads) {
      const b = r.bbox;
      if (b[2] < x0 || b[0] > x1 || b[3] < y0 || b[1] > y1) continue;
      const color = LEVEL_COLORS[r.level] || NO_LEVEL;
      if (!groups.has(color)) groups.set(color, []);
      groups.get(color).push(r);
    }
    c.lineWidth = Math.max(1, Math.min(6, (this.zoom - 10) * 0.7));
    c.lineCap = "round";
    c.lineJoin = "round";
    for (const [color, roads] of groups) {
      c.strokeStyle = color;
      c.beginPath();
      for (const r of roads) {
        c.moveTo(r.xs[0] * s - cx, r.ys[0] * s - cy);
        for (let i = 1; i < r.xs.length; i++) c.lineTo(r.xs[i] * s - cx, r.ys[i] * s - cy);
      }
      c.stroke();
    }
  }

  drawStop(c, p) {
    const [sx, sy] = this.toScreen(p.x, p.y);
    c.beginPath();
    c.arc(sx, sy, 3.5, 0, 2 * Math.PI);
    c.fillStyle = "#ffffff";
    c.strokeStyle = "#1d3557";
    c.lineWidth = 1.5;
    c.fill();
    c.stroke();
  }

  drawParking(c, p) {
    const [sx, sy] = this.toScreen(p.x, p.y);
    c.fillStyle = PARKING_COLORS[p.status] || "#9aa9b8";
    c.fillRect(sx - 8, sy - 8, 16, 16);
    c.fillStyle = "#0b1118";
    c.font = "bold 12px system-ui, sans-serif";
    c.textAlign = "center";
    c.textBaseline = "middle";
    c.fillText("P", sx, sy + 1);
    if (this.zoom >= 12 && p.capacity) {
      c.fillStyle = "#e8eef4";
      c.textAlign = "left";
      c.fillText(`${p.free ?? "?"}/${p.capacity}`, sx + 11, sy);
    }
  }

  drawCamera(c, p) {
    const [sx, sy] = this.toScreen(p.x, p.y);
    c.fillStyle = p.online === false ? "#9aa9b8" : "#b48cff";
    c.fillRect(sx - 7, sy - 5, 10, 10);
    c.beginPath();
    c.moveTo(sx + 3, sy);
    c.lineTo(sx + 8, sy - 4);
    c.lineTo(sx + 8, sy + 4);
    c.closePath();
    c.fill();
  }

  drawVehicle(c, p) {
    const [sx, sy] = this.toScreen(p.x, p.y);
    const size = this.zoom >= 14 ? 9 : 7;
    c.save();
    c.translate(sx, sy);
    c.fillStyle = delayColor(p.delay_s);
    c.strokeStyle = p.stale ? "#ff5a4f" : "#0b1118";
    c.lineWidth = 1.5;
    c.beginPath();
    if (Number.isFinite(p.bearing)) {
      c.rotate((p.bearing * Math.PI) / 180);
      c.moveTo(0, -size);
      c.lineTo(size * 0.7, size * 0.8);
      c.lineTo(0, size * 0.35);
      c.lineTo(-size * 0.7, size * 0.8);
      c.closePath();
    } else {
      c.arc(0, 0, size * 0.6, 0, 2 * Math.PI);
    }
    c.fill();
    c.stroke();
    c.restore();
    if (this.zoom >= 13 && p.label) {
      c.font = "11px system-ui, sans-serif";
      c.textAlign = "left";
      c.textBaseline = "middle";
      c.fillStyle = "#e8eef4";
      c.fillText(p.label, sx + size + 2, sy - size);
    }
  }

  drawAlert(c, p) {
    const [sx, sy] = this.toScreen(p.x, p.y);
    c.beginPath();
    c.moveTo(sx, sy - 11);
    c.lineTo(sx + 10, sy + 7);
    c.lineTo(sx - 10, sy + 7);
    c.closePath();
    c.fillStyle = p.severity === "critical" ? "#ff5a4f" : p.severity === "info" ? "#6cb4ff" : "#f0b429";
    c.strokeStyle = "#0b1118";
    c.lineWidth = 1.5;
    c.fill();
    c.stroke();
    c.fillStyle = "#0b1118";
    c.font = "bold 11px system-ui, sans-serif";
    c.textAlign = "center";
    c.textBaseline = "middle";
    c.fillText("!", sx, sy + 1);
  }

  drawSelection(c, f) {
    c.strokeStyle = "#ffd166";
    c.lineWidth = 3;
    if (f.kind === "road") {
      const s = this.scale();
      const { w, h } = this.size();
      const [cx, cy] = [this.center[0] * s - w / 2, this.center[1] * s - h / 2];
      c.beginPath();
      c.moveTo(f.xs[0] * s - cx, f.ys[0] * s - cy);
      for (let i = 1; i < f.xs.length; i++) c.lineTo(f.xs[i] * s - cx, f.ys[i] * s - cy);
      c.stroke();
      return;
    }
    const [sx, sy] = this.toScreen(f.x, f.y);
    c.beginPath();
    c.arc(sx, sy, 14, 0, 2 * Math.PI);
    c.stroke();
  }

  // ------------------------------------------------------------------ picking
  pick(sx, sy) {
    const order = ["alerts", "vehicles", "cameras", "parking"].concat(this.zoom >= 15 ? ["stops"] : []);
    let best = null;
    let bestD = 12;
    for (const name of order) {
      for (const p of this.layers[name]) {
        const [px, py] = this.toScreen(p.x, p.y);
        const d = Math.hypot(px - sx, py - sy);
        if (d < bestD) { best = p; bestD = d; }
      }
      if (best) return best;
    }
    const s = this.scale();
    const [wx, wy] = this.toWorld(sx, sy);
    let road = null;
    let roadD = 7 / s;
    for (const r of this.layers.roads) {
      const b = r.bbox;
      if (wx < b[0] - roadD || wx > b[2] + roadD || wy < b[1] - roadD || wy > b[3] + roadD) continue;
      for (let i = 1; i < r.xs.length; i++) {
        const d = segmentDistance(wx, wy, r.xs[i - 1], r.ys[i - 1], r.xs[i], r.ys[i]);
        if (d < roadD) { road = r; roadD = d; }
      }
    }
    return road;
  }

  select(feature) {
    this.selected = feature;
    this.redraw();
    this.onSelect(feature);
  }

  // ------------------------------------------------------------------ input
  bindEvents() {
    const cv = this.canvas;
    let drag = null;
    cv.addEventListener("pointerdown", (e) => {
      drag = { x: e.clientX, y: e.clientY, moved: 0 };
      cv.setPointerCapture(e.pointerId);
    });
    cv.addEventListener("pointermove", (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.x;
      const dy = e.clientY - drag.y;
      drag.moved += Math.abs(dx) + Math.abs(dy);
      drag.x = e.clientX;
      drag.y = e.clientY;
      if (drag.moved > 3) {
        cv.classList.add("dragging");
        this.panBy(dx, dy);
      }
    });
    cv.addEventListener("pointerup", (e) => {
      cv.classList.remove("dragging");
      if (drag && drag.moved <= 3) {
        const r = cv.getBoundingClientRect();
        this.select(this.pick(e.clientX - r.left, e.clientY - r.top));
      }
      drag = null;
    });
    cv.addEventListener("wheel", (e) => {
      e.preventDefault();
      const r = cv.getBoundingClientRect();
      this.zoomBy(-e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.0025), e.clientX - r.left, e.clientY - r.top);
    }, { passive: false });
    cv.addEventListener("keydown", (e) => {
      const step = 80;
      const actions = {
        ArrowLeft: () => this.panBy(step, 0), ArrowRight: () => this.panBy(-step, 0),
        ArrowUp: () => this.panBy(0, step), ArrowDown: () => this.panBy(0, -step),
        "+": () => this.zoomBy(1), "=": () => this.zoomBy(1), "-": () => this.zoomBy(-1),
      };
      if (actions[e.key]) {
        e.preventDefault();
        actions[e.key]();
      }
    });
  }
}

function segmentDistance(px, py, ax, ay, bx, by) {
  const dx = bx - ax;
  const dy = by - ay;
  const len = dx * dx + dy * dy;
  const t = len > 0 ? Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / len)) : 0;
  return Math.hypot(px - ax - t * dx, py - ay - t * dy);
}
