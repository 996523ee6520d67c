// Headless Chromium from Debian, driven by playwright-core (never a downloaded browser).

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './stack.mjs';

export const ARTIFACTS = join(ROOT, 'artifacts');

export async function launch() {
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

/** Signs in through the real login page and returns the page. */
export async function signIn(browser, base, username, password) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(`${base}/`);
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', password);
  await page.click('#signin-form button[type=submit]');
  await page.waitForSelector('#app:not([hidden])');
  return page;
}

/** Fraction of sampled canvas pixels that are not black. */
export async function litFraction(page) {
  return page.evaluate(() => {
    const canvas = document.querySelector('#screen canvas');
    if (!canvas || canvas.width === 0) return 0;
    const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
    let lit = 0;
    let total = 0;
    for (let i = 0; i < data.length; i += 4 * 97) {
      total += 1;
      if (data[i] + data[i + 1] + data[i + 2] > 30) lit += 1;
    }
    return lit / total;
  });
}

export async function waitForDesktop(page, { connects = 1, timeout = 30000 } = {}) {
  try {
    await page.waitForFunction((n) => window.streamspace?.phase === 'connected' && window.streamspace.connects >= n, connects, { timeout });
    await page.waitForFunction(() => {
      const canvas = document.querySelector('#screen canvas');
      if (!canvas || canvas.width === 0) return false;
      const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
      for (let i = 0; i < data.length; i += 4 * 97) if (data[i] + data[i + 1] + data[i + 2] > 30) return true;
      return false;
    }, null, { timeout });
  } catch (e) {
    // Say where the viewer stood, and keep a picture of it.
    const state = await page.evaluate(() => JSON.stringify({ ...window.streamspace, status: document.querySelector('#status')?.textContent })).catch(() => '?');
    await page.screenshot({ path: join(ARTIFACTS, `waitForDesktop-failed-${Date.now()}.png`) }).catch(() => {});
    throw new Error(`the desktop did not show: ${e.message}; viewer state ${state}`);
  }
}

/**
 * The owner (`ownerToken`) shares `sessionId` with a new user to watch; that user opens it in
 * a page of their own while the owner's `ownerPage` keeps viewing it. Checks both see the
 * desktop, the owner sees both connected, and a revoke closes the guest out; returns nothing.
 */
export async function sharedToWatch(browser, stack, { ownerToken, ownerPage, sessionId, guest }) {
  await stack.createUser(guest, `${guest}-password`);
  await stack.api(`/api/v1/sessions/${sessionId}/shares`, { method: 'POST', token: ownerToken, body: { username: guest, mode: 'view' } });
  const page = await signIn(browser, stack.base, guest, `${guest}-password`);
  await page.goto(`${stack.base}/vnc-viewer/${sessionId}`);
  await waitForDesktop(page);
  if ((await page.evaluate(() => window.streamspace.mode)) !== 'view') throw new Error('the guest is not view-only');
  if (ownerPage && (await ownerPage.evaluate(() => window.streamspace.phase)) !== 'connected') throw new Error('the owner was disconnected');
  const connected = async () => (await stack.api(`/api/v1/sessions/${sessionId}/viewers`, { token: ownerToken })).viewers.map((v) => `${v.username}:${v.mode}`).sort();
  const deadline = Date.now() + 10000;
  let seen = await connected();
  while (seen.length < (ownerPage ? 2 : 1) && Date.now() < deadline) seen = await connected();
  const { id: guestId } = await stack.api('/api/v1/auth/me', { token: await stack.login(guest, `${guest}-password`) });
  await stack.api(`/api/v1/sessions/${sessionId}/shares/${guestId}`, { method: 'DELETE', token: ownerToken });
  await page.waitForFunction(() => window.streamspace?.phase === 'stopped', null, { timeout: 15000 });
  await page.close();
  return seen;
}

/**
 * The owner hibernates a desktop from its card while watching it: the viewer says it is
 * hibernated (and does not wake it by itself), the agent no longer runs it; opening it from
 * the card wakes it, the viewer says "Waking…" and then shows the desktop again. Returns how
 * long the wake took from the page load to the first frame, in ms.
 */
export async function hibernateAndWake(browser, stack, { user, sessionId, agentId, timeout = 60000 }) {
  const password = `${user}-password`;
  const viewer = await signIn(browser, stack.base, user, password);
  await viewer.goto(`${stack.base}/vnc-viewer/${sessionId}`);
  await waitForDesktop(viewer, { timeout });
  const desktops = await signIn(browser, stack.base, user, password);
  const card = `article[data-session="${sessionId}"]`;
  await desktops.click(`${card} button:has-text("Hibernate")`);
  await desktops.click('dialog button.danger:has-text("Hibernate")');
  await viewer.waitForFunction(() => window.streamspace?.phase === 'stopped', null, { timeout });
  const said = [await viewer.textContent('#status-text'), await viewer.textContent('#retry')];
  if (said.join('|') !== 'This desktop is hibernated.|Wake it') throw new Error(`the viewer said ${said.join(' / ')}`);
  await desktops.waitForSelector(`${card} [data-state="hibernated"]`, { timeout });
  const { sessions: held } = await stack.api(`/api/v1/agents/${agentId}/sessions`);
  if (held.some((s) => s.session_id === sessionId)) throw new Error(`agent ${agentId} still runs the hibernated desktop`);

  const href = await desktops.getAttribute(`${card} a:has-text("Wake and open")`, 'href');
  const started = Date.now();
  await viewer.goto(`${stack.base}${href}`);
  await viewer.waitForFunction(() => window.streamspace?.message === 'Waking your desktop…', null, { timeout });
  await waitForDesktop(viewer, { timeout });
  const wokenMs = Date.now() - started;
  if ((await viewer.evaluate(() => window.streamspace.wakes)) !== 1) throw new Error('the viewer did not wake it exactly once');
  const { sessions: running } = await stack.api(`/api/v1/agents/${agentId}/sessions`);
  if (!running.some((s) => s.session_id === sessionId && s.state === 'running')) throw new Error(`agent ${agentId} does not run the woken desktop`);
  await desktops.close();
  await viewer.close();
  return wokenMs;
}
