// An agent that stops answering (frozen, its connection still open) is reported to the viewer
// in plain words, and the viewer comes back by itself once the agent answers again.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Stack, until } from './stack.mjs';
import { launch, signIn, waitForDesktop } from './browser.mjs';

const stack = new Stack();
let browser;

before(async () => {
  // Short liveness so "late" comes within a second and a half, "offline" only after 8 s.
  await stack.startControlPlane({ AGENT_HEARTBEAT_INTERVAL: '1s', AGENT_TIMEOUT: '8s' });
  await stack.api('/api/v1/templates', { method: 'POST', body: { name: 'xterm', image: 'xterm' } });
  await stack.startAgent('local-1', 'local');
  browser = await launch();
});

after(async () => {
  stack.signalAgent('local-1', 'SIGCONT');
  await browser?.close();
  await stack.stop();
});

test('the viewer says the agent is not responding, then recovers when it answers again', async () => {
  const dana = await stack.createUser('dana', 'dana-password');
  const sessionId = await stack.runningSession(dana, 'xterm');
  const page = await signIn(browser, stack.base, 'dana', 'dana-password');
  await page.goto(`${stack.base}/vnc-viewer/${sessionId}`);
  await waitForDesktop(page);

  stack.signalAgent('local-1', 'SIGSTOP');
  await until('the agent to be late', async () => (await stack.api('/api/v1/agents/local-1')).status === 'warning', 10000);
  await page.keyboard.press('Control+Alt+Shift+R');
  await page.waitForFunction(
    () => window.streamspace.message === 'The agent running this desktop is not responding.',
    null,
    { timeout: 10000 },
  );
  assert.equal(await page.textContent('#status-text'), 'The agent running this desktop is not responding.');

  stack.signalAgent('local-1', 'SIGCONT');
  await waitForDesktop(page, { connects: 2, timeout: 20000 });
  assert.equal((await stack.api(`/api/v1/sessions/${sessionId}`)).state, 'running');
});
