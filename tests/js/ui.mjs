// Browser test of the web UI, driving Debian's Chromium with playwright-core: sign-in at a
// remote provider, the avatar menu, "Get Token", then the real mesheryctl with the
// downloaded auth.json, and the token, events, performance, designs, clusters, workspaces
// and environments pages (a test Kubernetes API server: a connection shown live, a design
// deployed and undeployed from the page, then grouped in an environment and a workspace);
// a sign-out on another client stops the live events with
// the reason.
//
// Usage: node tests/js/ui.mjs http://127.0.0.1:PORT PROVIDER_NAME
// Env:   MESHERYCTL     path of the mesheryctl binary (default target/debug/mesheryctl)
//        KUBECONFIG_FILE a kubeconfig for a test API server (cargo xtask test starts one)
//        UI_USER        user name at the provider (default alice)
//        UI_PASSWORD    their password (default secret)
//        CHROMIUM       path to the browser (default /usr/bin/chromium)
//        SCREENSHOT_DIR directory for PNG screenshots (optional)
//
// Each lettered step is one test; prints `N passed, M failed` and exits 1 on any failure.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch, steps } from './harness.mjs';

const base = (process.argv[2] || '').replace(/\/+$/, '');
const providerName = process.argv[3] || '';
if (!base || !providerName) {
  console.error('usage: node ui.mjs <serverBaseUrl> <providerName>');
  process.exit(2);
}
const here = path.dirname(fileURLToPath(import.meta.url));
const MESHERYCTL = process.env.MESHERYCTL || path.resolve(here, '../../target/debug/mesheryctl');
const USER = process.env.UI_USER || 'alice';
const PASSWORD = process.env.UI_PASSWORD || 'secret';
const SCREENSHOT_DIR = process.env.SCREENSHOT_DIR || '';
const STEP_TIMEOUT = 15000;
const SLOW_STEP_TIMEOUT = 30000; // steps that run a load test or the CLI
const EVENT_WAIT = 10000;
const suffix = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
const baseOrigin = new URL(base).origin;

const browserLog = [];
const { step, finish } = steps(STEP_TIMEOUT);

let browser;
let context;
let page;

async function diag() {
  const parts = [];
  try { parts.push(`url=${page.url()}`); } catch (_) { /* page gone */ }
  try {
    const alerts = await page.evaluate(() => Array.from(document.querySelectorAll('[role="alert"]'))
      .map((a) => a.textContent.trim()).join(' | '));
    if (alerts) parts.push(`alerts=${JSON.stringify(alerts.slice(0, 600))}`);
  } catch (_) { /* page gone */ }
  try {
    const main = await page.evaluate(() => (document.querySelector('main') || document.body || {}).innerText || '');
    parts.push(`main=${JSON.stringify(main.slice(0, 600))}`);
  } catch (_) { /* page gone */ }
  if (browserLog.length) parts.push(`browser log:\n  ${browserLog.slice(-10).join('\n  ')}`);
  return parts.join('\n  ');
}

async function waitFor(fnInPage, arg, what, timeout = STEP_TIMEOUT - 500) {
  try {
    await page.waitForFunction(fnInPage, arg, { timeout, polling: 100 });
  } catch (e) {
    const msg = typeof what === 'function' ? await what() : what;
    throw new Error(`${msg}\n  ${await diag()}`);
  }
}

async function goto(pathname) {
  const res = await page.goto(`${base}${pathname}`, { waitUntil: 'load' });
  if (!res) throw new Error(`no response for ${pathname}`);
  if (!res.ok()) throw new Error(`${pathname} -> HTTP ${res.status()}`);
  return res;
}

async function screenshot(name) {
  if (!SCREENSHOT_DIR) return;
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `ui-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`     screenshot written to ${file}`);
}

// Text a page should never show: a value the script failed to render ("null",
// "undefined", "NaN", "[object Object]") as a text node of its own or inside one.
async function noStrayText(where) {
  const stray = await page.evaluate(() => {
    const out = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      if (n.parentElement && n.parentElement.closest('script, style, template, noscript')) continue;
      const t = n.textContent.trim();
      if (/^(null|undefined|NaN)$/.test(t) || /\[object Object\]|\bundefined\b/.test(t)) {
        out.push(`${JSON.stringify(t.slice(0, 60))} in <${n.parentElement ? n.parentElement.tagName.toLowerCase() : '?'}>`);
      }
    }
    return out;
  });
  if (stray.length) throw new Error(`${where} shows stray text: ${stray.join('; ')}`);
}

// A request from node with the downloaded token, as mesheryctl sends it.
async function apiFetch(pathname, init = {}) {
  const headers = {
    Authorization: `Bearer ${auth.token}`,
    Cookie: `meshery-provider=${providerName}`,
    ...(init.headers || {}),
  };
  return fetch(`${base}${pathname}`, { ...init, headers });
}

async function json(res, what) {
  const text = await res.text();
  let body;
  try { body = JSON.parse(text); } catch (_) { throw new Error(`${what}: not JSON (HTTP ${res.status}): ${text.slice(0, 300)}`); }
  return body;
}

function decodeJwtPart(part) {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

function run(args, env) {
  const r = spawnSync(MESHERYCTL, args, { env, encoding: 'utf8', timeout: 12000, stdio: ['ignore', 'pipe', 'pipe'] });
  const shown = `mesheryctl ${args.join(' ')}`;
  if (r.error) throw new Error(`${shown}: ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(`${shown} exited ${r.status ?? r.signal}\n  stdout: ${r.stdout.trim()}\n  stderr: ${r.stderr.trim()}`);
  }
  return r;
}

let signedOutAt = Infinity; // where the browser log stood when sign-out began
let user;          // GET /api/user as the signed-in browser sees it
let auth;          // the downloaded auth.json
let authFile;      // where it was saved
const tmpDirs = [];
function tmpDir() {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'meshery-ui-'));
  tmpDirs.push(d);
  return d;
}

try {
  ({ browser, context, page } = await launch({ log: browserLog, stepTimeout: STEP_TIMEOUT, contextOptions: { acceptDownloads: true } }));

  await step('a', `sign in through the chooser at provider ${providerName}`, async () => {
    await goto('/provider');
    const link = page.getByRole('link', { name: providerName, exact: true });
    if (await link.count() !== 1) {
      const links = await page.$$eval('a', (as) => as.map((a) => `${a.textContent} -> ${a.getAttribute('href')}`));
      throw new Error(`/provider has no single link named ${JSON.stringify(providerName)}; links: ${JSON.stringify(links)}`);
    }
    await link.click();
    try {
      await page.waitForSelector('#username', { timeout: STEP_TIMEOUT - 3000 });
    } catch (_) {
      throw new Error(`the provider's sign-in form (#username) never appeared\n  ${await diag()}`);
    }
    await page.fill('#username', USER);
    await page.fill('#password', PASSWORD);
    await page.click('#signin');
    try {
      await page.waitForURL((u) => u.origin === baseOrigin && u.pathname === '/', { timeout: STEP_TIMEOUT - 4000 });
    } catch (_) {
      throw new Error(`after sign-in the browser did not come back to ${base}/\n  ${await diag()}`);
    }
  });

  await step('b', 'the dashboard shows the signed-in user', async () => {
    const url = new URL(page.url());
    if (url.origin !== baseOrigin || url.pathname !== '/') throw new Error(`browser is at ${page.url()}, expected ${base}/`);
    const r = await page.evaluate(async () => {
      const res = await fetch('/api/user', { credentials: 'same-origin' });
      return { status: res.status, text: await res.text() };
    });
    if (r.status !== 200) throw new Error(`GET /api/user in the page -> HTTP ${r.status}: ${r.text.slice(0, 300)}`);
    user = JSON.parse(r.text);
    if (user.userName !== USER) throw new Error(`/api/user says userName ${JSON.stringify(user.userName)}, expected ${JSON.stringify(USER)}`);
    if (String(user.provider).toLowerCase() !== providerName.toLowerCase()) {
      throw new Error(`/api/user says provider ${JSON.stringify(user.provider)}, expected ${JSON.stringify(providerName)}`);
    }
    await waitFor((name) => {
      const main = document.querySelector('main');
      const t = main ? main.innerText : '';
      return t.includes(name) && !!document.querySelector('#greeting');
    }, user.userName, `the dashboard never showed ${JSON.stringify(user.userName)}`);
    const body = await page.evaluate(() => document.body.innerText);
    if (body.includes('Not signed in')) throw new Error(`the dashboard says "Not signed in"\n  ${await diag()}`);
    const h1 = await page.locator('h1').count();
    if (h1 !== 1) throw new Error(`the dashboard has ${h1} h1 elements, expected 1`);
    const current = await page.getAttribute('nav a[href="/"]', 'aria-current');
    if (current !== 'page') throw new Error(`the Dashboard nav link has aria-current=${JSON.stringify(current)}, expected "page"`);
    const label = (await page.getAttribute('#avatar', 'aria-label')) || '';
    if (!label.includes(user.userName)) throw new Error(`#avatar is labelled ${JSON.stringify(label)}; it should name ${user.userName}`);
    await noStrayText('the dashboard');
    await screenshot('b-dashboard');
  }, ['a']);

  await step('c', 'the avatar menu opens with Enter, moves with the arrows, Home and End, and closes with Escape', async () => {
    await page.focus('#avatar');
    await page.keyboard.press('Enter');
    await waitFor(() => {
      const m = document.getElementById('user-menu');
      return m && !m.hidden && m.getClientRects().length > 0
        && document.getElementById('avatar').getAttribute('aria-expanded') === 'true';
    }, null, 'Enter on #avatar did not show #user-menu with aria-expanded=true');
    const menuText = (await page.locator('#user-menu').innerText()) || '';
    if (!user.email) throw new Error('/api/user has no email; the provider was started with one');
    if (!menuText.includes(user.email)) throw new Error(`#user-menu does not show the email ${user.email}: ${JSON.stringify(menuText)}`);
    const first = await page.evaluate(() => document.activeElement && document.activeElement.getAttribute('role'));
    if (first !== 'menuitem') throw new Error(`after opening, focus is on ${JSON.stringify(first)}, expected a menuitem`);
    await page.keyboard.press('ArrowDown');
    const second = await page.evaluate(() => document.activeElement && (document.activeElement.textContent || '').trim());
    if (second !== 'Show token') throw new Error(`ArrowDown moved focus to ${JSON.stringify(second)}, expected "Show token"`);
    for (const [key, expected] of [['End', 'Sign out'], ['Home', 'Get Token'], ['ArrowUp', 'Sign out'], ['ArrowDown', 'Get Token']]) {
      await page.keyboard.press(key);
      const at = await page.evaluate(() => document.activeElement && (document.activeElement.textContent || '').trim());
      if (at !== expected) throw new Error(`${key} in the menu moved focus to ${JSON.stringify(at)}, expected ${JSON.stringify(expected)}`);
    }
    await page.keyboard.press('Escape');
    await waitFor(() => {
      const m = document.getElementById('user-menu');
      return m && (m.hidden || m.getClientRects().length === 0)
        && document.getElementById('avatar').getAttribute('aria-expanded') === 'false'
        && document.activeElement === document.getElementById('avatar');
    }, null, 'Escape did not close #user-menu and return focus to #avatar');
  }, ['b']);

  await step('d', '"Get Token" downloads auth.json with the provider and a live token', async () => {
    await page.click('#avatar');
    await page.locator('#get-token').waitFor({ state: 'visible' });
    const [download] = await Promise.all([
      page.waitForEvent('download', { timeout: STEP_TIMEOUT - 2000 }),
      page.click('#get-token'),
    ]);
    if (download.suggestedFilename() !== 'auth.json') {
      throw new Error(`the download is named ${JSON.stringify(download.suggestedFilename())}, expected auth.json`);
    }
    authFile = path.join(tmpDir(), 'auth.json');
    await download.saveAs(authFile);
    const text = fs.readFileSync(authFile, 'utf8');
    try { auth = JSON.parse(text); } catch (e) { throw new Error(`auth.json is not JSON: ${text.slice(0, 200)}`); }
    const keys = Object.keys(auth).sort();
    if (JSON.stringify(keys) !== JSON.stringify(['meshery-provider', 'token'])) {
      throw new Error(`auth.json has keys ${JSON.stringify(keys)}, expected exactly meshery-provider and token`);
    }
    if (auth['meshery-provider'] !== providerName) {
      throw new Error(`auth.json names provider ${JSON.stringify(auth['meshery-provider'])}, expected ${JSON.stringify(providerName)}`);
    }
    const parts = String(auth.token).split('.');
    if (parts.length !== 3 || !parts.every((p) => /^[A-Za-z0-9_-]+$/.test(p))) {
      throw new Error(`the token is not a JWT (three base64url parts; ${String(auth.token).length} characters)`);
    }
    const claims = decodeJwtPart(parts[1]);
    if (typeof claims.sub !== 'string' || !claims.sub) throw new Error(`the token has no sub claim: ${JSON.stringify(Object.keys(claims))}`);
    if (typeof claims.exp !== 'number' || claims.exp <= Date.now() / 1000) {
      throw new Error(`the token's exp ${claims.exp} is not in the future`);
    }
    const menuHidden = await page.evaluate(() => document.getElementById('user-menu').hidden);
    if (!menuHidden) throw new Error('#user-menu stayed open after Get Token');
  }, ['b']);

  const cliHome = tmpDir();
  await step('e', 'mesheryctl logs in with the downloaded auth.json and reports the user', async () => {
    if (!fs.existsSync(MESHERYCTL)) throw new Error(`no mesheryctl at ${MESHERYCTL} (set MESHERYCTL)`);
    const env = { ...process.env, HOME: cliHome, MESHERY_SERVER: base };
    delete env.MESHERY_CA_FILE;
    run(['system', 'login', '--token-file', authFile], env);
    const status = run(['system', 'status'], env);
    if (!status.stdout.includes(user.userName)) {
      throw new Error(`mesheryctl system status does not name ${user.userName}:\n${status.stdout}`);
    }
    if (!status.stdout.includes(providerName)) {
      throw new Error(`mesheryctl system status does not name provider ${providerName}:\n${status.stdout}`);
    }
    const saved = path.join(cliHome, '.meshery', 'auth.json');
    if (!fs.existsSync(saved)) throw new Error(`${saved} was not written`);
    const mode = fs.statSync(saved).mode & 0o777;
    if (mode !== 0o600) throw new Error(`${saved} has mode ${mode.toString(8)}, expected 600`);
    const stored = JSON.parse(fs.readFileSync(saved, 'utf8'));
    if (stored.token !== auth.token || stored['meshery-provider'] !== auth['meshery-provider']) {
      throw new Error(`${saved} differs from the downloaded auth.json`);
    }
  }, ['d'], SLOW_STEP_TIMEOUT);

  await step('f', '/token shows the same token', async () => {
    await goto('/token');
    await waitFor(() => {
      const t = document.getElementById('token-text');
      return t && t.value.length > 0;
    }, null, '#token-text never got a value');
    const value = await page.inputValue('#token-text');
    if (value !== auth.token) throw new Error('#token-text differs from the downloaded token');
    const readonly = await page.evaluate(() => document.getElementById('token-text').readOnly);
    if (!readonly) throw new Error('#token-text is not read-only');
    const labelled = await page.getByLabel('Token', { exact: true }).count();
    if (labelled !== 1) throw new Error('#token-text has no label "Token"');
    const text = await page.evaluate(() => document.querySelector('main').innerText);
    for (const needle of ['mesheryctl system login --headless --paste', 'mesheryctl system login --token-file auth.json']) {
      if (!text.includes(needle)) throw new Error(`/token does not mention ${JSON.stringify(needle)}`);
    }
    await noStrayText('/token');
    await screenshot('f-token');
  }, ['d']);

  await step('g', 'a new event appears on /events without a reload', async () => {
    await goto('/events');
    await waitFor(() => {
      const s = document.getElementById('events-status');
      return !!document.getElementById('events') && s && s.dataset.state === 'open';
    }, null, '/events never connected its live stream (#events-status data-state=open)');
    const live = await page.getAttribute('#events', 'aria-live');
    if (live !== 'polite') throw new Error(`#events has aria-live=${JSON.stringify(live)}, expected "polite"`);
    await page.evaluate(() => { window.__uiTestMarker = 'same page'; });
    const description = `ui test event ${suffix}`;
    const res = await apiFetch('/api/system/events', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ category: 'ui-test', action: 'create', severity: 'informational', description }),
    });
    const ev = await json(res, 'POST /api/system/events');
    if (res.status !== 201) throw new Error(`POST /api/system/events -> HTTP ${res.status}: ${JSON.stringify(ev).slice(0, 300)}`);
    await waitFor(([id, desc]) => {
      const row = Array.from(document.querySelectorAll('#events [data-id]')).find((r) => r.dataset.id === id);
      return !!row && row.textContent.includes(desc);
    }, [ev.id, description], `no row with data-id ${ev.id} in #events within ${EVENT_WAIT / 1000} s`, EVENT_WAIT);
    const marker = await page.evaluate(() => window.__uiTestMarker);
    if (marker !== 'same page') throw new Error('the page reloaded instead of adding the event live');
    await noStrayText('/events');
    await screenshot('g-events');
  }, ['d']);

  const perfName = `ui-test-${suffix}`;
  await step('h', 'a load-test result is listed on /performance and charted', async () => {
    const q = new URLSearchParams({ name: perfName, url: `${base}/healthz/live`, t: '1s', c: '2', qps: '50' });
    const res = await apiFetch(`/api/perf/profile?${q}`, { headers: { Accept: 'text/event-stream' } });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`GET /api/perf/profile -> HTTP ${res.status}: ${text.slice(0, 300)}`);
    const frames = text.split(/\r?\n/).filter((l) => l.startsWith('data:'))
      .map((l) => { try { return JSON.parse(l.slice(5)); } catch (_) { return null; } }).filter(Boolean);
    const bad = frames.find((f) => f.status === 'error');
    if (bad) throw new Error(`the load test failed: ${bad.message}`);
    const done = frames.find((f) => f.status === 'success' && f.result);
    if (!done) throw new Error(`the load test stream ended without a result (${frames.length} frames): ${text.slice(-300)}`);
    const p99 = (done.result.runnerResults.DurationHistogram.Percentiles || []).find((p) => p.Percentile === 99);

    await goto('/performance');
    const row = page.locator('#results tbody tr', { hasText: perfName });
    try {
      await row.first().waitFor({ state: 'visible', timeout: STEP_TIMEOUT - 2000 });
    } catch (_) {
      throw new Error(`/performance has no row for ${perfName}\n  ${await diag()}`);
    }
    if (await row.count() !== 1) throw new Error(`/performance has ${await row.count()} rows for ${perfName}`);
    const shown = ((await row.locator('[data-col="p99"]').textContent()) || '').trim();
    if (!/^\d+(\.\d+)?$/.test(shown)) throw new Error(`the p99 cell shows ${JSON.stringify(shown)}, expected a number of ms`);
    if (!p99) throw new Error('the stored result has no p99 percentile');
    if (Math.abs(Number(shown) - p99.Value * 1000) > Math.max(0.01, p99.Value * 1000 * 0.01)) {
      throw new Error(`the p99 cell shows ${shown} ms, the result says ${p99.Value * 1000} ms`);
    }
    await row.getByRole('button', { name: /^Chart/ }).click();
    await waitFor(() => {
      const svg = document.getElementById('latency-chart');
      return !!svg && svg.querySelectorAll('rect.bar').length > 0;
    }, null, '#latency-chart never showed a bar');
    const chart = await page.evaluate(() => {
      const svg = document.getElementById('latency-chart');
      return {
        role: svg.getAttribute('role'),
        label: svg.getAttribute('aria-label') || '',
        lines: svg.querySelectorAll('line.pline').length,
        figure: !!svg.closest('figure') && !!svg.closest('figure').querySelector('figcaption'),
      };
    });
    if (chart.role !== 'img') throw new Error(`#latency-chart has role ${JSON.stringify(chart.role)}, expected img`);
    if (!chart.label.includes('p99')) throw new Error(`#latency-chart's aria-label does not summarise p99: ${JSON.stringify(chart.label)}`);
    if (chart.lines < 1) throw new Error('#latency-chart has no percentile line');
    if (!chart.figure) throw new Error('#latency-chart is not inside a figure with a figcaption');
    await noStrayText('/performance');
    await screenshot('h-performance');
  }, ['d'], SLOW_STEP_TIMEOUT);

  const designName = `ui-design-${suffix}`;
  await step('i', 'a saved design is listed on /designs with its download link', async () => {
    const patternFile = [
      `name: ${designName}`,
      'components:',
      '  - name: ui-namespace',
      '    kind: Namespace',
      '    apiVersion: v1',
      '    metadata:',
      `      name: ui-${suffix}`,
      '',
    ].join('\n');
    const res = await apiFetch('/api/pattern', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ patternFile }),
    });
    const answer = await json(res, 'POST /api/pattern');
    if (res.status !== 201) throw new Error(`POST /api/pattern -> HTTP ${res.status}: ${JSON.stringify(answer).slice(0, 400)}`);
    // A list holding the design, as Meshery answers.
    const saved = answer[0];
    await goto('/designs');
    const row = page.locator('#designs tbody tr', { hasText: designName });
    try {
      await row.first().waitFor({ state: 'visible', timeout: STEP_TIMEOUT - 3000 });
    } catch (_) {
      throw new Error(`/designs has no row for ${designName}\n  ${await diag()}`);
    }
    await noStrayText('/designs');
    const href = await row.locator('a').first().getAttribute('href');
    const expected = `/api/pattern/download/${encodeURIComponent(saved.id)}`;
    if (href !== expected) throw new Error(`the download link is ${JSON.stringify(href)}, expected ${JSON.stringify(expected)}`);
    const yaml = await page.evaluate(async (u) => {
      const r = await fetch(u, { credentials: 'same-origin' });
      return { status: r.status, text: await r.text() };
    }, href);
    if (yaml.status !== 200 || !yaml.text.includes(designName)) {
      throw new Error(`GET ${href} -> HTTP ${yaml.status}: ${yaml.text.slice(0, 200)}`);
    }
  }, ['d']);

  await step('i2', 'markup in a design name shows as text, and /designs pages through ?page=N', async () => {
    const marker = `ui-xss-${suffix}`;
    const hostile = `<img src=x onerror="window.__xss=1">${marker}`;
    const save = async (name) => {
      const patternFile = `name: ${JSON.stringify(name)}\ncomponents: []\n`;
      const res = await apiFetch('/api/pattern', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ patternFile }),
      });
      const body = await json(res, 'POST /api/pattern');
      if (res.status !== 201) throw new Error(`POST /api/pattern (${name}) -> HTTP ${res.status}: ${JSON.stringify(body).slice(0, 300)}`);
    };
    // More than one page of 25, the hostile one newest.
    for (let i = 0; i < 25; i++) await save(`ui-filler-${suffix}-${i}`);
    await save(hostile);
    const listed = await json(await apiFetch('/api/pattern?page=0&pagesize=25'), 'GET /api/pattern');
    const total = Number(listed.totalCount);
    if (!(total > 25)) throw new Error(`GET /api/pattern says totalCount ${listed.totalCount}, expected more than 25`);
    await goto('/designs');
    const row = page.locator('#designs tbody tr', { hasText: marker });
    try {
      await row.first().waitFor({ state: 'visible', timeout: 5000 });
    } catch (_) {
      throw new Error(`/designs has no row for ${marker}\n  ${await diag()}`);
    }
    const shown = ((await row.locator('th').textContent()) || '').trim();
    if (shown !== hostile) throw new Error(`the name cell shows ${JSON.stringify(shown)}, expected the markup as text`);
    const injected = await page.evaluate(() => ({ xss: window.__xss, imgs: document.querySelectorAll('#designs img').length }));
    if (injected.xss !== undefined || injected.imgs !== 0) throw new Error(`the design name was parsed as HTML: ${JSON.stringify(injected)}`);
    const rows = await page.locator('#designs tbody tr').count();
    if (rows !== 25) throw new Error(`page 1 of /designs has ${rows} rows, expected 25`);
    const pages = Math.ceil(total / 25);
    const navText = ((await page.locator('nav.pager').textContent()) || '').replace(/\s+/g, ' ');
    if (!navText.includes(`Page 1 of ${pages}`)) throw new Error(`the pager says ${JSON.stringify(navText)}, expected "Page 1 of ${pages}"`);
    if (await page.locator('nav.pager a[rel="prev"]').count() !== 0) throw new Error('page 1 offers a Previous link');
    await page.locator('nav.pager a[rel="next"]').click();
    await page.waitForURL((u) => u.search === '?page=1', { timeout: 5000 });
    await waitFor((n) => {
      const nav = document.querySelector('nav.pager');
      return !!nav && nav.textContent.replace(/\s+/g, ' ').includes(`Page 2 of ${n}`);
    }, pages, `/designs?page=1 never said "Page 2 of ${pages}"`);
    const second = await page.locator('#designs tbody tr').count();
    const expected = Math.min(25, total - 25);
    if (second !== expected) throw new Error(`page 2 of /designs has ${second} rows, expected ${expected}`);
    if (await page.locator('#designs tbody tr', { hasText: marker }).count() !== 0) {
      throw new Error('the newest design is listed again on page 2');
    }
  }, ['d']);

  await step('l', 'a kubeconfig uploaded elsewhere shows on /clusters as a connected cluster, live', async () => {
    const file = process.env.KUBECONFIG_FILE;
    if (!file) throw new Error('KUBECONFIG_FILE is not set (cargo xtask test starts a test API server)');
    await goto('/clusters');
    await waitFor(() => {
      const s = document.querySelector('#clusters-status');
      return !!s && s.dataset.state === 'open';
    }, null, '/clusters never connected its live updates');
    const res = await apiFetch('/api/system/kubernetes', {
      method: 'POST',
      headers: { 'Content-Type': 'application/yaml' },
      body: fs.readFileSync(file, 'utf8'),
    });
    if (res.status !== 200) throw new Error(`POST /api/system/kubernetes -> HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`);
    await waitFor(() => {
      const row = document.querySelector('#connections tbody tr[data-status="connected"]');
      const ns = document.querySelector('#kind-counts tr[data-kind="Namespace"] td.num');
      return !!row && row.textContent.includes('ui-cluster') && !!ns && Number(ns.textContent) >= 2;
    }, null, '/clusters never showed ui-cluster connected with its namespaces');
    await noStrayText('/clusters');
    await screenshot('clusters');
  }, ['d']);

  await step('m', 'Deploy on /designs applies a design, /clusters lists its object, Undeploy deletes it', async () => {
    const deployName = `ui-deploy-${suffix}`;
    const patternFile = [
      `name: ${deployName}`,
      'components:',
      '  - name: settings',
      '    kind: ConfigMap',
      '    apiVersion: v1',
      '    metadata:',
      `      name: ${deployName}`,
      '      namespace: default',
      '    data:',
      '      greeting: hello',
      '',
    ].join('\n');
    const res = await apiFetch('/api/pattern', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ patternFile }),
    });
    if (res.status !== 201) throw new Error(`POST /api/pattern -> HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`);
    await goto('/designs');
    const row = page.locator('#designs tbody tr', { hasText: deployName });
    await row.first().waitFor({ state: 'visible', timeout: 5000 });
    await row.locator('button[data-action="deploy"]').click();
    await waitFor(() => {
      const cells = Array.from(document.querySelectorAll('#deploy-results tbody tr'));
      return cells.length === 1 && cells[0].dataset.status === 'applied';
    }, null, 'the deploy result never showed the config map applied');
    await screenshot('deployed');
    await goto('/clusters');
    await waitFor((n) => {
      const objects = Array.from(document.querySelectorAll('#objects tbody tr[data-kind="ConfigMap"]'));
      return objects.some((r) => r.textContent.includes(n));
    }, deployName, `/clusters never listed the config map ${deployName}`);
    // Maintenance from the page, shown live; then in use again.
    await page.locator('#connections tbody tr', { hasText: 'ui-cluster' }).locator('button').click();
    await waitFor(() => !!document.querySelector('#connections tbody tr[data-status="maintenance"]'), null,
      'the connection never showed maintenance');
    await page.locator('#connections tbody tr', { hasText: 'ui-cluster' }).locator('button').click();
    await waitFor(() => !!document.querySelector('#connections tbody tr[data-status="connected"]'), null,
      'the connection never came back to connected');
    await goto('/designs');
    await page.locator('#designs tbody tr', { hasText: deployName }).locator('button[data-action="undeploy"]').click();
    await waitFor(() => {
      const cells = Array.from(document.querySelectorAll('#deploy-results tbody tr'));
      return cells.length === 1 && cells[0].dataset.status === 'deleted';
    }, null, 'the undeploy result never showed the config map deleted');
    await noStrayText('/designs');
  }, ['l']);

  await step('n', 'a workspace and an environment made on their pages hold a design, an environment and a connection', async () => {
    const wsName = `ui-ws-${suffix}`;
    const envName = `ui-env-${suffix}`;
    const team = `${USER}'s team`;
    // In the user's own organization (the shared one only lets them look).
    const pick = async (pathname) => {
      await goto(pathname);
      // The page draws its picker and form together, once it has the organizations.
      await page.waitForSelector('#environment-form, #workspace-form', { timeout: 5000 });
      if (await page.locator('#org-select').count()) {
        await page.selectOption('#org-select', { label: team });
        await page.waitForURL(/[?&]org=/, { timeout: 5000 });
        await page.waitForSelector('#environment-form, #workspace-form', { timeout: 5000 });
      }
    };
    await pick('/environments');
    await page.fill('#new-name', envName);
    await page.fill('#new-description', 'made in the browser');
    await page.click('#environment-form button[type="submit"]');
    const envRow = page.locator('#environments tbody tr', { hasText: envName });
    try {
      await envRow.first().waitFor({ state: 'visible', timeout: 5000 });
    } catch (_) {
      throw new Error(`/environments never listed ${envName}\n  ${await diag()}`);
    }
    await envRow.locator('a').click();
    await page.waitForSelector('#connections-choice', { timeout: 5000 });
    await page.selectOption('#connections-choice', { label: 'ui-cluster' });
    await page.click('#connections-add');
    await waitFor(() => {
      const row = document.querySelector('#connections-members tbody tr');
      return !!row && row.textContent.includes('ui-cluster');
    }, null, 'the environment never listed ui-cluster');
    await noStrayText('/environments?id=');

    await pick('/workspaces');
    await page.fill('#new-name', wsName);
    await page.click('#workspace-form button[type="submit"]');
    const wsRow = page.locator('#workspaces tbody tr', { hasText: wsName });
    await wsRow.first().waitFor({ state: 'visible', timeout: 5000 });
    await wsRow.locator('a').click();
    await page.waitForSelector('#environments-choice', { timeout: 5000 });
    await page.selectOption('#environments-choice', { label: envName });
    await page.click('#environments-add');
    await waitFor((n) => {
      const row = document.querySelector('#environments-members tbody tr');
      return !!row && row.textContent.includes(n);
    }, envName, `the workspace never listed ${envName}`);
    await page.selectOption('#designs-choice', { label: designName });
    await page.click('#designs-add');
    await waitFor((n) => {
      const rows = Array.from(document.querySelectorAll('#designs-members tbody tr'));
      return rows.some((r) => r.textContent.includes(n));
    }, designName, `the workspace never listed ${designName}`);
    // Rename, then remove the environment again.
    await page.fill('#edit-name', `${wsName}-renamed`);
    await page.click('#edit-form button[type="submit"]');
    await waitFor((n) => document.querySelector('#page-title').textContent === n, `${wsName}-renamed`,
      'the workspace title never showed the new name');
    await page.locator('#environments-members tbody tr', { hasText: envName }).locator('button').click();
    await waitFor(() => !!document.querySelector('#environments-empty'), null, 'the environment was never removed');
    await noStrayText('/workspaces?id=');
    await screenshot('workspace');

    // Delete from the list (after confirming).
    await pick('/workspaces');
    page.once('dialog', (d) => d.accept());
    await page.locator('#workspaces tbody tr', { hasText: `${wsName}-renamed` }).locator('button[data-action="delete"]').click();
    await waitFor((n) => !Array.from(document.querySelectorAll('#workspaces tbody tr')).some((r) => r.textContent.includes(n)),
      `${wsName}-renamed`, 'the workspace was never deleted');
    const org = new URL(page.url()).searchParams.get('org') || '';
    const gone = await apiFetch(`/api/workspaces?orgId=${encodeURIComponent(org)}&search=${wsName}`);
    const left = await json(gone, 'GET /api/workspaces');
    if (gone.status !== 200 || left.totalCount !== 0) throw new Error(`after delete, GET /api/workspaces -> HTTP ${gone.status}: ${JSON.stringify(left).slice(0, 300)}`);
  }, ['i', 'l']);

  await step('i3', 'signing out on another client stops /events live updates with the reason', async () => {
    signedOutAt = browserLog.length;
    await goto('/events');
    await waitFor(() => {
      const s = document.getElementById('events-status');
      return !!s && s.dataset.state === 'open';
    }, null, '/events never connected its live stream (#events-status data-state=open)');
    // mesheryctl, with the token "Get Token" gave, signs the same session out.
    const out = await apiFetch('/user/logout', { redirect: 'manual' });
    if (out.status !== 303) throw new Error(`GET /user/logout with the token -> HTTP ${out.status}`);
    await waitFor(() => {
      const s = document.getElementById('events-status');
      return !!s && s.dataset.state === 'closed' && /revoked/.test(s.textContent) && /Sign in again/.test(s.textContent);
    }, null, '/events did not say its live updates stopped because the token was revoked');
    await screenshot('i3-session-ended');
  }, ['d', 'g']);

  await step('j', 'Sign out in the avatar menu ends the session', async () => {
    if (signedOutAt === Infinity) signedOutAt = browserLog.length;
    // Still on /events, whose menu was drawn while signed in (step i3 revoked the token).
    if (!(await page.locator('#avatar').isVisible())) await goto('/');
    await page.locator('#avatar').waitFor({ state: 'visible' });
    await page.click('#avatar');
    await page.getByRole('menuitem', { name: 'Sign out' }).click();
    try {
      await page.waitForURL((u) => u.origin === baseOrigin && u.pathname === '/provider', { timeout: STEP_TIMEOUT - 5000 });
    } catch (_) {
      throw new Error(`Sign out did not land at /provider\n  ${await diag()}`);
    }
    const token = (await context.cookies(base)).find((c) => c.name === 'token' && c.value);
    if (token) throw new Error('the token cookie is still set after sign-out');
    // The browser's session is gone: without cookies the server may answer with its Local
    // provider, whose user is not ours; with the provider still named, it must be 401.
    await goto('/');
    const after = await page.evaluate(async () => {
      const res = await fetch('/api/user', { credentials: 'same-origin' });
      return { status: res.status, text: await res.text() };
    });
    if (after.status === 200) {
      const who = JSON.parse(after.text);
      if (who.userName === user.userName && String(who.provider).toLowerCase() === providerName.toLowerCase()) {
        throw new Error(`after sign-out /api/user still answers ${user.userName} at ${providerName}`);
      }
    } else if (after.status !== 401) {
      throw new Error(`after sign-out /api/user -> HTTP ${after.status}: ${after.text.slice(0, 200)}`);
    }
    await context.addCookies([{ name: 'meshery-provider', value: providerName, url: base }]);
    await goto('/');
    await waitFor(() => {
      const h1 = document.querySelector('main h1');
      return !!h1 && h1.textContent.trim() === 'Not signed in'
        && !!document.querySelector('main a[href="/provider"]');
    }, null, '/ did not show "Not signed in" with a link to /provider');
    const avatarShown = await page.evaluate(() => {
      const a = document.getElementById('account');
      return !!a && !a.hidden;
    });
    if (avatarShown) throw new Error('the avatar menu is shown while not signed in');
    const res = await apiFetch('/api/user');
    if (res.status !== 401) throw new Error(`the signed-out token still works: GET /api/user -> HTTP ${res.status}`);
    await noStrayText('the signed-out page');
    await screenshot('j-signed-out');
  }, ['b', 'd'], STEP_TIMEOUT);

  await step('k', 'no console errors, script errors or policy violations in the pages', async () => {
    // After signing out, the browser logs the 401 it was meant to get; nothing else counts as expected.
    const bad = browserLog.filter((l, i) => (l.startsWith('pageerror') || l.startsWith('console.error')
      || /Content Security Policy|Refused to/i.test(l))
      && !(i >= signedOutAt && /Failed to load resource.*\b401\b/.test(l)));
    if (bad.length) throw new Error(`browser reported:\n  ${bad.slice(-10).join('\n  ')}`);
  }, ['b', 'f', 'g', 'h', 'i', 'i2']);
} finally {
  if (browser) await browser.close().catch(() => {});
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
}

finish();
