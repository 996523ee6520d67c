// The same viewer through the Kubernetes path: the agent binary with PLATFORM=kubernetes
// against the in-repo API emulator (no real cluster can be had here), whose pod runs a real
// Xvnc reached through the port-forward subresource.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Stack } from './stack.mjs';
import { ARTIFACTS, launch, signIn, waitForDesktop, litFraction } from './browser.mjs';

const stack = new Stack();
let browser;

before(async () => {
  await stack.startControlPlane();
  const kubeconfig = await stack.startKubeEmulator();
  await stack.api('/api/v1/templates', { method: 'POST', body: { name: 'desktop', image: 'streamspace/test-desktop:1' } });
  await stack.startAgent('k8s-1', 'kubernetes', { KUBECONFIG: kubeconfig, NAMESPACE: 'streamspace' });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await stack.stop();
});

test('a Kubernetes session shows its desktop through the port-forward and reconnects', async () => {
  const carol = await stack.createUser('carol', 'carol-password');
  const sessionId = await stack.runningSession(carol, 'desktop');
  const session = await stack.api(`/api/v1/sessions/${sessionId}`);
  assert.equal(session.platform, 'kubernetes');
  assert.equal(session.agent_id, 'k8s-1');

  const page = await signIn(browser, stack.base, 'carol', 'carol-password');
  const loadStarted = Date.now();
  await page.goto(`${stack.base}/vnc-viewer/${sessionId}`);
  await waitForDesktop(page);
  const firstLoadMs = Date.now() - loadStarted;
  assert.match(await page.title(), /\(emulated pod\)/);
  assert.ok((await litFraction(page)) > 0.01);
  await page.screenshot({ path: join(ARTIFACTS, 'viewer-kubernetes.png') });

  const timings = [];
  for (let i = 1; i <= 5; i += 1) {
    await page.keyboard.press('Control+Alt+Shift+R');
    await waitForDesktop(page, { connects: 1 + i });
    timings.push(await page.evaluate(() => window.streamspace.lastConnectMs));
  }
  timings.sort((a, b) => a - b);
  console.log(`viewer (kubernetes): page load to first frame ${firstLoadMs} ms; in-page reconnect median ${timings[2].toFixed(0)} ms (min ${timings[0].toFixed(0)}, max ${timings[4].toFixed(0)})`);
});
