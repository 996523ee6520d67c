// A user signs in through the real pages, opens a desktop of the local runtime (real Xvnc and
// xterm) in the bundled noVNC viewer, sees pixels, and reconnects with Ctrl+Alt+Shift+R.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Stack } from './stack.mjs';
import { ARTIFACTS, launch, signIn, waitForDesktop, litFraction } from './browser.mjs';

const stack = new Stack();
let browser;

before(async () => {
  await stack.startControlPlane();
  await stack.api('/api/v1/templates', { method: 'POST', body: { name: 'xterm', image: 'xterm -geometry 100x30+40+40' } });
  await stack.startAgent('local-1', 'local');
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await stack.stop();
});

test('the viewer shows the desktop, toggles full screen and reconnects with Ctrl+Alt+Shift+F/R', async () => {
  const alice = await stack.createUser('alice', 'alice-password');
  const sessionId = await stack.runningSession(alice, 'xterm', { persistentHome: true });
  const page = await signIn(browser, stack.base, 'alice', 'alice-password');
  await page.waitForSelector(`article[data-session="${sessionId}"] a`);
  const home = await page.waitForSelector('tr[data-home]');
  assert.match(await home.textContent(), new RegExp(`xterm.*local-1.*Ready.*${sessionId.slice(0, 8)}`));

  const loadStarted = Date.now();
  await page.goto(`${stack.base}/vnc-viewer/${sessionId}`);
  await waitForDesktop(page);
  const firstLoadMs = Date.now() - loadStarted;
  assert.match(await page.title(), /alice's StreamSpace desktop/);
  assert.ok((await litFraction(page)) > 0.01, 'the canvas shows the desktop');
  await page.screenshot({ path: join(ARTIFACTS, 'viewer-local.png') });

  await page.keyboard.press('Control+Alt+Shift+F');
  await page.waitForFunction(() => document.fullscreenElement !== null);
  await page.keyboard.press('Control+Alt+Shift+F');
  await page.waitForFunction(() => document.fullscreenElement === null);

  const timings = [];
  for (let i = 1; i <= 5; i += 1) {
    await page.keyboard.press('Control+Alt+Shift+R');
    await waitForDesktop(page, { connects: 1 + i });
    timings.push(await page.evaluate(() => window.streamspace.lastConnectMs));
  }
  const state = await page.evaluate(() => window.streamspace);
  assert.equal(state.reconnects, 5);
  assert.equal(state.connects, 6);
  timings.sort((a, b) => a - b);
  console.log(`viewer (local): page load to first frame ${firstLoadMs} ms; in-page reconnect median ${timings[2].toFixed(0)} ms (min ${timings[0].toFixed(0)}, max ${timings[4].toFixed(0)})`);
  await page.screenshot({ path: join(ARTIFACTS, 'viewer-local-reconnected.png') });
});

test('the viewer says why when the session is not yours', async () => {
  await stack.createUser('bob', 'bob-password');
  const alice = await stack.login('alice', 'alice-password');
  const sessionId = await stack.runningSession(alice, 'xterm');
  const page = await signIn(browser, stack.base, 'bob', 'bob-password');
  await page.goto(`${stack.base}/vnc-viewer/${sessionId}`);
  await page.waitForFunction(() => window.streamspace?.phase === 'stopped');
  assert.equal(await page.textContent('#status-text'), 'This session does not exist, or it is not yours.');
});

test('when the agent crashes and comes back, the viewer reconnects by itself', async () => {
  const alice = await stack.login('alice', 'alice-password');
  const sessionId = await stack.runningSession(alice, 'xterm');
  const page = await signIn(browser, stack.base, 'alice', 'alice-password');
  await page.goto(`${stack.base}/vnc-viewer/${sessionId}`);
  await waitForDesktop(page);
  // The agent dies without a word; the desktop's processes live on and are re-adopted.
  await stack.crashAndRestartAgent('local-1');
  await waitForDesktop(page, { connects: 2 });
  const state = await page.evaluate(() => window.streamspace);
  assert.equal(state.reconnects, 0, 'no key was pressed: the viewer reconnected on its own');
  const session = await stack.api(`/api/v1/sessions/${sessionId}`);
  assert.equal(session.state, 'running');
  await page.screenshot({ path: join(ARTIFACTS, 'viewer-after-agent-restart.png') });
});
