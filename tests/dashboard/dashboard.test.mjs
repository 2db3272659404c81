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

// The first line `token create` and `dp add` print: the new token.
const firstLine = (text) => text.split('\n')[0];

async function api(method, route, body, bearer = token()) {
  const res = await fetch(`${url}${route}`, {
    method, headers: { Authorization: `Bearer ${bearer}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

const wql = async (text) => (await api('POST', '/api/v1/query', { namespace: 'root\\sms\\site_WEB', query: text }))
  .instances;

// What a DP's agent reports of its job (docs/dp-protocol.md), sent for a DP whose agent is not running: the test
// decides when bytes move, and what the DP says.
let reports = 0;
// As an agent does, it reports on the job once the server has sent it (JobState 1), under the generation sent: a job
// read just after `distribute`, before the Distribution Manager sent it, or re-sent meanwhile on a loaded machine,
// is read again (bounded) rather than reported under a generation that is not the current one.
async function report(dpToken, pkg, dp, state, bytesDone, message = '') {
  let answer;
  for (let attempt = 0; attempt < 100; attempt++) {
    const [job] = await wql(`SELECT * FROM PKG_DPJob WHERE PackageID = '${pkg}' AND DPName = '${dp}'`);
    if (!job || job.JobState !== 1) {
      await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    answer = await api('POST', '/api/v1/dp/status', {
      key: `test-${process.pid}-${Date.now()}-${++reports}`, package_id: pkg, generation: job.Generation, state,
      bytes_done: bytesDone, bytes_total: job.ContentSize, message,
    }, dpToken);
    if (answer.applied || !/is not the job's current one/.test(answer.reason ?? '')) break;
  }
  assert.equal(answer?.applied, true, JSON.stringify(answer));
}

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

test('the transfer rate counts only bytes seen moving, goes when they stop, and is not shown while no DP transfers',
  async () => {
    const pkg = cli('package', 'create', '--name', 'Rate', '--source', path.join(sourceRoot, 'app'));
    const dpToken = firstLine(cli('dp', 'add', 'web-rate', '--site', 'WEB'));
    cli('distribute', pkg, '--dp', 'web-rate');
    // Bytes moved before the page opened: there, but not a rate (they were not seen moving).
    await report(dpToken, pkg, 'web-rate', 'progress', 2000000);
    const page = await browser.newPage();
    await page.goto(`${url}/#token=${token()}&package=${pkg}`);
    const summary = page.locator('#detail-summary');
    await page.locator('tr[data-dp="web-rate"]', { hasText: '2.0 MB of 3.1 MB' }).waitFor(WAIT);
    assert.doesNotMatch(await summary.textContent(), /\/s/);
    // Nor in the summaries drawn in the next few seconds (the line is drawn again every second).
    await page.evaluate(() => {
      const line = document.getElementById('detail-summary');
      window.summaries = [];
      new MutationObserver(() => window.summaries.push(line.textContent))
        .observe(line, { childList: true, subtree: true, characterData: true });
    });
    await page.waitForFunction(() => window.summaries.length >= 3, null, WAIT);
    assert.deepEqual(await page.evaluate(() => window.summaries.filter((s) => s.includes('/s'))), []);

    // Bytes move: a rate and a time left...
    await report(dpToken, pkg, 'web-rate', 'progress', 2300000);
    await summary.filter({ hasText: /\/s · about \d+ s left/ }).waitFor(WAIT);
    // ...that go once the last bytes moved are older than the rate's ten seconds, with no event to redraw them.
    await summary.filter({ hasNotText: '/s' }).waitFor({ timeout: 30000 });

    // Moving again, then failing (retrying): no DP transfers, so no rate at once, whatever moved just before.
    await report(dpToken, pkg, 'web-rate', 'progress', 2600000);
    await summary.filter({ hasText: /\/s · about \d+ s left/ }).waitFor(WAIT);
    await report(dpToken, pkg, 'web-rate', 'failed', 2600000, 'connection reset');
    await page.locator('tr[data-dp="web-rate"]', { hasText: 'INSTALL_RETRYING' }).waitFor(WAIT);
    assert.doesNotMatch(await summary.textContent(), /\/s/);
    await page.close();
  });

test('with many packages, opening one and going back redraw only their rows, the filter keeps the rows it still ' +
  'shows, and the opened package is in view', async () => {
  const made = [];
  for (let i = 0; i < 150; i++) {
    made.push((await api('POST', '/api/v1/packages', { name: `Bulk ${String(i).padStart(3, '0')}` })).PackageID);
  }
  const page = await browser.newPage({ viewport: { width: 1200, height: 700 } });
  await page.goto(`${url}/#token=${token()}`);
  await row(page, made.at(-1)).waitFor(WAIT);
  // The list's rows as elements: a row drawn again is another element. (Only these packages' rows are looked at: an
  // event may redraw the row of another test's package, as it should.)
  await page.evaluate(() => { window.before = new Set(document.querySelectorAll('#package-rows tr')); });
  const redrawn = async () => (await page.evaluate(() => [...document.querySelectorAll('#package-rows tr')]
    .filter((tr) => !window.before.has(tr)).map((tr) => tr.dataset.package))).filter((id) => made.includes(id));
  const inView = async (locator) => {
    const box = await locator.boundingBox();
    return box !== null && box.y >= 0 && box.y < 700;
  };

  const far = made[140];
  await row(page, far).click();
  await page.locator('#detail-title', { hasText: 'Bulk 140' }).waitFor(WAIT);
  assert.deepEqual(await redrawn(), []);
  assert.equal(await row(page, far).getAttribute('class'), 'selected');
  assert.ok(await inView(page.locator('#detail-title')), 'the opened package is in view');

  // Back to the list: no row drawn again, none selected, and the list where it was left (the row in view).
  await page.evaluate(() => new Promise((resolve) => {
    window.addEventListener('popstate', resolve, { once: true });
    history.back();
  }));
  await page.locator('#detail').waitFor({ state: 'hidden', ...WAIT });
  assert.deepEqual(await redrawn(), []);
  assert.equal(await page.locator('#package-rows tr.selected').count(), 0);
  assert.ok(await inView(row(page, far)), 'the row that was open is in view');

  // The filter hides rows and shows them again; those it kept shown are the same rows.
  await page.fill('#filter', 'bulk 1');
  await page.locator('#package-count', { hasText: '(50 of ' }).waitFor(WAIT);
  assert.deepEqual(await redrawn(), []);
  await page.fill('#filter', '');
  await row(page, made[0]).waitFor(WAIT);
  const again = await redrawn();
  assert.deepEqual(made.slice(100).filter((id) => again.includes(id)), []);
  assert.ok(again.includes(made[0]), 'a row the filter hid is built again');
  await page.close();
});

test('a token limited to a site lists the packages sent to its DPs, from its own site rows', async () => {
  cli('site', 'create', 'XS1', '--name', 'Secondary', '--parent', 'WEB', '--type', 'secondary');
  const pkg = cli('package', 'create', '--name', 'For the secondary', '--source', path.join(sourceRoot, 'app'));
  cli('dp', 'add', 'web-xs1', '--site', 'XS1');
  cli('distribute', pkg, '--dp', 'web-xs1');
  const scoped = firstLine(cli('token', 'create', '--role', 'read-only', '--site', 'XS1'));
  const page = await browser.newPage();
  await page.goto(`${url}/#token=${scoped}`);
  // Its Root row is placed on WEB, the package's source site, which this token may not read.
  const r = row(page, pkg);
  await r.locator('.badge', { hasText: 'in progress' }).waitFor(WAIT);
  assert.equal(await page.locator('#package-rows tr').count(), 1);
  assert.equal(await r.locator('td').nth(1).textContent(), 'For the secondary');
  assert.equal(await r.locator('td.num').nth(2).textContent(), '1');   // Targeted: its site's DP
  await page.locator('#partial-note').waitFor(WAIT);
  await r.click();
  await page.locator('#detail-title', { hasText: 'For the secondary' }).waitFor(WAIT);
  await page.locator('#detail-summary', { hasText: '0 of 1 DPs installed on the sites this token may read' })
    .waitFor(WAIT);
  await page.locator('tr[data-site="XS1"]').waitFor(WAIT);
  await page.locator('tr[data-dp="web-xs1"]', { hasText: 'INSTALL_PENDING' }).waitFor(WAIT);
  await page.close();

  // A site with no package: the page does not claim that no package exists.
  cli('site', 'create', 'XS2', '--name', 'Empty', '--parent', 'WEB', '--type', 'secondary');
  const empty = await browser.newPage();
  await empty.goto(`${url}/#token=${firstLine(cli('token', 'create', '--role', 'read-only', '--site', 'XS2'))}`);
  await empty.locator('#no-packages').waitFor(WAIT);
  const said = await empty.locator('#no-packages').textContent();
  assert.doesNotMatch(said, /No package yet/);
  assert.match(said, /none is on a site this token may read/);
  await empty.close();
});

test('long server strings wrap within the window, and bidirectional controls in them reorder nothing else',
  async () => {
    const long = cli('package', 'create', '--name', 'W'.repeat(255), '--source', path.join(sourceRoot, 'app'));
    const dpToken = firstLine(cli('dp', 'add', 'web-long', '--site', 'WEB'));
    cli('distribute', long, '--dp', 'web-long');
    await report(dpToken, long, 'web-long', 'failed', 10, `\u202Eevil ${'E'.repeat(900)}`);
    const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
    await page.goto(`${url}/#token=${token()}&package=${long}`);
    await page.locator('tr[data-dp="web-long"]', { hasText: 'EEEE' }).waitFor(WAIT);
    await page.locator('#detail-title', { hasText: 'WWWW' }).waitFor(WAIT);
    const [scrollWidth, clientWidth] = await page.evaluate(
      () => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
    assert.ok(scrollWidth <= clientWidth, `the page is ${scrollWidth} px wide in a ${clientWidth} px window`);
    // The list cuts the name to its column, and has it whole for the pointer.
    assert.equal(await row(page, long).locator('td').nth(1).getAttribute('title'), 'W'.repeat(255));

    // A right-to-left override in a name: the title's own text (its content version) stays after the name.
    const name = 'Office 2019 \u202E5.0.1';
    const rlo = cli('package', 'create', '--name', name);
    await page.goto(`${url}/#package=${rlo}`);
    await page.locator('#detail-title', { hasText: 'Office 2019' }).waitFor(WAIT);
    const [nameRight, versionLeft] = await page.evaluate((needles) => {
      const rectOf = (needle) => {
        const walk = document.createTreeWalker(document.getElementById('detail-title'), NodeFilter.SHOW_TEXT);
        for (let n = walk.nextNode(); n; n = walk.nextNode()) {
          const at = n.data.indexOf(needle);
          if (at < 0) continue;
          const range = document.createRange();
          range.setStart(n, at);
          range.setEnd(n, at + needle.length);
          return range.getBoundingClientRect();
        }
        throw new Error(`no ${needle} in the title`);
      };
      return [rectOf(needles[0]).right, rectOf(needles[1]).left];
    }, [name, 'version']);
    assert.ok(versionLeft >= nameRight - 0.5, `"version" at ${versionLeft} px, before the name's end (${nameRight})`);
    await page.close();
  });

test('a #token= fragment set in an open tab is taken, and stays in neither the address bar nor the history',
  async () => {
    const page = await browser.newPage();
    const href = () => page.evaluate(() => location.href);
    const back = () => page.evaluate(() => new Promise((resolve) => {
      window.addEventListener('popstate', resolve, { once: true });
      history.back();
    }));
    const forward = () => page.evaluate(() => new Promise((resolve) => {
      window.addEventListener('popstate', resolve, { once: true });
      history.forward();
    }));
    await page.goto(`${url}/`);
    await page.locator('#sign-in').waitFor({ state: 'visible', ...WAIT });
    // Signed out: a link with a token signs in.
    await page.evaluate((t) => { location.hash = `token=${t}`; }, token());
    await page.locator('#live[data-state="on"]').waitFor(WAIT);
    assert.equal(await href(), `${url}/`);
    // Signed in: a link with another token (and a package) signs in with that one.
    const readOnly = firstLine(cli('token', 'create', '--role', 'read-only'));
    const pkg = cli('package', 'create', '--name', 'Opened with another token');
    await page.evaluate(([t, p]) => { location.hash = `token=${t}&package=${p}`; }, [readOnly, pkg]);
    await page.locator('#detail-title', { hasText: 'Opened with another token' }).waitFor(WAIT);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('pkgcast.token')), readOnly);
    assert.equal(await href(), `${url}/#package=${pkg}`);
    // No entry of the tab's history holds a token.
    const seen = [];
    for (const step of [back, back, forward, forward]) {
      await step();
      seen.push(await href());
    }
    assert.deepEqual(seen.filter((h) => h.includes('token=')), [], seen.join(' '));
    await page.close();
  });

test('a DP that never reported is not "ok", and an unknown or deleted package is said to be so', async () => {
  cli('dp', 'add', 'web-silent', '--site', 'WEB');
  const page = await browser.newPage();
  await page.goto(`${url}/#token=${token()}`);
  await page.locator('tr[data-dp-health="web-silent"] .badge', { hasText: 'not heard from' }).waitFor(WAIT);

  await page.goto(`${url}/#package=NOPE0001`);
  await page.locator('#detail-title', { hasText: 'No package NOPE0001' }).waitFor(WAIT);
  assert.ok(await page.locator('#detail-body').isHidden(), 'no made-up version, counts or tables');

  const doomed = cli('package', 'create', '--name', 'Deleted while open');
  await page.goto(`${url}/#package=${doomed}`);
  await page.locator('#detail-title', { hasText: 'Deleted while open' }).waitFor(WAIT);
  cli('package', 'delete', doomed);
  await page.locator('#detail-title', { hasText: `Package ${doomed} was deleted` }).waitFor(WAIT);
  assert.ok(await page.locator('#detail-body').isHidden());
  await page.close();
});

test('the page has its icon, shows wait times in local time, no content bar for a DP being removed, and names the ' +
  'content version', async () => {
  const pkg = cli('package', 'create', '--name', 'Waits', '--source', path.join(sourceRoot, 'app'));
  const dpToken = firstLine(cli('dp', 'add', 'web-wait', '--site', 'WEB'));
  cli('dp', 'add', 'web-gone', '--site', 'WEB');
  cli('distribute', pkg, '--dp', 'web-wait', '--dp', 'web-gone');
  await report(dpToken, pkg, 'web-wait', 'failed', 0, 'no route to host');
  cli('remove', pkg, '--dp', 'web-gone');

  const page = await browser.newPage();
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  const icon = page.waitForResponse((r) => /\/favicon\./.test(r.url()), WAIT);
  await page.goto(`${url}/#token=${token()}&package=${pkg}`);
  assert.equal((await icon).status(), 200);
  assert.equal(await page.locator('#packages thead th').nth(2).textContent(), 'Content version');

  const waiting = page.locator('tr[data-dp="web-wait"]', { hasText: 'retry 1 of' });
  await waiting.waitFor(WAIT);
  const [job] = await wql(`SELECT * FROM PKG_DPJob WHERE PackageID = '${pkg}' AND DPName = 'web-wait'`);
  const local = await page.evaluate((t) => new Date(t).toLocaleString(), job.NextAttemptTime);
  const text = await waiting.textContent();
  assert.ok(text.includes(`at ${local}`), text);
  assert.doesNotMatch(text, /\d{4}-\d\d-\d\dT/);

  const gone = page.locator('tr[data-dp="web-gone"]', { hasText: 'REMOVAL_PENDING' });
  await gone.waitFor(WAIT);
  assert.equal(await gone.locator('.bar').count(), 0);
  assert.deepEqual(errors, []);
  await page.close();
});
