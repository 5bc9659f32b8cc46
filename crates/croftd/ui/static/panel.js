// The croft panel's small pieces: power buttons, live updates from the
// event stream, the usage graphs and the password form. Every change goes
// through the REST API with the session cookie (same origin); pages come
// rendered from croftd and are only refreshed here, never built from
// strings (text goes in with textContent, never innerHTML).
"use strict";

/** Show `text` in the corner for a while; `bad` for an error. */
function toast(text, bad) {
  const box = document.getElementById("toast");
  if (!box) return;
  box.textContent = text;
  box.classList.toggle("bad", !!bad);
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 6000);
}

/** Call the API: `body` as JSON; resolves to the parsed answer, or throws
 * an Error with croftd's message. */
async function api(method, path, body) {
  if (body === undefined) return send(method, path, {});
  return send(method, path, { "Content-Type": "application/json" }, JSON.stringify(body));
}

/** Send `body` (any fetch body: JSON text, a File streamed from disk) with
 * `headers`; resolves to the parsed answer, or throws an Error with
 * croftd's message. */
async function send(method, path, headers, body) {
  const response = await fetch(path, { method, headers, body, credentials: "same-origin" });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (response.status === 401) {
    // The session ended (logged out elsewhere, expired, a new password):
    // to the login page, and nothing more is tried.
    location.assign("/ui/login");
    throw new Error("your session ended");
  }
  if (!response.ok) {
    throw new Error((data && data.error) || `${response.status} ${response.statusText}`);
  }
  return data;
}

// --- Power buttons: POST .../state; the event stream shows the outcome.
document.addEventListener("click", async (event) => {
  const button = event.target.closest(".power button[data-action]");
  if (!button) return;
  const power = button.closest(".power");
  const action = button.dataset.action;
  const body = { action, force: button.dataset.force === "true" };
  for (const b of power.querySelectorAll("button")) b.disabled = true;
  try {
    await api("POST", power.dataset.api, body);
  } catch (e) {
    toast(`${action} refused: ${e.message}`, true);
  } finally {
    for (const b of power.querySelectorAll("button")) b.disabled = false;
    refreshCards(power.closest("[data-vps]"));
  }
});

// --- Forms and buttons that call the API: `data-api` (the path; `{field}`
// in it is the form's field of that name, which then stays out of the
// body), `data-method`, `data-stay` (no reload: the event stream shows
// the outcome), and for a button `data-body` (JSON) and `data-confirm`. A form's fields become a JSON object: `config[key]`
// nests, empty fields are left out, and `data-type` converts a value:
// `count` (a number), `cpu` (CPUs to millicores), `size` (512MiB, 8GiB to
// bytes). Done, the page is loaded again to show the outcome.
// As croft's own parse_size: K, M, G, T (and Ki.., KiB..) are binary;
// KB, MB, GB, TB decimal.
const SIZE_UNITS = { "": 1, b: 1, k: 1024, ki: 1024, kib: 1024, m: 1048576, mi: 1048576, mib: 1048576,
  g: 1073741824, gi: 1073741824, gib: 1073741824, t: 1099511627776, ti: 1099511627776, tib: 1099511627776,
  kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12 };

function typed(input) {
  const text = input.value.trim();
  const number = (value) => {
    if (!Number.isFinite(value) || value < 0) throw new Error(`${input.name}: not a number: ${text}`);
    return value;
  };
  switch (input.dataset.type) {
    case "object": return JSON.parse(text);
    case "count": return number(Number(text));
    case "cpu": return Math.round(number(Number(text)) * 1000);
    case "size": {
      const m = text.match(/^([0-9.]+)\s*([a-z]*)$/i);
      const unit = m && SIZE_UNITS[m[2].toLowerCase()];
      if (!m || unit === undefined) throw new Error(`${input.name}: not a size: ${text}`);
      return Math.round(number(Number(m[1])) * unit);
    }
    default: return text;
  }
}

/** The element's `data-api` path with `{field}` filled from `body` (and
 * taken out of it); a query parameter left empty is dropped, as an empty
 * field is from the body. */
function apiPath(element, body) {
  let path = element.dataset.api;
  if (body) {
    path = path.replace(/\{(\w+)\}/g, (_, field) => {
      const value = body[field];
      delete body[field];
      return encodeURIComponent(value === undefined ? "" : value);
    });
  }
  const [base, query] = path.split("?");
  if (query === undefined) return path;
  const kept = query.split("&").filter((pair) => !pair.endsWith("="));
  return kept.length ? `${base}?${kept.join("&")}` : base;
}

async function callApi(element, body) {
  return api(element.dataset.method || "POST", apiPath(element, body), body);
}

// --- A form that uploads a file (`data-upload`, e.g. an image tarball):
// the file is the request's body, streamed, and its other fields fill
// the path's `{field}`s.
document.addEventListener("submit", async (event) => {
  const form = event.target.closest("form[data-upload]");
  if (!form) return;
  event.preventDefault();
  const fields = {};
  for (const input of form.querySelectorAll("input[name]:not([type=file]), select[name]")) {
    fields[input.name] = input.value.trim();
  }
  const file = form.querySelector("input[type=file]").files[0];
  if (!file) {
    toast("choose a file first", true);
    return;
  }
  const path = apiPath({ dataset: { api: form.dataset.upload } }, { ...fields });
  for (const b of form.querySelectorAll("button")) b.disabled = true;
  const status = form.querySelector("output");
  try {
    // A name taken is said before the upload: croftd refuses it at once
    // and closes the connection, which a browser still sending a large
    // file may report as a network error instead of croftd's answer.
    if (form.dataset.exists) {
      const taken = await fetch(apiPath({ dataset: { api: form.dataset.exists } }, { ...fields }), { credentials: "same-origin" });
      if (taken.status === 401) {
        location.assign("/ui/login");
        throw new Error("your session ended");
      }
      if (taken.ok) throw new Error(`${form.dataset.kind || "it"} ${fields.name} already exists`);
    }
    if (status) status.textContent = `sending ${file.name}…`;
    await send("POST", path, { "Content-Type": "application/octet-stream" }, file);
    toast("Done.");
    setTimeout(() => location.reload(), 400);
  } catch (e) {
    if (status) status.textContent = "";
    toast(e.message, true);
    for (const b of form.querySelectorAll("button")) b.disabled = false;
  }
});

document.addEventListener("submit", async (event) => {
  const form = event.target.closest("form[data-api]");
  if (!form) return;
  event.preventDefault();
  const body = {};
  try {
    for (const input of form.querySelectorAll("input[name], select[name], textarea[name]")) {
      // A field that must be typed as shown to go on (a VPS's name before
      // its disk is replaced), and is not sent.
      if (input.dataset.mustEqual !== undefined && input.value.trim() !== input.dataset.mustEqual) {
        throw new Error(`type ${input.dataset.mustEqual} to confirm; nothing was changed`);
      }
      if (input.dataset.skip === "true" || input.value.trim() === "") continue;
      // An address field is the rule's destination when the rule is
      // outbound.
      const way = form.querySelector("select[name=direction]");
      const name = way && way.value === "out" && input.dataset.outName ? input.dataset.outName : input.name;
      const nested = name.match(/^(\w+)\[(.+)\]$/);
      if (nested) {
        body[nested[1]] = body[nested[1]] || {};
        body[nested[1]][nested[2]] = typed(input);
      } else {
        body[name] = typed(input);
      }
    }
    // One request at a time: a double click takes one snapshot.
    for (const b of form.querySelectorAll("button")) b.disabled = true;
    const answer = await callApi(form, body);
    if (form.dataset.showToken === "true") {
      // A token is shown once: on the page, not reloaded away.
      document.getElementById("shown").textContent = answer.token;
      form.reset();
      return;
    }
    toast("Done.");
    // A form whose outcome the event stream shows (a launch) stays.
    if (form.dataset.stay === "true") form.reset();
    else setTimeout(() => location.reload(), 400);
  } catch (e) {
    toast(e.message, true);
  } finally {
    for (const b of form.querySelectorAll("button")) b.disabled = false;
  }
});

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-api]");
  if (!button || button.closest("form")) return;
  if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
  button.disabled = true;
  try {
    const answer = await callApi(button, button.dataset.body ? JSON.parse(button.dataset.body) : undefined);
    if (button.dataset.show) {
      // A secret shown once (a generated password): on the page, not
      // reloaded away.
      document.getElementById("shown").textContent = answer[button.dataset.show];
      button.disabled = false;
      return;
    }
    toast("Done.");
    setTimeout(() => location.reload(), 400);
  } catch (e) {
    toast(e.message, true);
    button.disabled = false;
  }
});

/** Ask the cards to fetch themselves again (htmx swaps each in). */
function refreshCards(only) {
  if (!window.htmx) return;
  const cards = only ? [only] : document.querySelectorAll("[data-vps][hx-get]");
  for (const card of cards) window.htmx.trigger(card, "croft:changed");
}

// --- Live updates: the event stream, over a WebSocket opened with a
// single-use ticket (a browser cannot set headers on a WebSocket).
function watchEvents() {
  const scope = document.querySelector("[data-events]");
  if (!scope) return;
  const path = scope.dataset.events;
  let delay = 1000;
  let opened = false;
  // A card between states (creating, starting, stopping) also asks again
  // now and then, should an event have been missed.
  setInterval(() => {
    for (const card of document.querySelectorAll("[data-vps][hx-get]")) {
      if (["creating", "starting", "stopping", "deleting"].includes(card.dataset.status)) {
        window.htmx && window.htmx.trigger(card, "croft:changed");
      }
    }
  }, 10000);
  const connect = async () => {
    let ticket;
    try {
      ticket = await api("POST", "/1.0/tickets", { path });
    } catch (e) {
      setTimeout(connect, delay = Math.min(delay * 2, 30000));
      return;
    }
    const url = new URL(path, location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("ticket", ticket.ticket);
    const socket = new WebSocket(url);
    socket.addEventListener("open", () => {
      delay = 1000;
      document.body.dataset.live = "true";
      // What happened while the stream was down was not heard: every card
      // fetches itself again (not at the first opening: the page is new).
      if (opened) refreshCards();
      opened = true;
    });
    socket.addEventListener("message", (message) => {
      let e;
      try { e = JSON.parse(message.data); } catch (_) { return; }
      if (e.action && e.action.startsWith("vps-")) {
        for (const card of document.querySelectorAll("[data-vps][hx-get]")) {
          if (card.dataset.vps === e.target && card.dataset.tenant === e.tenant) {
            window.htmx && window.htmx.trigger(card, "croft:changed");
          }
        }
        const cards = document.querySelector(".cards");
        const shown = [...document.querySelectorAll("[data-vps]")]
          .some((card) => card.dataset.vps === e.target && card.dataset.tenant === e.tenant);
        if (cards && e.action === "vps-created" && window.htmx && !shown) {
          // The new VPS's card, fetched and added in place. The admin
          // names its tenant; a tenant's user has only its own. Once in,
          // it fetches itself again: an event that came while it was on
          // its way (it started) found no card to refresh.
          const tenant = document.body.dataset.admin === "true" ? `?tenant=${encodeURIComponent(e.tenant)}` : "";
          const url = `/ui/instances/${encodeURIComponent(e.target)}/card${tenant}`;
          const fetchCard = (tries) => fetch(url).then(async (response) => {
            if (!response.ok) {
              // Asked again a little later (croftd busy, a blip).
              if (tries > 1) setTimeout(() => fetchCard(tries - 1), 1000);
              return;
            }
            const html = await response.text();
            const empty = cards.querySelector(".empty");
            if (empty) empty.remove();
            // croftd's own page fragment, escaped as every page is.
            cards.insertAdjacentHTML("beforeend", html);
            const card = cards.lastElementChild;
            window.htmx.process(card);
            window.htmx.trigger(card, "croft:changed");
          }, () => { if (tries > 1) setTimeout(() => fetchCard(tries - 1), 1000); });
          fetchCard(5);
        }
        if (e.action === "vps-deleted") {
          for (const card of document.querySelectorAll("[data-vps]")) {
            if (card.dataset.vps === e.target && card.dataset.tenant === e.tenant) card.remove();
          }
        }
      }
    });
    socket.addEventListener("close", () => {
      document.body.dataset.live = "false";
      setTimeout(connect, delay = Math.min(delay * 2, 30000));
    });
  };
  connect();
}

// --- Graphs: the VPS's usage history, drawn with uPlot.
const CHARTS = {
  cpu: { series: [["cpu_percent", "avg", "CPU % (average)"], ["cpu_percent", "max", "CPU % (max)"]], unit: "%" },
  memory: { series: [["memory_bytes", "avg", "Memory (average)"], ["memory_bytes", "max", "Memory (max)"]], unit: "B" },
  network: { series: [["network_receive_bytes_per_second", "avg", "In"], ["network_transmit_bytes_per_second", "avg", "Out"]], unit: "B/s" },
  disk: { series: [["disk_read_bytes_per_second", "avg", "Read"], ["disk_write_bytes_per_second", "avg", "Write"]], unit: "B/s" },
  processes: { series: [["processes", "avg", "Processes (average)"], ["processes", "max", "Processes (max)"]], unit: "" },
};
const COLOURS = ["#2456c9", "#c94f24"];

function human(value, unit) {
  if (value == null) return "–";
  if (unit === "B" || unit === "B/s") {
    const units = ["", "Ki", "Mi", "Gi", "Ti"];
    let v = value, i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return `${v.toFixed(v < 10 && i > 0 ? 1 : 0)} ${units[i]}${unit}`;
  }
  return `${Math.round(value * 10) / 10}${unit}`;
}

function drawGraphs() {
  const section = document.getElementById("graphs");
  if (!section || !window.uPlot) return;
  const plots = {};
  let range = "hour";
  const load = async () => {
    const path = section.dataset.api + (section.dataset.api.includes("?") ? "&" : "?") + `range=${range}`;
    let history;
    try {
      history = await api("GET", path);
    } catch (e) {
      toast(`graphs: ${e.message}`, true);
      return;
    }
    const byName = Object.fromEntries(history.series.map((s) => [s.name, s]));
    let points = 0;
    for (const [chart, spec] of Object.entries(CHARTS)) {
      const figure = section.querySelector(`[data-chart="${chart}"]`);
      const data = [history.at];
      for (const [name, stat] of spec.series) data.push(byName[name][stat]);
      const measured = data.slice(1).some((values) => values.some((v) => v != null));
      points += data[1].filter((v) => v != null).length;
      figure.dataset.measured = String(measured);
      if (plots[chart]) plots[chart].destroy();
      plots[chart] = new window.uPlot({
        width: Math.max(figure.clientWidth, 300),
        height: 200,
        // Usage from zero up, so a flat 100 % reads as full, not as noise.
        scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
        axes: [{}, { values: (u, ticks) => ticks.map((t) => human(t, spec.unit)), size: 70 }],
        series: [{}].concat(spec.series.map(([, , label], i) => ({
          label, stroke: COLOURS[i], width: 1.5, spanGaps: false,
          // Points too: a lone minute between gaps would draw no line.
          points: { show: true, size: 4, fill: COLOURS[i] },
          value: (u, v) => human(v, spec.unit),
        }))),
      }, data, figure);
    }
    section.dataset.points = String(points);
  };
  section.querySelector(".ranges").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-range]");
    if (!button) return;
    range = button.dataset.range;
    for (const b of section.querySelectorAll("button[data-range]")) {
      b.setAttribute("aria-pressed", String(b === button));
    }
    load();
  });
  load();
  setInterval(load, 60000);
}

// --- The console: xterm.js over the console's WebSocket (binary frames
// both ways, a resize as a text frame), opened with a ticket, and opened
// again after a drop; what the console printed before is written first.
function openConsole() {
  const box = document.getElementById("terminal");
  if (!box || !window.Terminal) return;
  const state = document.getElementById("console-state");
  const term = new window.Terminal({ cursorBlink: true, scrollback: 5000, fontSize: 14 });
  const fit = new window.FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(box);
  fit.fit();
  const query = box.dataset.tenantQuery;
  const encoder = new TextEncoder();
  let socket = null;
  let delay = 1000;
  let leaving = false;
  window.addEventListener("beforeunload", () => { leaving = true; });
  const say = (text) => { state.textContent = text; };
  const send = (data) => { if (socket && socket.readyState === WebSocket.OPEN) socket.send(data); };
  term.onData((data) => send(encoder.encode(data)));
  term.onResize(({ rows, cols }) => send(JSON.stringify({ type: "resize", rows, cols })));
  window.addEventListener("resize", () => fit.fit());
  const connect = async (first) => {
    say("connecting…");
    let ticket;
    try {
      if (first) {
        const history = await api("GET", box.dataset.log + query);
        if (history && history.log) term.write(history.log);
      }
      ticket = await api("POST", "/1.0/tickets", { path: box.dataset.attach });
    } catch (e) {
      say(`cannot attach: ${e.message}; trying again`);
      setTimeout(() => connect(false), delay = Math.min(delay * 2, 30000));
      return;
    }
    const url = new URL(box.dataset.attach + query, location.href);
    url.protocol = "wss:";
    url.searchParams.set("ticket", ticket.ticket);
    socket = new WebSocket(url);
    socket.binaryType = "arraybuffer";
    socket.addEventListener("open", () => {
      delay = 1000;
      say("attached");
      box.dataset.attached = "true";
      send(JSON.stringify({ type: "resize", rows: term.rows, cols: term.cols }));
      term.focus();
    });
    socket.addEventListener("message", (message) => {
      if (typeof message.data !== "string") {
        term.write(new Uint8Array(message.data));
        return;
      }
      let frame = null;
      try { frame = JSON.parse(message.data); } catch (_) { return; }
      if (frame.type === "error") say(`console: ${frame.message}`);
    });
    socket.addEventListener("close", async () => {
      box.dataset.attached = "false";
      if (leaving) return;
      // A VPS that stopped has no console to attach to: say so and wait
      // for the reader, rather than asking again and again.
      try {
        const vps = await api("GET", box.dataset.attach.replace(/\/console\/attach$/, "") + query);
        if (vps.status !== "running") {
          say(`the VPS is ${vps.status}; reload the page once it runs`);
          return;
        }
      } catch (_) { /* try again below */ }
      say("detached; attaching again…");
      setTimeout(() => connect(false), delay);
      delay = Math.min(delay * 2, 30000);
    });
  };
  // For tests and the curious: the live socket, to drop it by hand.
  window.croftConsole = { term, drop: () => socket && socket.close() };
  connect(true);
}

// --- The account: the user's own password.
function passwordForm() {
  const form = document.getElementById("password-form");
  if (!form) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    try {
      await api("PUT", "/1.0/auth/password", { current: data.get("current"), password: data.get("password") });
      form.reset();
      toast("Password changed; your other sessions have ended.");
    } catch (e) {
      toast(`Not changed: ${e.message}`, true);
    }
  });
}

// --- The quota form: a quota is set whole, so the form shows the chosen
// tenant's as it stands, and an empty field is a cap taken away.
function quotaForm() {
  const form = document.getElementById("quota-form");
  if (!form) return;
  const fill = () => {
    const row = document.querySelector(`tr[data-tenant="${CSS.escape(form.elements.tenant.value)}"]`);
    const quota = row ? JSON.parse(row.dataset.quota) : {};
    for (const input of form.querySelectorAll("input[name]")) input.value = quota[input.name] ?? "";
  };
  form.elements.tenant.addEventListener("change", fill);
  fill();
}

document.addEventListener("DOMContentLoaded", () => {
  watchEvents();
  drawGraphs();
  openConsole();
  quotaForm();
  passwordForm();
});
