// What the browser suites share: lettered steps with dependencies and time limits, and
// Debian's Chromium launched headless through playwright-core with its log captured.
import { chromium } from 'playwright-core';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000} s: ${what}`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

// `step(letter, title, fn, deps, timeout)` runs one test unless a step it depends on
// failed; `finish()` prints `N passed, M failed` and exits 1 on any failure.
export function steps(defaultTimeout) {
  let passed = 0;
  let failed = 0;
  const failedSteps = new Set();
  async function step(letter, title, fn, deps = [], timeout = defaultTimeout) {
    const missing = deps.filter((d) => failedSteps.has(d));
    if (missing.length) {
      failed++;
      failedSteps.add(letter);
      console.log(`FAIL ${letter}. ${title}: skipped because step(s) ${missing.join(', ')} failed`);
      return;
    }
    try {
      await withTimeout(Promise.resolve().then(fn), timeout, title);
      passed++;
      console.log(`ok   ${letter}. ${title}`);
    } catch (e) {
      failed++;
      failedSteps.add(letter);
      console.log(`FAIL ${letter}. ${title}: ${e && e.message ? e.message : e}`);
    }
  }
  function finish() {
    console.log(`${passed} passed, ${failed} failed`);
    process.exit(failed > 0 ? 1 : 0);
  }
  return { step, finish };
}

// Chromium (CHROMIUM, default /usr/bin/chromium) with one page whose console errors,
// warnings and uncaught exceptions go to `log`. Exits the suite when it cannot start.
export async function launch({ log, stepTimeout, contextOptions = {} }) {
  try {
    const browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...contextOptions });
    const page = await context.newPage();
    page.setDefaultTimeout(stepTimeout);
    // Failed loads name their URL (the console message does not).
    page.on('console', (m) => {
      if (m.type() !== 'error' && m.type() !== 'warning') return;
      const where = m.location() && m.location().url ? ` (${m.location().url})` : '';
      log.push(`console.${m.type()}: ${m.text()}${where}`);
    });
    page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
    return { browser, context, page };
  } catch (e) {
    console.log(`FAIL browser launch: ${e && e.message ? e.message : e}`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
}
