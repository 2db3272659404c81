// The pkgcast dashboard: packages' content status over every DP, pushed by the server as it changes.
//
// Data comes from the same API as every other client (docs/http-api.md): WQL data queries for the state, then WQL
// event queries (GET /api/v1/events, Server-Sent Events) for every change after it. The streams are read with
// fetch() rather than EventSource, because EventSource cannot send the Authorization header, and a token in a URL
// would end up in logs. A stream that breaks is resumed from the last revision it delivered, so nothing is missed.
//
// The token is kept in sessionStorage (this tab only). A URL fragment `#token=...` (what `pkgcast demo` prints) is
// taken, at load or when the fragment changes, and removed from the address bar and the session history; a fragment
// never reaches a server.
//
// Every string from the server is inserted as text, in its own element or a <bdi>: a bidirectional control in a
// name (U+202E) then cannot reorder the page's own text around it.

import { SseParser } from './sse.js';

const STATE_NAMES = ['INSTALLED', 'INSTALL_PENDING', 'INSTALL_RETRYING', 'INSTALL_FAILED', 'REMOVAL_PENDING',
  'REMOVAL_RETRYING', 'REMOVAL_FAILED', 'CONTENT_UPDATING', 'CONTENT_MONITORING'];
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 15000;
const RATE_WINDOW_MS = 10000;  // the transfer rate is over this much of the latest samples
const TICK_MS = 1000;          // the summary is drawn again this often, so a rate whose bytes stopped ages out
const FILTER_DELAY_MS = 200;   // the filter applies once typing pauses this long

const $ = (id) => document.getElementById(id);

// ---- token and API ----

// Takes a `token=` out of the fragment: stored (an empty one is refused), and always removed from the address bar.
// replaceState swaps the current history entry, the one that holds it, so Back and Forward never show it again.
// Returns the token taken, or null.
function takeTokenFromFragment() {
  const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (!m) return null;
  let value = m[1];
  try { value = decodeURIComponent(value); } catch { /* not %-encoded: taken as it is */ }
  const rest = location.hash.slice(1).split('&').filter((p) => !p.startsWith('token=')).join('&');
  history.replaceState(null, '', location.pathname + location.search + (rest ? `#${rest}` : ''));
  value = value.trim();
  if (!value) return null;
  sessionStorage.setItem('pkgcast.token', value);
  return value;
}

const token = () => sessionStorage.getItem('pkgcast.token') || '';

class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? `${body.error}: ${body.message}` : `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${token()}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON: the status says enough */ }
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}

let namespace = '';

async function query(wql) {
  const r = await api('POST', '/api/v1/query', { namespace, query: wql });
  return r.instances || [];
}

const quote = (s) => `'${String(s).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

// ---- event streams ----

// Reads a Server-Sent Events body as it arrives; calls onEvent(object, id) per event. Resolves when the body
// ends; rejects with the server's error when it sends `event: error`.
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  const parser = new SseParser();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    for (const e of parser.push(value)) {
      const payload = JSON.parse(e.data);
      if (e.kind === 'error') throw new ApiError(500, payload);
      onEvent(payload, e.id);
    }
  }
}

// One WQL event subscription, kept open: reconnects with back-off and resumes after the last revision delivered.
// `onGap` is called when the server no longer holds the revisions to resume from (410, or a revision beyond its
// last: another database): the caller queries again and opens a new feed. While the tab is hidden the feed is
// paused (its connection closed: a browser gives a server six HTTP/1.1 connections across all its tabs) and
// resumes from the same revision when the tab is shown.
class Feed {
  constructor(wql, since, onEvent, onGap) {
    Object.assign(this, { wql, since, onEvent, onGap });
    this.closed = false;
    this.paused = document.hidden;
    this.running = false;
    this.controller = null;
    this.connected = false;
    this.kick();
  }

  close() {
    this.closed = true;
    if (this.controller) this.controller.abort();
  }

  pause() {
    this.paused = true;
    if (this.controller) this.controller.abort();
  }

  resume() {
    this.paused = false;
    this.kick();
  }

  kick() {
    if (!this.running && !this.closed && !this.paused) this.run();
  }

  async run() {
    this.running = true;
    let delay = RETRY_MIN_MS;
    while (!this.closed && !this.paused) {
      this.controller = new AbortController();
      try {
        const params = new URLSearchParams({ namespace, query: this.wql });
        if (this.since != null) params.set('since', this.since);
        const res = await fetch(`/api/v1/events?${params}`, {
          headers: { Authorization: `Bearer ${token()}` }, signal: this.controller.signal,
        });
        if (!res.ok) {
          const body = await res.json().catch(() => null);
          throw new ApiError(res.status, body);
        }
        this.setConnected(true);
        delay = RETRY_MIN_MS;
        await readEvents(res.body, (event, id) => {
          if (id !== null) this.since = id;
          this.onEvent(event);
        });
      } catch (e) {
        if (this.closed || this.paused) break;
        const code = e instanceof ApiError ? e.status : 0;
        if (code === 410 || (code === 400 && e.code === 'WBEM_E_INVALID_PARAMETER' && this.since != null)) {
          this.end();
          this.onGap();
          return;
        }
        if (code === 401 || code === 403) { this.end(); signOut(e.message); return; }
        if (code === 400) { this.end(); showError(e.message); return; }
      }
      this.setConnected(false);
      if (this.closed || this.paused) break;
      await new Promise((r) => setTimeout(r, delay * (0.5 + Math.random() / 2)));
      delay = Math.min(delay * 2, RETRY_MAX_MS);
    }
    this.running = false;
    this.setConnected(false);
    this.kick();  // resumed while the loop was winding down
  }

  // A feed that cannot go on leaves the set, so the header does not say "reconnecting" for ever.
  end() {
    this.closed = true;
    this.running = false;
    feeds.delete(this);
    updateLive();
  }

  setConnected(on) {
    this.connected = on;
    updateLive();
  }
}

const feeds = new Set();

function openFeed(wql, since, onEvent, onGap) {
  const f = new Feed(wql, since, onEvent, onGap);
  feeds.add(f);
  updateLive();
  return f;
}

function closeFeed(f) {
  if (!f) return;
  f.close();
  feeds.delete(f);
  updateLive();
}

document.addEventListener('visibilitychange', () => {
  for (const f of feeds) {
    if (document.hidden) f.pause();
    else f.resume();
  }
});

function updateLive() {
  const el = $('live');
  if (document.hidden) return;
  const all = [...feeds];
  const up = all.filter((f) => f.connected).length;
  const state = all.length === 0 ? 'off' : up === all.length ? 'on' : 'retrying';
  el.dataset.state = state;
  el.textContent = state === 'on' ? 'live' : state === 'retrying' ? 'reconnecting…' : 'not connected';
}

// ---- the model ----

const num = (v) => (v === null || v === undefined || v === '' ? 0 : Number(v));
const lower = (s) => String(s || '').toLowerCase();
const dpKey = (row) => lower(row.ServerNALPath ?? row.NALPath);
const COUNTS = ['Installed', 'Targeted', 'Retrying', 'Failed'];

// SMS_PackageStatusDetailSummarizer rows (one per package per site), by `PackageID \n site`, and by package too.
// A token limited to sites reads a Root row only when the package's SourceSite is one of them (a row is placed by
// its SiteCode, else its SourceSite: docs/events.md), so the packages sent to its sites from another reach it only
// as its sites' Detail rows; and the open package's site table is read from here.
class DetailRows extends Map {
  constructor() {
    super();
    this.byPackage = new Map();  // PackageID -> Map(site (lower case) -> row)
  }

  set(key, row) {
    this.delete(key);
    super.set(key, row);
    const sites = this.byPackage.get(row.PackageID) || new Map();
    sites.set(lower(row.SiteCode), row);
    this.byPackage.set(row.PackageID, sites);
    return this;
  }

  delete(key) {
    const row = this.get(key);
    if (!row) return false;
    super.delete(key);
    const sites = this.byPackage.get(row.PackageID);
    sites.delete(lower(row.SiteCode));
    if (!sites.size) this.byPackage.delete(row.PackageID);
    return true;
  }

  clear() {
    super.clear();
    this.byPackage.clear();
  }
}

const detailKey = (t) => `${t.PackageID}\n${lower(t.SiteCode)}`;
const packageOfKey = (k) => k.slice(0, k.indexOf('\n'));

const packages = new Map();       // PackageID -> SMS_PackageStatusRootSummarizer
const details = new DetailRows();  // see above
const dpHealth = new Map();       // NALPath (lower case) -> SMS_DPStatusInfo
let selected = null;   // { id, dps: Map, jobs: Map, feeds: [], samples: [], loaded, seen }
let rootFeed = null;
let detailFeed = null;
let dpFeed = null;

// What the list and the detail show of a package: its Root row; else, for a token limited to sites, the sum of its
// Detail rows over the sites the token may read (`partial`). Undefined when the token sees neither.
function summaryOf(id) {
  const root = packages.get(id);
  if (root) return root;
  const sites = details.byPackage.get(id);
  if (!sites) return undefined;
  const sum = { PackageID: id, Name: '', SourceVersion: 0, partial: true };
  for (const p of COUNTS) sum[p] = 0;
  for (const d of sites.values()) {
    sum.Name ||= d.Name || '';
    sum.SourceVersion = Math.max(sum.SourceVersion, num(d.SourceVersion));
    for (const p of COUNTS) sum[p] += num(d[p]);
  }
  return sum;
}

const listed = (id) => packages.has(id) || details.byPackage.has(id);
const listedIds = () => new Set([...packages.keys(), ...details.byPackage.keys()]);

// Applies an intrinsic event to a map of instances by key; returns the key.
function applyEvent(map, event, keyOf) {
  const target = event.TargetInstance;
  if (!target) return null;
  const key = keyOf(target);
  if (event.__CLASS === '__InstanceDeletionEvent') map.delete(key);
  else map.set(key, target);
  return key;
}

// Rendering follows events at most once a frame (none while the tab is hidden), and the package table rebuilds only
// the rows whose package changed: a site with thousands of packages and a busy distribution stays responsive.
// `all` rebuilds every row (the rows were queried again); `filter` shows and hides rows for the filter, keeping the
// ones that stay; `summary` draws the open package's summary line alone (the timer); `reveal` scrolls, once drawn.
const dirty = {
  all: true, filter: false, ids: new Set(), detail: false, summary: false, dpsAll: true, dps: new Set(),
  reveal: null, frame: 0,
};
let holding = false;  // while a session loads, its mirrors' rows are drawn once, when all are in

function schedule() {
  if (!dirty.frame) dirty.frame = requestAnimationFrame(flush);
}

function invalidate(ids, detail = false) {
  if (ids === true) dirty.all = true;
  else for (const id of ids) dirty.ids.add(id);
  if (detail) dirty.detail = true;
  schedule();
}

function invalidateDps(keys) {
  if (keys === true) dirty.dpsAll = true;
  else for (const k of keys) dirty.dps.add(k);
  schedule();
}

function flush() {
  dirty.frame = 0;
  if (holding) return;
  renderPackages(dirty.all, dirty.filter, dirty.ids);
  if (dirty.detail || dirty.all || (selected && dirty.ids.has(selected.id))) renderDetail();
  else if (dirty.summary) renderSummary();
  if (dirty.dpsAll || dirty.dps.size) renderDps(dirty.dpsAll, dirty.dps);
  const reveal = dirty.reveal;
  dirty.all = false;
  dirty.filter = false;
  dirty.ids.clear();
  dirty.detail = false;
  dirty.summary = false;
  dirty.dpsAll = false;
  dirty.dps.clear();
  dirty.reveal = null;
  if (reveal) reveal();
}

// The summary line is drawn again every second, so that its rate is of the last ten seconds even when no event
// comes (a transfer that stalls shows no rate once its last bytes are older than that).
setInterval(() => {
  if (!selected || !selected.loaded) return;
  dirty.summary = true;
  schedule();
}, TICK_MS);

async function revision() {
  const res = await fetch('/api/v1/health');
  const h = await res.json();
  return h.revision;
}

// Bumped by sign-out: a load still in flight then opens nothing.
let session = 0;

// Mirrors every instance of `cls` into `map` (by keyOf): queried, then kept current by an event feed from the
// revision before the query. `changed(keys | true)` is told what moved. Returns the feed, or null when a sign-out
// came first. A gap in the feed queries again, through `reload`.
async function mirror(cls, map, keyOf, changed, reload) {
  const mine = session;
  const since = await revision();
  const rows = await query(`SELECT * FROM ${cls}`);
  if (mine !== session) return null;
  map.clear();
  for (const r of rows) map.set(keyOf(r), r);
  changed(true);
  return openFeed(`SELECT * FROM __InstanceOperationEvent WHERE TargetInstance ISA '${cls}'`, since,
    (e) => { const k = applyEvent(map, e, keyOf); if (k !== null) changed([k]); },
    () => reload().catch(showError));
}

async function loadPackages() {
  closeFeed(rootFeed);
  rootFeed = await mirror('SMS_PackageStatusRootSummarizer', packages, (t) => t.PackageID, invalidate, loadPackages);
}

// Also the open package's site rows: a page watching one package keeps five streams (docs/dashboard.md).
async function loadDetails() {
  closeFeed(detailFeed);
  detailFeed = await mirror('SMS_PackageStatusDetailSummarizer', details, detailKey,
    (keys) => invalidate(keys === true ? true : keys.map(packageOfKey)), loadDetails);
}

async function loadDps() {
  closeFeed(dpFeed);
  dpFeed = await mirror('SMS_DPStatusInfo', dpHealth, (t) => lower(t.NALPath), invalidateDps, loadDps);
}

async function select(id) {
  const before = selected && selected.id;
  if (selected) selected.feeds.forEach(closeFeed);
  selected = { id, dps: new Map(), jobs: new Map(), feeds: [], samples: [], loaded: false, seen: false };
  const mine = selected;
  markSelected(before, id);
  if (before !== id) dirty.reveal = revealDetail;  // (the same package again after a gap in its feeds stays put)
  invalidate([], true);  // its title at once, and "loading…" until its rows are in
  const since = await revision();
  const where = `PackageID = ${quote(id)}`;
  const [dps, jobs] = await Promise.all([
    query(`SELECT * FROM SMS_PackageStatusDistPointsSummarizer WHERE ${where}`),
    query(`SELECT * FROM PKG_DPJob WHERE ${where}`),
  ]);
  if (selected !== mine) return;  // another package was chosen meanwhile
  for (const r of dps) mine.dps.set(dpKey(r), r);
  for (const r of jobs) mine.jobs.set(dpKey(r), r);
  const watch = (cls, map, keyOf) => openFeed(
    `SELECT * FROM __InstanceOperationEvent WHERE TargetInstance ISA '${cls}' AND TargetInstance.${where}`,
    since, (e) => { applyEvent(map, e, keyOf); invalidate([], true); },
    () => { if (selected === mine) select(id).catch(showError); });
  mine.feeds = [
    watch('SMS_PackageStatusDistPointsSummarizer', mine.dps, dpKey),
    watch('PKG_DPJob', mine.jobs, dpKey),
  ];
  mine.loaded = true;  // from here on its bytes are real: the rate's samples start
  invalidate([], true);
}

// Bytes done and to do over the DPs receiving the current version (what `pkgcast status` shows).
function bytesOf(sel, root, site) {
  let done = 0;
  let total = 0;
  for (const [key, row] of sel.dps) {
    if (site && lower(row.SiteCode) !== site) continue;
    const state = num(row.State);
    if (state >= 4 && state <= 6) continue;
    const job = sel.jobs.get(key);
    const size = job ? Math.max(num(job.BytesTotal), num(job.ContentSize)) : 0;
    total += size;
    if (state === 0 && num(row.SourceVersion) === num(root.SourceVersion)) done += size;
    else if (job) done += Math.min(num(job.BytesDone), size);
  }
  return { done, total };
}

// True when a DP moves bytes now: installing or updating (1, 7), its job sent to its agent (JobState 1) and waiting
// for nothing. Pending in a queue, retrying, failed or waiting for a window, no DP has a rate.
function transferring(sel) {
  for (const [key, row] of sel.dps) {
    const state = num(row.State);
    const job = sel.jobs.get(key);
    if ((state === 1 || state === 7) && job && num(job.JobState) === 1 && !job.WaitReason) return true;
  }
  return false;
}

// Bytes per second over the samples of the last RATE_WINDOW_MS, one taken per draw of the summary, or 0. Samples
// start once the package's rows are loaded (select), are dropped while no DP transfers, and age out of the window:
// bytes that stopped moving give no rate ten seconds later.
function rateOf(sel, done) {
  if (!transferring(sel)) {
    sel.samples = [];
    return 0;
  }
  const now = performance.now();
  const samples = sel.samples;
  // Fewer bytes than before: a new version started over, and the older samples count other bytes.
  if (samples.length && done < samples[samples.length - 1].done) samples.length = 0;
  samples.push({ t: now, done });
  while (now - samples[0].t > RATE_WINDOW_MS) samples.shift();
  const first = samples[0];
  return now > first.t ? ((done - first.done) * 1000) / (now - first.t) : 0;
}

// ---- rendering ----

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

// A string from the server, isolated from the text around it (its bidirectional controls end with it).
const bdi = (s) => el('bdi', {}, s ?? '');

function bar(done, total, kind = '') {
  const pct = total > 0 ? Math.min(100, (100 * done) / total) : 0;
  const fill = el('span', { class: `fill ${kind}` });
  fill.style.width = `${pct.toFixed(1)}%`;
  return el('span', { class: 'bar', title: total > 0 ? `${pct.toFixed(0)}%` : '' }, fill);
}

function bytesText(b) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (b >= 1000 && i < units.length - 1) { b /= 1000; i++; }
  return `${i === 0 ? b : b.toFixed(1)} ${units[i]}`;
}

const localTime = (iso) => new Date(iso).toLocaleString();

// The UTC times a server text holds (a WaitReason's `retry 1 of 100 at 2026-11-30T19:55:15.946060Z`), in local
// time as the page shows every other time.
const localTimes = (text) => String(text).replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z/g,
  (iso) => (Number.isNaN(Date.parse(iso)) ? iso : localTime(iso)));

function statusOf(root) {
  const targeted = num(root.Targeted);
  const installed = num(root.Installed);
  const failed = num(root.Failed);
  const retrying = num(root.Retrying);
  if (targeted === 0) return { text: 'not distributed', kind: 'idle' };
  if (failed > 0) return { text: `${failed} failed`, kind: 'failed' };
  if (installed === targeted) return { text: 'distributed', kind: 'done' };
  if (retrying > 0) return { text: `${retrying} retrying`, kind: 'retrying' };
  return { text: 'in progress', kind: 'progress' };
}

function countCells(row) {
  return COUNTS.map((p) => el('td', { class: 'num' }, num(row[p])));
}

// The rows of a long table, one per key, in key order. Only the rows of keys that changed are rebuilt: each is
// replaced, inserted at its place (binary search on the rows' data-key) or removed, so the rest of the table, and
// the browser's layout of it, are left alone.
class KeyedRows {
  constructor(tbody, build) {
    this.tbody = tbody;
    this.build = build;  // key -> <tr>
    this.rows = new Map();
  }

  reset(keys) {
    this.rows.clear();
    const order = [...keys].sort();
    for (const k of order) this.rows.set(k, this.withKey(k));
    this.tbody.replaceChildren(...order.map((k) => this.rows.get(k)));
  }

  // Shows the rows of `keys` and no other (the filter changed): the rows that stay are kept as they are, the others
  // removed, and the missing ones built and put in their place in one pass over the table.
  show(keys) {
    const wanted = new Set(keys);
    for (const [k, tr] of this.rows) {
      if (wanted.has(k)) continue;
      tr.remove();
      this.rows.delete(k);
    }
    // The rows left are in key order and all wanted: walking both in order, each missing row goes before `next`.
    let next = this.tbody.firstElementChild;
    for (const k of [...wanted].sort()) {
      const kept = this.rows.get(k);
      if (kept) {
        next = kept.nextElementSibling;
        continue;
      }
      const tr = this.withKey(k);
      this.rows.set(k, tr);
      this.tbody.insertBefore(tr, next);
    }
  }

  update(keys, exists) {
    for (const k of keys) {
      const old = this.rows.get(k);
      if (!exists(k)) {
        if (old) old.remove();
        this.rows.delete(k);
        continue;
      }
      const tr = this.withKey(k);
      this.rows.set(k, tr);
      if (old) {
        old.replaceWith(tr);
        continue;
      }
      const rows = this.tbody.children;
      let lo = 0;
      let hi = rows.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (rows[mid].dataset.key < k) lo = mid + 1;
        else hi = mid;
      }
      this.tbody.insertBefore(tr, rows[lo] || null);
    }
  }

  clear() {
    this.rows.clear();
    this.tbody.replaceChildren();
  }

  withKey(k) {
    const tr = this.build(k);
    tr.dataset.key = k;
    return tr;
  }
}

const PARTIAL = 'counts over the sites this token may read (it may not read the package\'s own row)';

function packageRow(id) {
  const r = summaryOf(id);
  const s = statusOf(r);
  const tr = el('tr', { class: selected && selected.id === id ? 'selected' : '', 'data-package': id },
    el('td', {}, el('a', { href: `#package=${encodeURIComponent(id)}` }, bdi(id))),
    el('td', { title: r.Name || '' }, bdi(r.Name || '')),  // cut to the column: the full name on hover
    el('td', { class: 'num' }, num(r.SourceVersion)),
    el('td', { class: 'bar-cell' }, bar(num(r.Installed), num(r.Targeted), s.kind)),
    ...countCells(r),
    el('td', { title: r.partial ? PARTIAL : '' }, el('span', { class: `badge ${s.kind}` }, s.text)));
  tr.addEventListener('click', (ev) => { ev.preventDefault(); location.hash = `package=${encodeURIComponent(id)}`; });
  return tr;
}

// Marks the selected package's row and unmarks the one before, leaving every other row of the list alone.
function markSelected(before, after) {
  if (!packageTable) return;
  for (const id of [before, after]) {
    const tr = id && packageTable.rows.get(id);
    if (tr) tr.classList.toggle('selected', id === after);
  }
}

const MESSAGE_STATES = { 1: ['ok', 'done'], 2: ['in progress', 'progress'], 3: ['error', 'failed'] };

function dpRow(key) {
  const r = dpHealth.get(key);
  // A DP that has never reported has no LastStatusTime, whatever its MessageState says: it is not "ok" yet.
  const [text, kind] = (r.LastStatusTime && MESSAGE_STATES[num(r.MessageState)]) || ['not heard from', 'idle'];
  return el('tr', { 'data-dp-health': r.Name || r.NALPath },
    el('td', { class: 'text' }, bdi(r.Name || r.NALPath)),
    el('td', {}, bdi(r.SiteCode || '')),
    el('td', {}, r.IsPullDP ? 'pull' : ''),
    ...['NumberInstalled', 'NumberInProgress', 'NumberErrors', 'NumberUnknown'].map(
      (p) => el('td', { class: 'num' }, num(r[p]))),
    el('td', {}, el('span', { class: `badge ${kind}` }, text)),
    el('td', { class: 'muted small' }, r.LastStatusTime ? localTime(r.LastStatusTime) : ''));
}

let packageTable = null;
let dpTable = null;

// The filter box: a package is shown when its ID or name holds the text (ignoring case). `filterText` is the box's
// text as of its last pause (FILTER_DELAY_MS), so rows that events bring obey the same filter as the others.
let filterText = '';

function shown(id) {
  if (!filterText) return true;
  const r = summaryOf(id);
  return id.toLowerCase().includes(filterText) || String((r && r.Name) || '').toLowerCase().includes(filterText);
}

// `all`: every row anew (a reload); `filter`: rows shown and hidden for the filter; and the rows of `ids` rebuilt.
function renderPackages(all, filter, ids) {
  packageTable ||= new KeyedRows($('package-rows'), packageRow);
  if (all) packageTable.reset([...listedIds()].filter(shown));
  else if (filter) packageTable.show([...listedIds()].filter(shown));
  if (!all && ids.size) packageTable.update(ids, (id) => listed(id) && shown(id));
  const showing = packageTable.rows.size;
  const total = listedIds().size;
  $('package-count').textContent = showing === total ? `(${total})` : `(${showing} of ${total})`;
  $('no-packages').hidden = total > 0;
  $('partial-note').hidden = total === packages.size;  // some rows are sums of Detail rows (summaryOf)
}

function renderDps(all, keys) {
  dpTable ||= new KeyedRows($('dp-health-rows'), dpRow);
  if (all) dpTable.reset(dpHealth.keys());
  else dpTable.update(keys, (k) => dpHealth.has(k));
  $('dp-count').textContent = `(${dpHealth.size})`;
  $('dps').hidden = dpHealth.size === 0;
}

// The package's ID, name and content version, each its own element: a name cannot reorder the rest.
function renderTitle(sel, root) {
  const title = $('detail-title');
  if (root) {
    title.replaceChildren(el('span', { class: 'id' }, bdi(sel.id)), root.Name ? ' — ' : '',
      root.Name ? el('span', { class: 'name' }, bdi(root.Name)) : '',
      el('span', { class: 'version' }, `, content version ${num(root.SourceVersion)}`));
  } else if (!sel.loaded) {
    title.replaceChildren(el('span', { class: 'id' }, bdi(sel.id)));
  } else if (sel.seen) {
    title.replaceChildren('Package ', el('span', { class: 'id' }, bdi(sel.id)), ' was deleted');
  } else {
    title.replaceChildren('No package ', el('span', { class: 'id' }, bdi(sel.id)),
      el('span', { class: 'muted small' }, ' (it does not exist, or is on no site this token may read)'));
  }
}

function renderSummary() {
  const sel = selected;
  const root = sel && summaryOf(sel.id);
  if (!root) return;
  if (!sel.loaded) {
    $('detail-summary').replaceChildren(el('span', { class: 'muted' }, 'loading…'));
    return;
  }
  const { done, total } = bytesOf(sel, root);
  const rate = rateOf(sel, done);
  const s = statusOf(root);
  let summary = `${num(root.Installed)} of ${num(root.Targeted)} DPs installed`;
  if (root.partial) summary += ' on the sites this token may read';
  summary += ` · ${bytesText(done)} of ${bytesText(total)}`;
  if (rate > 0 && done < total) {
    summary += ` · ${bytesText(rate)}/s · about ${Math.ceil((total - done) / rate)} s left`;
  }
  $('detail-summary').replaceChildren(el('span', { class: `badge ${s.kind}` }, s.text), ' ', summary);
}

function renderDetail() {
  const sel = selected;
  $('detail').hidden = !sel;
  if (!sel) return;
  const root = summaryOf(sel.id);
  if (root) sel.seen = true;
  renderTitle(sel, root);
  // An unknown package (or one deleted while open) is said to be so, with no made-up version or counts.
  $('detail-body').hidden = !root;
  if (!root) return;
  renderSummary();

  const sites = details.byPackage.get(sel.id) || new Map();
  $('site-rows').replaceChildren(...[...sites.keys()].sort().map((code) => {
    const d = sites.get(code);
    const b = bytesOf(sel, root, code);
    return el('tr', { 'data-site': d.SiteCode },
      el('td', {}, bdi(d.SiteCode)),
      el('td', { class: 'bar-cell' }, bar(num(d.Installed), num(d.Targeted), statusOf(d).kind),
        el('span', { class: 'muted small' }, ` ${bytesText(b.done)} of ${bytesText(b.total)}`)),
      ...countCells(d));
  }));

  const keys = [...sel.dps.keys()].sort();
  $('dp-rows').replaceChildren(...keys.map((key) => dpDetailRow(sel.dps.get(key), sel.jobs.get(key))));
}

function dpDetailRow(r, job) {
  const state = num(r.State);
  const size = job ? Math.max(num(job.BytesTotal), num(job.ContentSize)) : 0;
  const doneBytes = state === 0 ? size : job ? Math.min(num(job.BytesDone), size) : 0;
  const kind = state === 0 ? 'done'
    : state === 3 || state === 6 ? 'failed'
      : state === 2 || state === 5 ? 'retrying' : 'progress';
  // Content being removed (4, 5, 6) is left out of the bytes to move: no bar either.
  const removing = state >= 4 && state <= 6;
  const name = (job && job.DPName) || r.ServerNALPath;
  const status = el('td', { class: kind === 'failed' ? 'text error' : 'text' }, bdi(r.InstallStatus || ''));
  if (job && job.WaitReason) status.append(' (', bdi(localTimes(job.WaitReason)), ')');
  return el('tr', { 'data-dp': name },
    el('td', { class: 'text' }, bdi(name)),
    el('td', {}, bdi(r.SiteCode)),
    el('td', {}, el('span', { class: `badge ${kind}` }, STATE_NAMES[state] || String(state))),
    el('td', { class: 'bar-cell' }, ...(removing ? [] : [bar(doneBytes, size, kind),
      el('span', { class: 'muted small' }, size ? ` ${bytesText(doneBytes)} of ${bytesText(size)}` : '')])),
    el('td', { class: 'num' }, num(r.SourceVersion)),
    status);
}

// The detail is above the list: opened from a row far down, it is scrolled to, unless its top is already in view.
function revealDetail() {
  const top = $('detail').getBoundingClientRect().top;
  if (top < 0 || top > innerHeight / 2) $('detail').scrollIntoView({ block: 'start' });
}

// ---- navigation and sign-in ----

function showError(e) {
  const box = $('error');
  box.replaceChildren(bdi(e instanceof Error ? e.message : String(e)));
  box.hidden = false;
}

// Ends the session: its streams closed, its rows forgotten (a sign-out, or another token from the fragment).
function endSession() {
  session++;
  for (const f of [...feeds]) closeFeed(f);
  rootFeed = null;
  detailFeed = null;
  dpFeed = null;
  selected = null;
  packages.clear();
  details.clear();
  dpHealth.clear();
  if (packageTable) packageTable.clear();
  if (dpTable) dpTable.clear();
  $('packages').hidden = true;
  $('dps').hidden = true;
  $('detail').hidden = true;
}

function signOut(message) {
  endSession();
  sessionStorage.removeItem('pkgcast.token');
  $('sign-out').hidden = true;
  $('sign-in').hidden = false;
  $('sign-in-error').replaceChildren(bdi(message || ''));
}

async function start() {
  const mine = session;
  $('error').hidden = true;
  holding = true;  // the three mirrors' rows make one first drawing, not three
  try {
    const h = await (await fetch('/api/v1/health')).json();
    namespace = `root\\sms\\site_${h.site}`;
    $('site').replaceChildren('site ', bdi(h.site));
    await Promise.all([loadPackages(), loadDetails(), loadDps()]);
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 403)) return signOut(e.message);
    return showError(e);
  } finally {
    holding = false;
    schedule();
  }
  if (mine !== session) return;  // signed out, or another token, meanwhile
  $('sign-in').hidden = true;
  $('packages').hidden = false;
  $('sign-out').hidden = false;
  route();
}

function route() {
  const m = /package=([^&]+)/.exec(location.hash);
  let id = null;
  try { id = m ? decodeURIComponent(m[1]) : null; } catch { id = m[1]; }
  if (!id) {
    if (!selected) return;
    const before = selected.id;
    selected.feeds.forEach(closeFeed);
    selected = null;
    markSelected(before, null);
    // Back at the list, where it was left: the row that was open.
    dirty.reveal = () => {
      const tr = packageTable.rows.get(before);
      if (tr) tr.scrollIntoView({ block: 'center' });
    };
    invalidate([], true);
    return;
  }
  if (!selected || selected.id !== id) select(id).catch(showError);
}

// A `#token=` link followed in a tab that shows the page already changes only the fragment: taken here too.
window.addEventListener('hashchange', () => {
  const before = token();
  const taken = takeTokenFromFragment();
  if (taken !== null && taken !== before) {
    endSession();
    start();
  } else if (token()) {
    route();
  }
});
$('sign-in').addEventListener('submit', (ev) => {
  ev.preventDefault();
  sessionStorage.setItem('pkgcast.token', $('token').value.trim());
  $('token').value = '';
  start();
});
$('sign-out').addEventListener('click', () => signOut(''));
let filterTimer = 0;
$('filter').addEventListener('input', () => {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => {
    filterText = $('filter').value.trim().toLowerCase();
    dirty.filter = true;
    schedule();
  }, FILTER_DELAY_MS);
});

takeTokenFromFragment();
if (token()) start(); else signOut('');
