// GraphQL-over-HTTP compliance audit using the `graphql-http` audit suite.
//
// Usage: node tests/js/graphql-http-audit.mjs http://127.0.0.1:PORT/api/system/graphql/query
//
// Prints one line per audit: `<status> <id> <name>` (status is ok, notice,
// warn or error; notice = failing MAY, warn = failing SHOULD, error = failing
// MUST), followed by the reason and a short response excerpt for anything not
// ok. Exits 1 if any audit has status `error` (or threw). Final line:
// `N passed, M failed` where passed = ok + notice + warn, failed = error.
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node graphql-http-audit.mjs <graphql-endpoint-url>');
  process.exit(2);
}

async function describeResponse(res) {
  if (!res || typeof res !== 'object') return '';
  let out = '';
  try {
    out += `status ${res.status}`;
    const ct = res.headers && typeof res.headers.get === 'function' ? res.headers.get('content-type') : null;
    if (ct) out += `, content-type ${ct}`;
  } catch (_) { /* ignore */ }
  try {
    // The body may already have been consumed by the audit; reading twice throws.
    if (!res.bodyUsed && typeof res.text === 'function') {
      let text = await res.text();
      if (text.length > 500) text = text.slice(0, 500) + '...';
      out += `, body ${JSON.stringify(text)}`;
    } else {
      out += ', body already consumed';
    }
  } catch (e) {
    out += `, body unreadable (${e && e.message ? e.message : e})`;
  }
  return out;
}

const audits = serverAudits({ url, fetchFn: fetch });
const counts = { ok: 0, notice: 0, warn: 0, error: 0 };

for (const audit of audits) {
  let result;
  try {
    result = await audit.fn();
  } catch (e) {
    // graphql-http throws only on fatal problems (e.g. network failure).
    result = { id: audit.id, name: audit.name, status: 'error', reason: `fatal: ${e && e.stack ? e.stack : e}` };
  }
  const status = ['ok', 'notice', 'warn', 'error'].includes(result.status) ? result.status : 'error';
  counts[status]++;
  console.log(`${status} ${audit.id} ${audit.name}`);
  if (status !== 'ok') {
    console.log(`    reason: ${result.reason}`);
    const resp = await describeResponse(result.response);
    if (resp) console.log(`    response: ${resp}`);
  }
}

const passed = counts.ok + counts.notice + counts.warn;
const failed = counts.error;
if (counts.warn || counts.notice) {
  console.log(`(${counts.warn} warnings, ${counts.notice} notices; allowed)`);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
