// Browser test of the GraphQL playground, driving Debian's Chromium with playwright-core.
//
// Usage: node tests/js/playground.mjs http://127.0.0.1:PORT
// Env:   CHROMIUM   path to the browser (default /usr/bin/chromium)
//        SCREENSHOT path of a PNG to write after step e (optional)
//
// Each lettered step is one test; prints `N passed, M failed` and exits 1 on any failure.
import { launch, sleep, steps } from './harness.mjs';

const base = (process.argv[2] || '').replace(/\/+$/, '');
if (!base) {
  console.error('usage: node playground.mjs <baseUrl>');
  process.exit(2);
}
const STEP_TIMEOUT = 15000;
const VERSION_QUERY = 'query { version { build releaseChannel } }';
const SUB_QUERY = 'subscription { subscribeUserPrefs { anonymousUsageStats } }';

const browserLog = [];
const { step, finish } = steps(STEP_TIMEOUT);

let browser;
let page;

async function text(selector) {
  return (await page.locator(selector).textContent()) || '';
}

async function diag() {
  const parts = [];
  try { parts.push(`#status=${JSON.stringify((await text('#status')).trim())}`); } catch (_) { /* page gone */ }
  try { parts.push(`#result=${JSON.stringify((await text('#result')).slice(-800))}`); } catch (_) { /* page gone */ }
  if (browserLog.length) parts.push(`browser log:\n  ${browserLog.slice(-10).join('\n  ')}`);
  return parts.join('\n  ');
}

async function waitFor(fnInPage, arg, what) {
  try {
    await page.waitForFunction(fnInPage, arg, { timeout: STEP_TIMEOUT - 500, polling: 100 });
  } catch (e) {
    const msg = typeof what === 'function' ? await what() : what;
    throw new Error(`${msg}\n  ${await diag()}`);
  }
}

// Subscription entries are printed by the playground as `#<n> <json>`.
function subscriptionEntries(resultText) {
  return resultText.split(/^(?=#\d+ )/m).filter((e) => /^#\d+ /.test(e));
}

async function postPrefs(value) {
  const res = await fetch(`${base}/api/user/prefs`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ anonymousUsageStats: value }),
  });
  const body = await res.text();
  if (!res.ok) throw new Error(`POST /api/user/prefs -> HTTP ${res.status}: ${body.slice(0, 300)}`);
}

try {
  ({ browser, page } = await launch({ log: browserLog, stepTimeout: STEP_TIMEOUT }));

  await step('a', 'playground loads and the schema panel lists Query and Subscription', async () => {
    const res = await page.goto(`${base}/api/system/graphql/playground`, { waitUntil: 'load' });
    if (!res) throw new Error('no response for the playground page');
    if (!res.ok()) throw new Error(`playground page -> HTTP ${res.status()}`);
    const ct = res.headers()['content-type'] || '';
    if (!ct.includes('text/html')) throw new Error(`playground content-type is ${JSON.stringify(ct)}, expected text/html`);
    await waitFor(() => !!document.querySelector('#schema [data-type="Query"]')
      && !!document.querySelector('#schema [data-type="Subscription"]'), null,
    async () => 'schema panel never listed both Query and Subscription (introspection failed?)\n  schema panel: '
      + JSON.stringify(((await page.locator('#schema').textContent().catch(() => '')) || '').slice(0, 500)));
  });

  await step('b', 'a query runs over HTTP and shows the version', async () => {
    await page.fill('#query', VERSION_QUERY);
    await page.click('#run');
    await waitFor(() => (document.getElementById('result').textContent || '').includes('"build"'), null,
      '#result never contained "build"');
    const r = await text('#result');
    if (/^HTTP \d+/.test(r)) throw new Error(`query answered with an error status:\n${r.slice(0, 500)}`);
  }, ['a']);

  await step('c', 'a subscription connects over graphql-transport-ws', async () => {
    await page.fill('#query', SUB_QUERY);
    await page.click('#run');
    await waitFor(() => (document.getElementById('status').textContent || '').trim() === 'subscribed', null,
      '#status never became "subscribed"');
  }, ['a']);

  await step('d', 'preference updates arrive over the subscription', async () => {
    await sleep(300); // let any initial emission land before taking the baseline
    const baseline = subscriptionEntries(await text('#result')).length;
    const deadline = Date.now() + STEP_TIMEOUT - 1500;
    let value = false;
    for (;;) {
      await postPrefs(value);
      value = !value;
      const until = Math.min(Date.now() + 1500, deadline);
      while (Date.now() < until) {
        const entries = subscriptionEntries(await text('#result')).slice(baseline);
        if (entries.some((e) => e.includes('anonymousUsageStats'))) return;
        await sleep(100);
      }
      if (Date.now() >= deadline) {
        throw new Error(`no new #n entry with anonymousUsageStats after posting preferences (baseline ${baseline} entries)\n  ${await diag()}`);
      }
      const status = (await text('#status')).trim();
      if (status !== 'subscribed') throw new Error(`subscription ended while waiting (status ${JSON.stringify(status)})\n  ${await diag()}`);
    }
  }, ['c']);

  await step('e', 'Stop ends the subscription', async () => {
    await page.click('#stop');
    await waitFor(() => (document.getElementById('status').textContent || '').trim() === 'closed'
      && document.getElementById('stop').disabled, null, '#status did not become "closed" after Stop');
    if (process.env.SCREENSHOT) {
      await page.screenshot({ path: process.env.SCREENSHOT, fullPage: false });
      console.log(`     screenshot written to ${process.env.SCREENSHOT}`);
    }
  }, ['c']);

  await step('f', '/docs mentions the REST API and the GraphQL API', async () => {
    const res = await page.goto(`${base}/docs`, { waitUntil: 'load' });
    if (!res || !res.ok()) throw new Error(`/docs -> HTTP ${res ? res.status() : 'no response'}`);
    try {
      await page.waitForFunction(() => {
        const t = document.body ? document.body.innerText : '';
        return t.includes('REST API') && t.includes('GraphQL API');
      }, null, { timeout: STEP_TIMEOUT - 1000, polling: 200 });
    } catch (_) {
      const t = (await page.evaluate(() => (document.body ? document.body.innerText : ''))) || '';
      throw new Error(`/docs lacks ${['REST API', 'GraphQL API'].filter((s) => !t.includes(s)).join(' and ')}; page starts: ${JSON.stringify(t.slice(0, 300))}`);
    }
  });
} finally {
  if (browser) await browser.close().catch(() => {});
}

finish();
