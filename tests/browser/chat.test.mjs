// Headless-Chromium test of the gateway's demo chat page (GET /).
//
// Two people, alice and bob, open the page in separate browser contexts and
// join room "lobby". Checks: alice sees bob join, bob sees alice's room
// message, alice sees bob's direct message marked as a DM, and alice sees bob
// leave when his page closes.
//
// Then history and recovery: bob comes back and sees the room's history;
// alice's socket is closed from the page and her reconnect is held (her token
// request waits) while bob sends 3 room messages; once she is back she shows
// each exactly once, in order, with no "messages lost" notice, and bob's
// earlier direct message still once. A direct message to carol, who is not
// connected, appears when she joins (after the room's history) and, once
// acknowledged, not again after she reloads the page.
//
// Last, a Redis that restarts empty under a live room: the test starts its
// own redis-server and a gateway joined to it (DEMO_TEST_BIN), dana and erin
// chat, Redis is killed and started again; dana, still connected, shows one
// "history lost" notice and then erin's next message (the channel counts
// from 1 again), nothing twice.
//
// Usage: DEMO_TEST_URL=http://127.0.0.1:8080 DEMO_TEST_BIN=target/debug/tokenim node chat.test.mjs
// (tests/browser/run.sh builds and starts a gateway and does this.)
// Needs Debian's Chromium at /usr/bin/chromium and a gateway in development
// mode (GET /dev/token).

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const BASE = process.env.DEMO_TEST_URL;
const GATEWAY_BIN = process.env.DEMO_TEST_BIN;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const STEP_TIMEOUT = 5_000;
const RUN_TIMEOUT = 90_000;
const RESULTS = fileURLToPath(new URL('./test-results/', import.meta.url));

if (!BASE || !GATEWAY_BIN) {
  console.error('FAIL: set DEMO_TEST_URL to the gateway (e.g. http://127.0.0.1:8080) and DEMO_TEST_BIN to its binary');
  process.exit(2);
}

let step = 'starting';
let browser;
const pages = {}; // name -> page, for diagnostics
const children = new Set(); // processes this test started, killed at the end
const problems = []; // uncaught page errors: always a failure

const watchdog = setTimeout(() => {
  console.error(`FAIL: the whole run took longer than ${RUN_TIMEOUT / 1000} s (during: ${step})`);
  process.exit(1);
}, RUN_TIMEOUT);

async function openAs(user, base = BASE) {
  const context = await browser.newContext();
  const page = await context.newPage();
  pages[user] = page;
  page.on('pageerror', (err) => problems.push(`${user}: uncaught error in page: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') console.error(`  [${user} console] ${msg.text()}`);
  });
  step = `${user} opens the page`;
  await page.goto(base, { timeout: STEP_TIMEOUT });
  await joinLobby(page, user);
  return { context, page };
}

async function joinLobby(page, user) {
  step = `${user} joins room lobby`;
  await page.fill('#name', user);
  await page.fill('#room', 'lobby');
  await page.click('#join');
  await page.locator('#status[data-state="joined"]').waitFor({ timeout: STEP_TIMEOUT });
}

// Rejects when `promise` has not settled within `ms`.
function within(promise, ms, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not within ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

// The texts of the room messages a page shows (direct messages left out), in
// the order shown.
function roomTexts(page, from) {
  const who = from ? `[data-from="${from}"]` : '';
  return page.locator(`#messages .msg${who}:not(.dm) .text`).allTextContents();
}

function expectList(what, actual, expected) {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

async function expectCount(locator, n, what) {
  const got = await locator.count();
  if (got !== n) throw new Error(`${what}: expected ${n}, found ${got}`);
}

// Publishes a room message and waits until the sender's page shows it (the
// server has given it its place).
async function say(page, text) {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
  await page.locator('#messages .msg:not(.dm)', { hasText: text }).last().waitFor({ timeout: STEP_TIMEOUT });
}

// Sends a direct message and waits for the server's reply (the page then
// shows it as sent).
async function sendDm(page, to, text) {
  await page.fill('#dm-to', to);
  await page.fill('#dm-text', text);
  await page.click('#dm-send');
  await page.locator('#messages .msg.dm.sent', { hasText: text }).waitFor({ timeout: STEP_TIMEOUT });
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

  const bobAgain = await recovery(alice);
  await offlineDirectMessage(bobAgain);
  await redisRestart();

  step = 'checking for page errors';
  if (problems.length) throw new Error(problems.join('; '));
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  console.log('PASS: browser chat test (join, members, room message, direct message, leave, history, ' +
    `recovery after a reconnect, offline direct message and ack, Redis restarted empty) against ${BASE} in ${secs} s`);
}

const MISSED = ['missed 1', 'missed 2', 'missed 3'];

// Returns bob's new page, kept open to the end.
async function recovery(alice) {
  const bob = await openAs('bob');

  step = 'bob, back, sees the room history on joining';
  await bob.page.locator('#messages .msg[data-from="alice"]', { hasText: 'hello from alice' })
    .waitFor({ timeout: STEP_TIMEOUT });
  expectList('bob\'s room messages after joining', await roomTexts(bob.page), ['hello from alice']);

  step = 'alice\'s socket is closed from the page; her reconnect waits for a token';
  let tokenAsked, release;
  const asked = new Promise((resolve) => { tokenAsked = resolve; });
  const released = new Promise((resolve) => { release = resolve; });
  const tokenUrl = (url) => url.pathname === '/dev/token';
  await alice.page.route(tokenUrl, async (route) => {
    tokenAsked();
    await released;
    await route.continue();
  });
  const closed = await alice.page.evaluate(() => {
    const ws = window.__tokenim && window.__tokenim.socket;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.close();
    return true;
  });
  if (!closed) throw new Error('alice\'s page exposes no open WebSocket on window.__tokenim.socket');
  await within(asked, STEP_TIMEOUT, 'alice asks for a token to reconnect');

  step = 'bob sends 3 room messages while alice is reconnecting';
  for (const text of MISSED) await say(bob.page, text);
  expectList('alice\'s messages from bob while she is away', await roomTexts(alice.page, 'bob'), []);

  step = 'alice reconnects';
  release();
  await alice.page.locator('#status[data-state="joined"]').waitFor({ timeout: STEP_TIMEOUT });

  step = 'alice shows the missed messages, then a live one, each once and in order';
  await say(bob.page, 'after the reconnect');
  await alice.page.locator('#messages .msg[data-from="bob"]', { hasText: 'after the reconnect' })
    .waitFor({ timeout: STEP_TIMEOUT });
  expectList('alice\'s room messages from bob', await roomTexts(alice.page, 'bob'), [...MISSED, 'after the reconnect']);
  await expectCount(alice.page.locator('#messages .event.gap'), 0, 'alice\'s "messages lost" notices');
  await expectCount(alice.page.locator('#messages .msg.dm[data-from="bob"]', { hasText: 'psst from bob' }), 1,
    'bob\'s earlier direct message on alice\'s page');
  await alice.page.unroute(tokenUrl);
  return bob;
}

async function offlineDirectMessage(bob) {
  step = 'bob sends a direct message to carol, who is not connected';
  await sendDm(bob.page, 'carol', 'while you were out');

  const carol = await openAs('carol');
  const dm = carol.page.locator('#messages .msg.dm[data-from="bob"]', { hasText: 'while you were out' });
  step = 'carol, on joining, sees the waiting direct message once, and the room history';
  await dm.waitFor({ timeout: STEP_TIMEOUT });
  await expectCount(dm, 1, 'the waiting direct message on carol\'s page');
  expectList('carol\'s room messages after joining', await roomTexts(carol.page),
    ['hello from alice', ...MISSED, 'after the reconnect']);

  step = 'carol\'s page acknowledges the direct message';
  await carol.page.waitForFunction(() => {
    const d = window.__tokenim && window.__tokenim.direct;
    return d && d.seq > 0 && d.acked >= d.seq;
  }, null, { timeout: STEP_TIMEOUT });

  step = 'carol reloads the page and joins again';
  await carol.page.reload({ timeout: STEP_TIMEOUT });
  await joinLobby(carol.page, 'carol');

  step = 'carol gets a new direct message, and not the acknowledged one again';
  await sendDm(bob.page, 'carol', 'second for carol');
  await carol.page.locator('#messages .msg.dm[data-from="bob"]', { hasText: 'second for carol' })
    .waitFor({ timeout: STEP_TIMEOUT });
  await expectCount(dm, 0, 'the acknowledged direct message on carol\'s reloaded page');
  await expectCount(carol.page.locator('#messages .msg.dm', { hasText: 'second for carol' }), 1,
    'the new direct message on carol\'s page');
}

// A loopback port free now.
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// Starts `cmd`; killed (SIGKILL) at the end of the run if still alive.
function start(cmd, args, options) {
  const child = spawn(cmd, args, { stdio: 'ignore', ...options });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

function kill(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', resolve);
    child.kill('SIGKILL');
  });
}

// Polls `check` every 50 ms until it resolves true, for up to `ms`.
async function until(check, ms, what) {
  const deadline = Date.now() + ms;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function accepts(port) {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

// redis-server without persistence on `port`: a restart comes back empty.
async function startRedis(port, dir) {
  const redis = start('redis-server', ['--port', String(port), '--bind', '127.0.0.1',
    '--save', '', '--appendonly', 'no', '--dir', dir]);
  await until(() => accepts(port), 10_000, `redis-server on ${port} accepts`);
  return redis;
}

async function redisRestart() {
  step = 'starting a redis-server and a gateway joined to it';
  const dir = mkdtempSync(join(tmpdir(), 'tokenim-browser-redis-'));
  try {
    const redisPort = await freePort();
    let redis = await startRedis(redisPort, dir);
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    start(GATEWAY_BIN, ['--listen', `127.0.0.1:${port}`], {
      cwd: dir,
      env: {
        ...process.env,
        TOKENIM_REDIS__URL: `redis://127.0.0.1:${redisPort}`,
        // Records stay on this node (a Redis store without persistence is
        // refused); Redis carries fan-out and history, and restarts empty.
        TOKENIM_STORE__BACKEND: 'embedded',
        TOKENIM_REDIS__PROBE_INTERVAL: '200ms',
        TOKENIM_REDIS__PROBE_TIMEOUT: '600ms',
        TOKENIM_REDIS__COMMAND_TIMEOUT: '800ms',
      },
    });
    await until(async () => (await fetch(`${base}/readyz`)).status === 200, 30_000, 'the Redis gateway is ready');

    const dana = await openAs('dana', base);
    const erin = await openAs('erin', base);
    step = 'erin sends 2 room messages and dana sees them';
    await say(erin.page, 'before 1');
    await say(erin.page, 'before 2');
    await dana.page.locator('#messages .msg[data-from="erin"]', { hasText: 'before 2' })
      .waitFor({ timeout: STEP_TIMEOUT });

    step = 'Redis is killed and started again, empty';
    await kill(redis);
    redis = await startRedis(redisPort, dir);

    step = 'dana, still connected, is told the room\'s history was lost';
    const notice = dana.page.locator('#messages .event.gap', { hasText: 'this room' });
    await notice.waitFor({ timeout: 15_000 });

    step = 'erin\'s next message (seq 1 again) reaches dana once, after the notice';
    await say(erin.page, 'after the restart');
    await dana.page.locator('#messages .msg[data-from="erin"]', { hasText: 'after the restart' })
      .waitFor({ timeout: STEP_TIMEOUT });
    expectList('dana\'s room messages from erin', await roomTexts(dana.page, 'erin'),
      ['before 1', 'before 2', 'after the restart']);
    await expectCount(notice, 1, 'dana\'s "history lost" notices');
    const order = await dana.page.locator('#messages > *').evaluateAll((items) => items.map((e) =>
      e.classList.contains('gap') ? 'gap' : (e.textContent.includes('after the restart') ? 'after' : '')));
    if (order.indexOf('gap') > order.indexOf('after')) throw new Error('the notice came after the new message');
    await dana.page.locator('#status[data-state="joined"]').waitFor({ timeout: STEP_TIMEOUT });
    await dana.context.close();
    await erin.context.close();
    delete pages.dana;
    delete pages.erin;
  } finally {
    await Promise.all([...children].map(kill));
    rmSync(dir, { recursive: true, force: true });
  }
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
  await Promise.all([...children].map(kill));
  clearTimeout(watchdog);
}
process.exit(code);
