// The same viewer through the Docker path: the agent binary with PLATFORM=docker against the
// test run's private dockerd, running the real desktop image (Xvnc and Xfce in a container,
// its VNC port published on 127.0.0.1 only).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Stack, until } from './stack.mjs';
import { ARTIFACTS, launch, signIn, waitForDesktop, litFraction, sharedToWatch, hibernateAndWake } from './browser.mjs';

const stack = new Stack();
let browser;

before(async () => {
  const engine = stack.dockerEngine();
  await stack.startControlPlane();
  await stack.api('/api/v1/templates', { method: 'POST', body: { name: 'xfce', display_name: 'Xfce desktop', image: engine.image, platforms: ['docker'], record: true } });
  // Named after this process: the agent's network and labels on the shared engine are its own.
  await stack.startAgent(`docker-browser-${process.pid}`, 'docker', { DOCKER_HOST: engine.host });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await stack.stop();
});

test('a Docker session shows its Xfce desktop in the browser and reconnects', async () => {
  const dave = await stack.createUser('dave', 'dave-password');
  const sessionId = await stack.runningSession(dave, 'xfce');
  const session = await stack.api(`/api/v1/sessions/${sessionId}`);
  assert.equal(session.platform, 'docker');
  await stack.networkSettled();

  const page = await signIn(browser, stack.base, 'dave', 'dave-password');
  const loadStarted = Date.now();
  await page.goto(`${stack.base}/vnc-viewer/${sessionId}`);
  await waitForDesktop(page);
  const firstLoadMs = Date.now() - loadStarted;
  // Xvnc answers before Xfce has painted: the desktop fills in within a few seconds.
  await until('the Xfce desktop painted', async () => (await litFraction(page)) > 0.01, 20000);
  await page.screenshot({ path: join(ARTIFACTS, 'viewer-docker.png') });

  await page.keyboard.press('Control+Alt+Shift+R');
  await waitForDesktop(page, { connects: 2 });
  console.log(`viewer (docker): page load to first frame ${firstLoadMs} ms; reconnect ${(await page.evaluate(() => window.streamspace.lastConnectMs)).toFixed(0)} ms`);
});

test('a Docker desktop shared to watch has two viewers at once, and its recording plays the Xfce desktop', async () => {
  const dave = await stack.login('dave', 'dave-password');
  const sessionId = await stack.runningSession(dave, 'xfce');
  await stack.networkSettled();
  const owner = await signIn(browser, stack.base, 'dave', 'dave-password');
  await owner.goto(`${stack.base}/vnc-viewer/${sessionId}`);
  await waitForDesktop(owner);
  await until('the Xfce desktop painted', async () => (await litFraction(owner)) > 0.01, 20000);
  const seen = await sharedToWatch(browser, stack, { ownerToken: dave, ownerPage: owner, sessionId, guest: 'frank' });
  assert.deepEqual(seen, ['dave:control', 'frank:view']);
  await owner.waitForTimeout(20000);
  await owner.close();
  const recording = await until('the owner\'s recording finished', async () => {
    const { recordings } = await stack.api(`/api/v1/recordings?session_id=${sessionId}`);
    return recordings.find((r) => r.username === 'dave' && r.ended_at);
  });
  // Per minute of the viewer's connection (an unchanging screen sends nothing, so the span of
  // the bytes alone would say little).
  const connectedMs = Date.parse(recording.ended_at) - Date.parse(recording.started_at);
  const perMinute = recording.bytes / (connectedMs / 60000);
  console.log(`recording size: ${(perMinute / 1024).toFixed(0)} KiB per minute (the Xfce desktop image on Docker, left alone with one viewer open; ${recording.bytes} bytes over ${(connectedMs / 1000).toFixed(1)} s connected, the first screens included)`);
});

test('a Docker desktop hibernated from its card wakes when it is opened', async () => {
  const ivan = await stack.createUser('ivan', 'ivan-password');
  const sessionId = await stack.runningSession(ivan, 'xfce', { persistentHome: true });
  await stack.networkSettled();
  const wokenMs = await hibernateAndWake(browser, stack, { user: 'ivan', sessionId, agentId: `docker-browser-${process.pid}` });
  console.log(`hibernate and wake (docker): page load to the woken desktop's first frame ${wokenMs} ms`);
});
