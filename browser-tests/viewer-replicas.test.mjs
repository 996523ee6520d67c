// Control-plane replicas on one database. The agent links to the first; a user signs in on
// the second, which does not hold the agent's link, and opens the desktop there (bridged).
// Then, behind HAProxy, the replica holding the link is killed with SIGKILL while the
// desktop is shown: the viewer reconnects by itself, through a replica that is left.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Stack } from './stack.mjs';
import { ARTIFACTS, launch, signIn, waitForDesktop, litFraction } from './browser.mjs';

const stack = new Stack();
let browser;
let other;

before(async () => {
  await stack.startControlPlane();
  await stack.api('/api/v1/templates', { method: 'POST', body: { name: 'xterm', image: 'xterm -geometry 100x30+40+40' } });
  await stack.startAgent('local-1', 'local');
  other = await stack.startReplica();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await stack.stop();
});

test('a desktop opens through a replica that does not hold the agent link', async () => {
  const erin = await stack.createUser('erin', 'erin-password');
  const sessionId = await stack.runningSession(erin, 'xterm');
  const page = await signIn(browser, other, 'erin', 'erin-password');
  const loadStarted = Date.now();
  await page.goto(`${other}/vnc-viewer/${sessionId}`);
  await waitForDesktop(page);
  const firstLoadMs = Date.now() - loadStarted;
  assert.ok((await litFraction(page)) > 0.01, 'the canvas shows the desktop');
  await page.screenshot({ path: join(ARTIFACTS, 'viewer-other-replica.png') });
  await page.keyboard.press('Control+Alt+Shift+R');
  await waitForDesktop(page, { connects: 2 });
  console.log(`viewer (through another replica): page load to first frame ${firstLoadMs} ms; reconnect ${(await page.evaluate(() => window.streamspace.lastConnectMs)).toFixed(0)} ms`);
});

test('when the replica holding the agent\'s link is killed, the viewer comes back by itself', async () => {
  // A third replica, and every replica behind a load balancer; the agent moves behind it too.
  await stack.startReplica();
  const lb = await stack.startLoadBalancer();
  await stack.restartAgent('local-1', { CONTROL_PLANE_URL: lb.replace('http://', 'ws://') });
  const frank = await stack.createUser('frank', 'frank-password');
  const sessionId = await stack.runningSession(frank, 'xterm');
  const page = await signIn(browser, lb, 'frank', 'frank-password');
  await page.goto(`${lb}/vnc-viewer/${sessionId}`);
  await waitForDesktop(page);
  const holder = stack.replicaOf('local-1');
  assert.ok(holder, 'the agent is linked');
  const killedAt = Date.now();
  await stack.killReplica(holder);
  await waitForDesktop(page, { connects: 2 });
  const backMs = Date.now() - killedAt;
  assert.ok((await litFraction(page)) > 0.01, 'the desktop again');
  assert.notEqual(stack.replicaOf('local-1'), holder, 'linked to a replica that is left');
  console.log(`viewer (replica holding the link killed): the desktop was back ${backMs} ms later, by itself`);
});
