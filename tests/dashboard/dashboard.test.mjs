// The dashboard (web/) as an administrator uses it: in a real browser (Debian's Chromium, driven by
// playwright-core), against a real `pkgcast server` and a real `pkgcast dp-agent` on loopback.
//
//   node --test tests/dashboard/dashboard.test.mjs        (PKGCAST=path/to/pkgcast, CHROMIUM=path/to/chromium)
//
// CTest runs it as `dashboard_e2e` (tests/dashboard/run), which skips it when Chromium or playwright-core is missing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const PKGCAST = process.env.PKGCAST || path.resolve('build/release/src/cli/pkgcast');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WAIT = { timeout: 20000 };

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'pkgcast-dashboard-'));
const dataDir = path.join(work, 'server');
const sourceRoot = path.join(work, 'sources');
const children = [];
let url = '';
let port = 0;
let server = null;
let browser = null;

function startServer(listen) {
  const child = spawn(PKGCAST, ['server', '--data-dir', dataDir, '--listen', listen, '--site-code', 'WEB'], {
    env: { ...process.env, PKGCAST_SOURCE_ROOTS: sourceRoot },
    stdio: ['ignore', 'pipe', fs.openSync(path.join(work, 'server.log'), 'a')],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`the server did not start: ${seen}`)), 30000);
    child.stdout.on('data', (chunk) => {
      seen += chunk;
      const m = /listening on (http:\/\/\S+)/.exec(seen);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1] });
      }
    });
    child.on('exit', (code) => reject(new Error(`the server exited with ${code}: ${seen}`)));
  });
}

// SIGTERM, then SIGKILL if it is still there after 10 s.
function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const kill = setTimeout(() => child.kill('SIGKILL'), 10000);
    child.once('exit', () => { clearTimeout(kill); resolve(); });
    child.kill('SIGTERM');
  });
}

// Whatever ends this process (a failed assertion, CTest's timeout) takes the server and agents with it.
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

// A loopback port free now (the kernel's choice), for a process that listens on it next.
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port: p } = srv.address();
      srv.close(() => resolve(p));
    });
  });
}

function cli(...args) {
  return execFileSync(PKGCAST, ['--server', url, '--token-file', path.join(dataDir, 'admin.token'), ...args],
    { encoding: 'utf8' }).trim();
}

const token = () => fs.readFileSync(path.join(dataDir, 'admin.token'), 'utf8').trim();

before(async () => {
  fs.mkdirSync(path.join(sourceRoot, 'app', 'bin'), { recursive: true });
  fs.writeFileSync(path.join(sourceRoot, 'app', 'bin', 'tool'), '#!/bin/sh\necho hello\n', { mode: 0o755 });
  fs.writeFileSync(path.join(sourceRoot, 'app', 'data.bin'), Buffer.alloc(3 * 1024 * 1024, 7));
  ({ child: server, url } = await startServer('127.0.0.1:0'));
  port = Number(new URL(url).port);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

after(async () => {
  if (browser) await browser.close();
  for (const c of children.reverse()) await stop(c);
  fs.rmSync(work, { recursive: true, force: true });
});

const row = (page, id) => page.locator(`tr[data-package="${id}"]`);

test('a wrong token gets the sign-in form with the server\'s reason, and a right one signs in', async () => {
  const page = await browser.newPage();
  await page.goto(`${url}/#token=pkc_not_a_token`);
  await page.locator('#sign-in').waitFor({ state: 'visible', ...WAIT });
  await assert.doesNotReject(page.locator('#sign-in-error', { hasText: 'WBEM_E_ACCESS_DENIED' }).waitFor(WAIT));
  assert.equal(new URL(page.url()).hash, '', 'the token is taken out of the address bar');
  await page.fill('#token', token());
  await page.click('#sign-in button[type=submit]');
  await page.locator('#packages').waitFor({ state: 'visible', ...WAIT });
  await page.locator('#live[data-state="on"]').waitFor(WAIT);
  await page.close();
});

test('packages appear and change live, and a distribution shows each DP until it is installed', async () => {
  const page = await browser.newPage();
  await page.goto(`${url}/#token=${token()}`);
  await page.locator('#live[data-state="on"]').waitFor(WAIT);

  // A package created after the page loaded appears without a reload, not distributed (Targeted = 0).
  const empty = cli('package', 'create', '--name', 'Without content');
  await row(page, empty).locator('.badge', { hasText: 'not distributed' }).waitFor(WAIT);

  // The filter keeps the rows whose ID or name holds its text, and new rows obey it too.
  await page.fill('#filter', 'without CONTENT');
  const hidden = cli('package', 'create', '--name', 'Not matching');
  const matching = cli('package', 'create', '--name', 'Also without content');
  await row(page, matching).waitFor(WAIT);
  await page.locator('#package-count', { hasText: '(2 of 3)' }).waitFor(WAIT);
  assert.deepEqual(await page.locator('#package-rows tr').evaluateAll((rows) => rows.map((r) => r.dataset.package)),
    [empty, matching]);
  await page.fill('#filter', '');
  await row(page, hidden).waitFor(WAIT);

  // A package with content, distributed to a DP whose agent is not running yet: in progress, its DP pending.
  const pkg = cli('package', 'create', '--name', 'Tool', '--source', path.join(sourceRoot, 'app'));
  const agentPort = await freePort();
  const added = cli('dp', 'add', 'web-dp1', '--site', 'WEB', '--url', `http://127.0.0.1:${agentPort}`);
  const dpToken = added.split('\n')[0];
  await page.goto(`${url}/#package=${pkg}`);
  await page.locator('#detail').waitFor({ state: 'visible', ...WAIT });
  cli('distribute', pkg, '--dp', 'web-dp1');
  await row(page, pkg).locator('.badge', { hasText: 'in progress' }).waitFor(WAIT);
  await page.locator('tr[data-dp="web-dp1"]', { hasText: 'INSTALL_PENDING' }).waitFor(WAIT);
  assert.equal(await row(page, pkg).locator('td.num').nth(1).textContent(), '0');   // Installed
  assert.equal(await row(page, pkg).locator('td.num').nth(2).textContent(), '1');   // Targeted

  // The agent starts: the same page, never reloaded, ends with the DP installed and the package distributed.
  const agent = spawn(PKGCAST, ['--server', url, '--token', dpToken, 'dp-agent', '--name', 'web-dp1',
    '--data-dir', path.join(work, 'dp1'), '--listen', `127.0.0.1:${agentPort}`],
  { stdio: ['ignore', 'ignore', fs.openSync(path.join(work, 'dp1.log'), 'a')] });
  children.push(agent);
  await page.locator('tr[data-dp="web-dp1"]', { hasText: 'INSTALLED' }).waitFor(WAIT);
  await row(page, pkg).locator('.badge', { hasText: 'distributed' }).waitFor(WAIT);
  await page.locator('tr[data-site="WEB"]').waitFor(WAIT);
  assert.match(await page.locator('#detail-summary').textContent(), /1 of 1 DPs installed/);
  // The DP's health row (SMS_DPStatusInfo) followed it too: one package installed, its last status a success.
  const health = page.locator('tr[data-dp-health="web-dp1"]');
  await health.locator('.badge', { hasText: 'ok' }).waitFor(WAIT);
  assert.equal(await health.locator('td.num').nth(0).textContent(), '1');
  await page.close();
});

test('a hidden page gives its streams back, and resumes them where it left off when it is shown', async () => {
  const page = await browser.newPage();
  await page.goto(`${url}/#token=${token()}`);
  await page.locator('#live[data-state="on"]').waitFor(WAIT);
  const setHidden = (hidden) => page.evaluate((h) => {
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => h });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
  await setHidden(true);
  // Made while the streams are closed: the page does not hear of it (this page still draws while "hidden")...
  const made = cli('package', 'create', '--name', 'Made while the page was hidden');
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(await row(page, made).count(), 0, 'a hidden page keeps no stream open');
  // ...until it is shown again and its streams resume after the last revision they delivered.
  await setHidden(false);
  await row(page, made).waitFor(WAIT);
  await page.locator('#live[data-state="on"]').waitFor(WAIT);
  await page.close();
});

test('after the server restarts, the page resumes its streams from the last revision it saw', async () => {
  const page = await browser.newPage();
  await page.goto(`${url}/#token=${token()}`);
  await page.locator('#live[data-state="on"]').waitFor(WAIT);
  await stop(server);
  await page.locator('#live[data-state="retrying"]').waitFor(WAIT);
  ({ child: server } = await startServer(`127.0.0.1:${port}`));
  // Made as the server comes back, most likely before the page's streams are: resumed from their last revision.
  const made = cli('package', 'create', '--name', 'Made while the page was away');
  await row(page, made).waitFor(WAIT);
  await page.locator('#live[data-state="on"]').waitFor(WAIT);
  await page.close();
});

test('a browser EventSource authenticates with ?access_token= and receives events', async () => {
  const page = await browser.newPage();
  await page.goto(`${url}/`);
  const query = "SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'SMS_Package'";
  const target = `/api/v1/events?query=${encodeURIComponent(query)}&access_token=${encodeURIComponent(token())}`;
  // EventSource sends no Authorization header: the token in the URL is all the server gets.
  const opened = page.evaluate((t) => new Promise((resolve, reject) => {
    const source = new EventSource(t);
    window.pkgcastEvents = [];
    source.onmessage = (e) => window.pkgcastEvents.push(JSON.parse(e.data));
    source.onopen = () => resolve('open');
    source.onerror = () => reject(new Error(`EventSource failed (readyState ${source.readyState})`));
  }), target);
  assert.equal(await opened, 'open');
  const made = cli('package', 'create', '--name', 'Seen by an EventSource');
  await page.waitForFunction((id) => window.pkgcastEvents.some((e) => e.TargetInstance?.PackageID === id), made,
    WAIT);
  await page.close();
});
