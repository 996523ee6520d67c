// The same viewer through the Kubernetes path: the agent binary with PLATFORM=kubernetes,
// acting as the ServiceAccount its chart installs, against the real test cluster
// (kube-apiserver, etcd, scheduler, controller-manager, kwok as the node). The session Pod's
// VNC port is forwarded by the API server and kwok to a real Xvnc on this host.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Stack } from './stack.mjs';
import { ARTIFACTS, launch, signIn, waitForDesktop, litFraction, sharedToWatch, hibernateAndWake } from './browser.mjs';

const stack = new Stack();
let browser;

before(async () => {
  await stack.startControlPlane();
  const { kubeconfig, namespace } = await stack.startKubeNamespace();
  await stack.api('/api/v1/templates', { method: 'POST', body: { name: 'desktop', image: 'streamspace/test-desktop:1' } });
  await stack.startAgent('k8s-1', 'kubernetes', { KUBECONFIG: kubeconfig, NAMESPACE: namespace });
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
  assert.match(await page.title(), new RegExp(`ss-${sessionId}`), 'the desktop of this very Pod');
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

test('a Kubernetes desktop shared to watch has two viewers at once, each through its own port-forward', async () => {
  const carol = await stack.login('carol', 'carol-password');
  const sessionId = await stack.runningSession(carol, 'desktop');
  const owner = await signIn(browser, stack.base, 'carol', 'carol-password');
  await owner.goto(`${stack.base}/vnc-viewer/${sessionId}`);
  await waitForDesktop(owner);
  const seen = await sharedToWatch(browser, stack, { ownerToken: carol, ownerPage: owner, sessionId, guest: 'gina' });
  assert.deepEqual(seen, ['carol:control', 'gina:view']);
  assert.equal(await owner.evaluate(() => window.streamspace.phase), 'connected', 'the revoke closed the guest only');
});

test('a Kubernetes desktop hibernated from its card wakes when it is opened', async () => {
  const judy = await stack.createUser('judy', 'judy-password');
  const sessionId = await stack.runningSession(judy, 'desktop', { persistentHome: true });
  const wokenMs = await hibernateAndWake(browser, stack, { user: 'judy', sessionId, agentId: 'k8s-1' });
  console.log(`hibernate and wake (kubernetes): page load to the woken desktop's first frame ${wokenMs} ms`);
});
