// The pkgcast dashboard: packages' content status over every DP, pushed by the server as it changes.
//
// Data comes from the same API as every other client (docs/http-api.md): WQL data queries for the state, then WQL
// event queries (GET /api/v1/events, Server-Sent Events) for every change after it. The streams are read with
// fetch() rather than EventSource, because EventSource cannot send the Authorization header, and a token in a URL
// would end up in logs. A stream that breaks is resumed from the last revision it delivered, so nothing is missed.
//
// The token is kept in sessionStorage (this tab only). A URL fragment `#token=...` (what `pkgcast demo` prints) is
// taken once and removed from the address bar; a fragment never reaches a server.

import { SseParser } from './sse.js';

const STATE_NAMES = ['INSTALLED', 'INSTALL_PENDING', 'INSTALL_RETRYING', 'INSTALL_FAILED', 'REMOVAL_PENDING',
  'REMOVAL_RETRYING', 'REMOVAL_FAILED', 'CONTENT_UPDATING', 'CONTENT_MONITORING'];
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 15000;

const $ = (id) => document.getElementById(id);

// ---- token and API ----

function takeTokenFromFragment() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!m) return;
  let value = m[1];
  try { value = decodeURIComponent(value); } catch { /* not %-encoded: taken as it is */ }
  sessionStorage.setItem('pkgcast.token', value);
  const rest = location.hash.slice(1).split('&').filter((p) => !p.startsWith('token=')).join('&');
  history.replaceState(null, '', location.pathname + location.search + (rest ? `#${rest}` : ''));
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

const packages = new Map();  // PackageID -> SMS_PackageStatusRootSummarizer
const dpHealth = new Map();  // NALPath (lower case) -> SMS_DPStatusInfo
let selected = null;         // { id, sites: Map, dps: Map, jobs: Map, feeds: [], rate }
let rootFeed = null;
let dpFeed = null;

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
const dirty = { all: true, ids: new Set(), detail: false, dpsAll: true, dps: new Set(), frame: 0 };

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
  renderPackages(dirty.all, dirty.ids);
  if (dirty.detail || dirty.all || (selected && dirty.ids.has(selected.id))) renderDetail();
  if (dirty.dpsAll || dirty.dps.size) renderDps(dirty.dpsAll, dirty.dps);
  dirty.all = false;
  dirty.ids.clear();
  dirty.detail = false;
  dirty.dpsAll = false;
  dirty.dps.clear();
}

const num = (v) => (v === null || v === undefined || v === '' ? 0 : Number(v));
const lower = (s) => String(s || '').toLowerCase();
const dpKey = (row) => lower(row.ServerNALPath ?? row.NALPath);

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

async function loadDps() {
  closeFeed(dpFeed);
  dpFeed = await mirror('SMS_DPStatusInfo', dpHealth, (t) => lower(t.NALPath), invalidateDps, loadDps);
}

async function select(id) {
  if (selected) selected.feeds.forEach(closeFeed);
  selected = { id, sites: new Map(), dps: new Map(), jobs: new Map(), feeds: [], samples: [] };
  const mine = selected;
  const since = await revision();
  const where = `PackageID = ${quote(id)}`;
  const [sites, dps, jobs] = await Promise.all([
    query(`SELECT * FROM SMS_PackageStatusDetailSummarizer WHERE ${where}`),
    query(`SELECT * FROM SMS_PackageStatusDistPointsSummarizer WHERE ${where}`),
    query(`SELECT * FROM PKG_DPJob WHERE ${where}`),
  ]);
  if (selected !== mine) return;  // another package was chosen meanwhile
  for (const r of sites) mine.sites.set(lower(r.SiteCode), r);
  for (const r of dps) mine.dps.set(dpKey(r), r);
  for (const r of jobs) mine.jobs.set(dpKey(r), r);
  const watch = (cls, map, keyOf) => openFeed(
    `SELECT * FROM __InstanceOperationEvent WHERE TargetInstance ISA '${cls}' AND TargetInstance.${where}`,
    since, (e) => { applyEvent(map, e, keyOf); invalidate([], true); },
    () => { if (selected === mine) select(id).catch(showError); });
  mine.feeds = [
    watch('SMS_PackageStatusDetailSummarizer', mine.sites, (t) => lower(t.SiteCode)),
    watch('SMS_PackageStatusDistPointsSummarizer', mine.dps, dpKey),
    watch('PKG_DPJob', mine.jobs, dpKey),
  ];
  invalidate(true);
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
  return ['Installed', 'Targeted', 'Retrying', 'Failed'].map((p) => el('td', { class: 'num' }, num(row[p])));
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

function packageRow(id) {
  const r = packages.get(id);
  const s = statusOf(r);
  const tr = el('tr', { class: selected && selected.id === id ? 'selected' : '', 'data-package': id },
    el('td', {}, el('a', { href: `#package=${encodeURIComponent(id)}` }, id)),
    el('td', {}, r.Name || ''),
    el('td', { class: 'num' }, num(r.SourceVersion)),
    el('td', { class: 'bar-cell' }, bar(num(r.Installed), num(r.Targeted), s.kind)),
    ...countCells(r),
    el('td', {}, el('span', { class: `badge ${s.kind}` }, s.text)));
  tr.addEventListener('click', (ev) => { ev.preventDefault(); location.hash = `package=${encodeURIComponent(id)}`; });
  return tr;
}

const MESSAGE_STATES = { 1: ['ok', 'done'], 2: ['in progress', 'progress'], 3: ['error', 'failed'] };

function dpRow(key) {
  const r = dpHealth.get(key);
  const [text, kind] = MESSAGE_STATES[num(r.MessageState)] || ['not heard from', 'idle'];
  return el('tr', { 'data-dp-health': r.Name || r.NALPath },
    el('td', {}, r.Name || r.NALPath),
    el('td', {}, r.SiteCode || ''),
    el('td', {}, r.IsPullDP ? 'pull' : ''),
    ...['NumberInstalled', 'NumberInProgress', 'NumberErrors', 'NumberUnknown'].map(
      (p) => el('td', { class: 'num' }, num(r[p]))),
    el('td', {}, el('span', { class: `badge ${kind}` }, text)),
    el('td', { class: 'muted small' }, r.LastStatusTime ? new Date(r.LastStatusTime).toLocaleString() : ''));
}

let packageTable = null;
let dpTable = null;

// `all`: every row anew (the selection changed, or a reload); else only the rows of `ids`.
// The filter box: a package is shown when its ID or name holds the text (ignoring case).
function shown(id) {
  const text = $('filter').value.trim().toLowerCase();
  if (!text) return true;
  const r = packages.get(id);
  return id.toLowerCase().includes(text) || String((r && r.Name) || '').toLowerCase().includes(text);
}

function renderPackages(all, ids) {
  packageTable ||= new KeyedRows($('package-rows'), packageRow);
  if (all) packageTable.reset([...packages.keys()].filter(shown));
  else packageTable.update(ids, (id) => packages.has(id) && shown(id));
  const showing = packageTable.rows.size;
  const total = packages.size;
  $('package-count').textContent = showing === total ? `(${total})` : `(${showing} of ${total})`;
  $('no-packages').hidden = packages.size > 0;
}

function renderDps(all, keys) {
  dpTable ||= new KeyedRows($('dp-health-rows'), dpRow);
  if (all) dpTable.reset(dpHealth.keys());
  else dpTable.update(keys, (k) => dpHealth.has(k));
  $('dp-count').textContent = `(${dpHealth.size})`;
  $('dps').hidden = dpHealth.size === 0;
}

function renderDetail() {
  const sel = selected;
  $('detail').hidden = !sel;
  if (!sel) return;
  const root = packages.get(sel.id) || { PackageID: sel.id };
  const name = root.Name ? ` — ${root.Name}` : '';
  $('detail-title').textContent = `${sel.id}${name}, version ${num(root.SourceVersion)}`;
  const { done, total } = bytesOf(sel, root);
  // The rate over the last 10 s of samples, for an ETA.
  const now = Date.now();
  sel.samples.push({ t: now, done });
  while (sel.samples.length > 2 && now - sel.samples[0].t > 10000) sel.samples.shift();
  const first = sel.samples[0];
  const rate = now > first.t ? ((done - first.done) * 1000) / (now - first.t) : 0;
  const s = statusOf(root);
  let summary = `${num(root.Installed)} of ${num(root.Targeted)} DPs installed`;
  summary += ` · ${bytesText(done)} of ${bytesText(total)}`;
  if (rate > 0 && done < total) {
    summary += ` · ${bytesText(rate)}/s · about ${Math.ceil((total - done) / rate)} s left`;
  }
  $('detail-summary').replaceChildren(el('span', { class: `badge ${s.kind}` }, s.text), ' ', summary);

  const codes = [...sel.sites.keys()].sort();
  $('site-rows').replaceChildren(...codes.map((code) => {
    const d = sel.sites.get(code);
    const b = bytesOf(sel, root, code);
    return el('tr', { 'data-site': d.SiteCode },
      el('td', {}, d.SiteCode),
      el('td', { class: 'bar-cell' }, bar(num(d.Installed), num(d.Targeted), statusOf(d).kind),
        el('span', { class: 'muted small' }, ` ${bytesText(b.done)} of ${bytesText(b.total)}`)),
      ...countCells(d));
  }));

  const keys = [...sel.dps.keys()].sort();
  $('dp-rows').replaceChildren(...keys.map((key) => {
    const r = sel.dps.get(key);
    const job = sel.jobs.get(key);
    const state = num(r.State);
    const size = job ? Math.max(num(job.BytesTotal), num(job.ContentSize)) : 0;
    const doneBytes = state === 0 ? size : job ? Math.min(num(job.BytesDone), size) : 0;
    const kind = state === 0 ? 'done'
      : state === 3 || state === 6 ? 'failed'
        : state === 2 || state === 5 ? 'retrying' : 'progress';
    const name = (job && job.DPName) || r.ServerNALPath;
    const waiting = job && job.WaitReason ? ` (${job.WaitReason})` : '';
    return el('tr', { 'data-dp': name },
      el('td', {}, name),
      el('td', {}, r.SiteCode),
      el('td', {}, el('span', { class: `badge ${kind}` }, STATE_NAMES[state] || String(state))),
      el('td', { class: 'bar-cell' }, bar(doneBytes, size, kind),
        el('span', { class: 'muted small' }, size ? ` ${bytesText(doneBytes)} of ${bytesText(size)}` : '')),
      el('td', { class: 'num' }, num(r.SourceVersion)),
      el('td', { class: kind === 'failed' ? 'error' : '' }, (r.InstallStatus || '') + waiting));
  }));
}

// ---- navigation and sign-in ----

function showError(e) {
  const box = $('error');
  box.textContent = e instanceof Error ? e.message : String(e);
  box.hidden = false;
}

function signOut(message) {
  session++;
  sessionStorage.removeItem('pkgcast.token');
  for (const f of [...feeds]) closeFeed(f);
  rootFeed = null;
  dpFeed = null;
  selected = null;
  packages.clear();
  dpHealth.clear();
  if (packageTable) packageTable.clear();
  if (dpTable) dpTable.clear();
  $('packages').hidden = true;
  $('dps').hidden = true;
  $('detail').hidden = true;
  $('sign-out').hidden = true;
  $('sign-in').hidden = false;
  $('sign-in-error').textContent = message || '';
}

async function start() {
  $('error').hidden = true;
  try {
    const h = await (await fetch('/api/v1/health')).json();
    namespace = `root\\sms\\site_${h.site}`;
    $('site').textContent = `site ${h.site}`;
    await Promise.all([loadPackages(), loadDps()]);
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 403)) return signOut(e.message);
    return showError(e);
  }
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
    if (selected) selected.feeds.forEach(closeFeed);
    selected = null;
    invalidate(true);
    return;
  }
  if (!selected || selected.id !== id) select(id).catch(showError);
}

window.addEventListener('hashchange', () => { if (token()) route(); });
$('sign-in').addEventListener('submit', (ev) => {
  ev.preventDefault();
  sessionStorage.setItem('pkgcast.token', $('token').value.trim());
  $('token').value = '';
  start();
});
$('sign-out').addEventListener('click', () => signOut(''));
$('filter').addEventListener('input', () => invalidate(true));

takeTokenFromFragment();
if (token()) start(); else signOut('');
