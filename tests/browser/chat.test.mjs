// Headless-Chromium test of the gateway's demo chat page (GET /).
//
// Two people, alice and bob, open the page in separate browser contexts and
// join room "lobby". Checks: alice sees bob join, bob sees alice's room
// message, alice sees bob's direct message marked as a DM, and alice sees bob
// leave when his page closes.
//
// Usage: TOKENIM_URL=http://127.0.0.1:8080 node chat.test.mjs
// (tests/browser/run.sh builds and starts a gateway and does this.)
// Needs Debian's Chromium at /usr/bin/chromium and a gateway in development
// mode (GET /dev/token).

import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const BASE = process.env.TOKENIM_URL;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const STEP_TIMEOUT = 5_000;
const RUN_TIMEOUT = 60_000;
const RESULTS = fileURLToPath(new URL('./test-results/', import.meta.url));

if (!BASE) {
  console.error('FAIL: set TOKENIM_URL to the gateway, e.g. TOKENIM_URL=http://127.0.0.1:8080');
  process.exit(2);
}

let step = 'starting';
let browser;
const pages = {}; // name -> page, for diagnostics
const problems = []; // uncaught page errors: always a failure

const watchdog = setTimeout(() => {
  console.error(`FAIL: the whole run took longer than ${RUN_TIMEOUT / 1000} s (during: ${step})`);
  process.exit(1);
}, RUN_TIMEOUT);

async function openAs(user) {
  const context = await browser.newContext();
  const page = await context.newPage();
  pages[user] = page;
  page.on('pageerror', (err) => problems.push(`${user}: uncaught error in page: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') console.error(`  [${user} console] ${msg.text()}`);
  });
  step = `${user} opens the page`;
  await page.goto(BASE, { timeout: STEP_TIMEOUT });
  step = `${user} joins room lobby`;
  await page.fill('#name', user);
  await page.fill('#room', 'lobby');
  await page.click('#join');
  await page.locator('#status[data-state="joined"]').waitFor({ timeout: STEP_TIMEOUT });
  return { context, page };
}

async function main() {
  const started = Date.now();
  step = 'launching Chromium';
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    timeout: 20_000,
  });

  const alice = await openAs('alice');
  const bob = await openAs('bob');

  step = 'alice sees bob join (member list)';
  await alice.page.locator('#members li[data-user="bob"]').waitFor({ timeout: STEP_TIMEOUT });

  step = 'alice sends "hello from alice" and bob sees it from alice';
  await alice.page.fill('#text', 'hello from alice');
  await alice.page.press('#text', 'Enter');
  await bob.page
    .locator('#messages .msg[data-from="alice"]', { hasText: 'hello from alice' })
    .waitFor({ timeout: STEP_TIMEOUT });

  step = 'bob sends alice a direct message and alice sees it marked as a DM';
  await bob.page.fill('#dm-to', 'alice');
  await bob.page.fill('#dm-text', 'psst from bob');
  await bob.page.click('#dm-send');
  await alice.page
    .locator('#messages .msg.dm[data-from="bob"]', { hasText: 'psst from bob' })
    .waitFor({ timeout: STEP_TIMEOUT });

  step = 'bob closes his page and alice sees him leave';
  await bob.context.close();
  delete pages.bob;
  await alice.page.locator('#members li[data-user="bob"]').waitFor({ state: 'detached', timeout: STEP_TIMEOUT });
  await alice.page.locator('#messages .event[data-user="bob"]', { hasText: 'left' }).waitFor({ timeout: STEP_TIMEOUT });

  step = 'checking for page errors';
  if (problems.length) throw new Error(problems.join('; '));
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`PASS: browser chat test (join, members, room message, direct message, leave) against ${BASE} in ${secs} s`);
}

async function diagnose() {
  mkdirSync(RESULTS, { recursive: true });
  for (const [user, page] of Object.entries(pages)) {
    try {
      const status = await page.locator('#status').textContent({ timeout: 1_000 });
      const error = await page.locator('#error').textContent({ timeout: 1_000 });
      console.error(`  ${user}: status "${status}"${error ? `, error "${error}"` : ''}`);
      await page.screenshot({ path: `${RESULTS}${user}.png`, timeout: 2_000 });
    } catch (_) { /* the page is gone; nothing more to show */ }
  }
  if (problems.length) console.error(`  ${problems.join('\n  ')}`);
}

let code = 0;
try {
  await main();
} catch (err) {
  code = 1;
  console.error(`FAIL: ${step}: ${err.message.split('\n')[0]}`);
  await diagnose();
} finally {
  if (browser) await browser.close().catch(() => {});
  clearTimeout(watchdog);
}
process.exit(code);
