// HTTP helpers shared by the control-centre scripts: session, CSRF, route discovery, polling.

export const session = { csrf: null, user: null, role: null, routes: new Set(), config: {} };

/** True when the API serves this route template (e.g. "/v1/traffic/congestion"). */
export function hasRoute(template) {
  return session.routes.has(template);
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function toLogin() {
  window.location.assign("/control/login");
}

async function request(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && session.csrf) headers["X-CSRF-Token"] = session.csrf;
  const response = await fetch(path, {
    method, headers, credentials: "same-origin", cache: "no-cache",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) {
    toLogin();
    throw new ApiError(401, "unauthorized", "session ended");
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (exc) {
    throw new ApiError(response.status, "bad_json", `${path}: not JSON`);
  }
  if (!response.ok) {
    const err = data && data.error ? data.error : { code: "http_error", message: `HTTP ${response.status}` };
    throw new ApiError(response.status, err.code, err.message);
  }
  return data;
}

/** GET JSON; null when the route is absent (404) or its service is not ready (503). */
export async function getJSON(path) {
  try {
    return await request("GET", path);
  } catch (exc) {
    if (exc instanceof ApiError && (exc.status === 404 || exc.status === 503)) return null;
    throw exc;
  }
}

export function postJSON(path, body) {
  return request("POST", path, body === undefined ? {} : body);
}

/** Load the session (CSRF token) and the UI config (routes present, basemap URL). */
export async function loadSession() {
  const me = await request("GET", "/v1/auth/me");
  session.csrf = me.csrf_token;
  session.user = me.username;
  session.role = me.role;
  const config = await request("GET", "/v1/control/config");
  session.config = config;
  session.routes = new Set(config.routes || []);
  return session;
}

/**
 * Call `task` every `everyMs`; an empty answer (null) or an error backs off up to 60 s.
 * Returns a function that stops the loop.
 */
export function poll(task, everyMs) {
  let delay = everyMs;
  let timer = null;
  let stopped = false;
  const run = async () => {
    if (stopped) return;
    try {
      const result = await task();
      delay = result === null ? Math.min(delay * 2, 60000) : everyMs;
    } catch (exc) {
      delay = Math.min(delay * 2, 60000);
      if (!(exc instanceof ApiError)) console.warn("poll failed", exc);
    }
    if (!stopped) timer = setTimeout(run, delay);
  };
  run();
  return () => { stopped = true; clearTimeout(timer); };
}

/** Seconds between an ISO time and now, or null. */
export function ageSeconds(iso, now = Date.now()) {
  if (!iso) return null;
  const t = Date.parse(iso);
  return Number.isFinite(t) ? Math.max(0, (now - t) / 1000) : null;
}

export function formatAge(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

export function formatDelay(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const sign = seconds < 0 ? "−" : "+";
  const s = Math.abs(Math.round(seconds));
  return `${sign}${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** CSS class for a delay in seconds (late is positive). */
export function delayClass(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds > 300) return "late";
  if (seconds > 60) return "slightly-late";
  if (seconds < -60) return "early";
  return "on-time";
}

/** Create an element with text and attributes (never innerHTML with data). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/**
 * Replace a container's children, keeping keyboard focus on the element with the same
 * `data-focus-key` (live panels re-render often; focus must not jump away).
 */
export function swap(box, ...nodes) {
  const active = document.activeElement;
  const key = active && box.contains(active) ? active.getAttribute("data-focus-key") : null;
  box.replaceChildren(...nodes);
  if (key) {
    const keyed = [...box.querySelectorAll("[data-focus-key]")];
    const at = keyed.findIndex((n) => n.getAttribute("data-focus-key") === key);
    const target = at < 0 ? null : keyed.slice(at).find((n) => !n.disabled);  // a now-disabled button passes focus on
    if (target) target.focus();
  }
}
