// A user signs in through the real pages, opens a desktop of the local runtime (real Xvnc and
// xterm) in the bundled noVNC viewer, sees pixels, and reconnects with Ctrl+Alt+Shift+R; and
// shares it with another user, who watches it in their own browser until it is revoked; and a
// desktop past its idle timeout warns, is kept once, then stops; a recorded one plays back;
// and a hibernated one wakes when it is opened.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Stack, until } from './stack.mjs';
import { ARTIFACTS, launch, signIn, waitForDesktop, litFraction, hibernateAndWake } from './browser.mjs';

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

test('an owner shares a desktop to watch; the guest opens it from "Shared with me" and is closed out on revoke', async () => {
  await stack.createUser('carol', 'carol-password');
  const alice = await stack.login('alice', 'alice-password');
  const sessionId = await stack.runningSession(alice, 'xterm');
  const owner = await signIn(browser, stack.base, 'alice', 'alice-password');
  const shareButton = `article[data-session="${sessionId}"] button:has-text("Share")`;
  await owner.click(shareButton);
  await owner.fill('dialog input[name=username]', 'carol');
  await owner.selectOption('dialog form select[name=mode]', 'view');
  await owner.click('dialog form button[type=submit]');
  await owner.waitForSelector('dialog tr[data-share="carol"]');

  const guest = await signIn(browser, stack.base, 'carol', 'carol-password');
  const card = await guest.waitForSelector(`article.shared[data-session="${sessionId}"]`);
  assert.match(await card.textContent(), /Owneralice.*You mayView only/);
  const href = await guest.getAttribute(`article.shared[data-session="${sessionId}"] a`, 'href');
  await guest.goto(`${stack.base}${href}`);
  await waitForDesktop(guest);
  assert.equal(await guest.evaluate(() => window.streamspace.mode), 'view');
  assert.equal(await guest.textContent('#mode'), 'View only: alice shares this desktop with you to watch.');
  assert.ok(await guest.isDisabled('[data-action=ctrl-alt-del]'));
  await guest.screenshot({ path: join(ARTIFACTS, 'viewer-shared-view-only.png') });

  // The owner sees her connected, then revokes: her viewer closes at once and says why.
  await owner.click('dialog button:has-text("Refresh")');
  await owner.waitForSelector('dialog tr[data-viewer="carol"]');
  assert.match(await owner.textContent('dialog tr[data-viewer="carol"]'), /View only/);
  await owner.click('dialog tr[data-share="carol"] button:has-text("Revoke")');
  await owner.waitForSelector('dialog tr[data-share="carol"]', { state: 'detached' });
  await guest.waitForFunction(() => window.streamspace?.phase === 'stopped', null, { timeout: 15000 });
  assert.equal(await guest.textContent('#status-text'), 'This session does not exist, or it is not yours.');
  const audit = await stack.api('/api/v1/audit?action=session_share_revoke');
  assert.equal(audit.entries[0].details.username, 'carol');
});

test('a desktop idle for its template\'s timeout warns, is kept by "I\'m still here", then stops and says why', async () => {
  await stack.api('/api/v1/templates', { method: 'POST', body: { name: 'idle-xterm', image: 'xterm', idle_timeout_seconds: 8 } });
  const alice = await stack.login('alice', 'alice-password');
  const sessionId = await stack.runningSession(alice, 'idle-xterm');
  const page = await signIn(browser, stack.base, 'alice', 'alice-password');
  await page.goto(`${stack.base}/vnc-viewer/${sessionId}`);
  await waitForDesktop(page);
  // Nobody types: two seconds before the end the warning comes, with a countdown.
  await page.waitForFunction(() => window.streamspace.limitWarning === 'idle', null, { timeout: 15000 });
  assert.match(await page.textContent('#limit-text'), /^No input for a while: this desktop stops in \d+ s\.$/);
  await page.screenshot({ path: join(ARTIFACTS, 'viewer-idle-warning.png') });
  await page.click('#still-here');
  await page.waitForFunction(() => window.streamspace.limitWarning === null);
  assert.equal(await page.isHidden('#limit-warning'), true);
  // Still nobody: it stops, and the viewer says why.
  await page.waitForFunction(() => window.streamspace.phase === 'stopped', null, { timeout: 30000 });
  assert.match(await page.textContent('#status-detail'), /stopped after 8 seconds without input/);
  const audit = await stack.api('/api/v1/audit?action=session_idle_stop');
  assert.equal(audit.entries[0].target_id, sessionId);
});

test('a desktop hibernated from its card wakes when it is opened, and its viewer says so', async () => {
  const hank = await stack.createUser('hank', 'hank-password');
  const sessionId = await stack.runningSession(hank, 'xterm', { persistentHome: true });
  const wokenMs = await hibernateAndWake(browser, stack, { user: 'hank', sessionId, agentId: 'local-1' });
  console.log(`hibernate and wake (local): page load to the woken desktop's first frame ${wokenMs} ms`);
  const [slept, woke] = await Promise.all(['session_hibernate', 'session_wake'].map((a) => stack.api(`/api/v1/audit?action=${a}`)));
  assert.equal(slept.entries[0].target_id, sessionId);
  assert.equal(woke.entries[0].actor_username, 'hank');
});

test('a recorded desktop tells its viewer; an admin plays the recording back, faster and from a chosen point', async () => {
  await stack.api('/api/v1/templates', { method: 'POST', body: { name: 'rec-xterm', image: 'xterm -geometry 100x30+40+40', record: true } });
  const alice = await stack.login('alice', 'alice-password');
  const sessionId = await stack.runningSession(alice, 'rec-xterm');
  const page = await signIn(browser, stack.base, 'alice', 'alice-password');
  await page.goto(`${stack.base}/vnc-viewer/${sessionId}`);
  await waitForDesktop(page);
  assert.equal(await page.textContent('#recorded'), '● This session is recorded.');
  assert.equal(await page.isVisible('#recorded'), true);
  // Something happens on the desktop while it is recorded: a line typed into the xterm.
  await page.mouse.click(300, 200);
  await page.keyboard.type('echo recorded', { delay: 50 });
  await page.keyboard.press('Enter');
  await page.waitForTimeout(1500);
  await page.close();
  const { recordings } = await until('the recording finished', async () => {
    const answer = await stack.api(`/api/v1/recordings?session_id=${sessionId}`);
    return answer.recordings[0]?.ended_at ? answer : null;
  });
  const [recording] = recordings;
  assert.equal(recording.username, 'alice');
  assert.ok(recording.bytes > 0 && recording.duration_ms > 0, JSON.stringify(recording));

  const admin = await signIn(browser, stack.base, 'admin', 'admin-password');
  await admin.click('nav.main >> text=Recordings');
  const row = await admin.waitForSelector(`tr[data-recording="${recording.id}"]`);
  assert.match(await row.textContent(), /alice.*rec-xterm/);
  const href = await admin.getAttribute(`tr[data-recording="${recording.id}"] a`, 'href');
  const errors = [];
  admin.on('pageerror', (e) => errors.push(e.message));
  await admin.goto(`${stack.base}${href}`);
  await admin.waitForFunction(() => window.streamspace?.phase === 'playing' || window.streamspace?.phase === 'ended');
  await admin.selectOption('#speed', '8');
  await admin.waitForFunction(() => window.streamspace.phase === 'ended', null, { timeout: 20000 });
  assert.ok((await litFraction(admin)) > 0.01, 'the replay shows the desktop');
  await admin.screenshot({ path: join(ARTIFACTS, 'recording-player.png') });
  // Seek back to the middle: the screen is rebuilt up to there, and plays on from there.
  const duration = await admin.evaluate(() => window.streamspace.duration);
  assert.equal(duration, recording.duration_ms, 'the file spans what the list says');
  const middle = Math.round(duration / 2);
  await admin.$eval('#seek', (seek, value) => {
    seek.value = String(value);
    seek.dispatchEvent(new Event('input'));
  }, middle);
  const state = await admin.evaluate(() => window.streamspace);
  assert.deepEqual(errors, []);
  assert.ok(state.position >= middle - 100 && state.position <= middle + 100, JSON.stringify(state));
  assert.ok(state.chunks > 0 && state.chunks < (await admin.evaluate(() => window.streamspace.total)), JSON.stringify(state));
  await admin.click('#play');
  await admin.waitForFunction(() => window.streamspace.phase === 'ended', null, { timeout: 20000 });
  console.log(`recording (local xterm, typing): ${recording.bytes} bytes over ${(recording.duration_ms / 1000).toFixed(1)} s`);
});

test('how large a recording grows: a terminal running top, watched in the viewer for 30 s', async () => {
  await stack.api('/api/v1/templates', { method: 'POST', body: { name: 'rec-top', image: 'xterm -geometry 120x40+0+0 -e top -d 1', record: true } });
  const alice = await stack.login('alice', 'alice-password');
  const sessionId = await stack.runningSession(alice, 'rec-top');
  const page = await signIn(browser, stack.base, 'alice', 'alice-password');
  await page.goto(`${stack.base}/vnc-viewer/${sessionId}`);
  await waitForDesktop(page);
  await page.waitForTimeout(30000);
  await page.close();
  const { recordings: [recording] } = await until('the recording finished', async () => {
    const answer = await stack.api(`/api/v1/recordings?session_id=${sessionId}`);
    return answer.recordings[0]?.ended_at ? answer : null;
  });
  assert.ok(recording.complete && recording.duration_ms > 25000, JSON.stringify(recording));
  // Per minute of the viewer's connection (an unchanging screen sends nothing, so the span of
  // the bytes alone would say little).
  const connectedMs = Date.parse(recording.ended_at) - Date.parse(recording.started_at);
  const perMinute = recording.bytes / (connectedMs / 60000);
  console.log(`recording size: ${(perMinute / 1024).toFixed(0)} KiB per minute (xterm 120x40 running top -d 1 on a 1024x768 desktop, noVNC's encodings; ${recording.bytes} bytes over ${(connectedMs / 1000).toFixed(1)} s connected)`);
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

/** Runs xclip on a session's X display, as root with the display's own cookie. */
function xclip(sessionId, args, input) {
  const dir = join(stack.dir, 'agent-local-1', 'sessions', sessionId);
  const { display } = JSON.parse(readFileSync(join(dir, 'session.json'), 'utf8'));
  return execFileSync('xclip', ['-selection', 'clipboard', ...args], {
    env: { ...process.env, DISPLAY: `:${display}`, XAUTHORITY: join(dir, 'run', 'Xauthority') },
    input,
    encoding: 'utf8',
    timeout: 5000,
    // Setting the selection, xclip stays in the background to serve it: do not wait on it.
    stdio: input === undefined ? ['ignore', 'pipe', 'ignore'] : ['pipe', 'ignore', 'ignore'],
  });
}

test('the toolbar hides itself and carries clipboard, scaling, info, disconnect and reconnect', async () => {
  const alice = await stack.login('alice', 'alice-password');
  const sessionId = await stack.runningSession(alice, 'xterm');
  const page = await signIn(browser, stack.base, 'alice', 'alice-password');
  await page.goto(`${stack.base}/vnc-viewer/${sessionId}`);
  await waitForDesktop(page);
  const toolbar = page.locator('#toolbar');
  await page.waitForFunction(() => !document.querySelector('#toolbar').classList.contains('shown'), null, { timeout: 8000 });
  await page.waitForFunction(() => document.querySelector('#hint').classList.contains('faded'), null, { timeout: 8000 });
  await page.mouse.move(640, 2);
  await page.waitForFunction(() => document.querySelector('#toolbar').classList.contains('shown'));

  // Clipboard both ways, through the real X selection of the desktop.
  await toolbar.getByRole('button', { name: 'Clipboard' }).click();
  await page.fill('#clipboard-text', 'from the browser');
  await page.click('#clipboard-send');
  await until('the desktop has the text', async () => {
    try {
      return xclip(sessionId, ['-o']) === 'from the browser';
    } catch {
      return false; // nobody owns the selection yet
    }
  });
  xclip(sessionId, ['-i'], 'from the desktop');
  await page.waitForFunction(() => document.querySelector('#clipboard-text').value === 'from the desktop', null, { timeout: 10000 });
  await page.click('#clipboard-close');

  // Scaling: the 1024-wide desktop shrunk to fit an 800-wide window, or shown pixel for pixel
  // (and clipped, to be dragged around).
  await page.setViewportSize({ width: 800, height: 600 });
  await page.mouse.move(400, 2);
  const scale = () => page.evaluate(() => {
    const canvas = document.querySelector('#screen canvas');
    return canvas.getBoundingClientRect().width / canvas.width;
  });
  await until('scaled to fit', async () => (await scale()) < 0.9);
  await toolbar.getByRole('button', { name: 'Scale: fit' }).click();
  await until('at 100 %', async () => Math.abs((await scale()) - 1) < 0.01);
  await toolbar.getByRole('button', { name: 'Scale: 100 %' }).click();
  await toolbar.getByRole('button', { name: 'Ctrl-Alt-Del' }).click();

  await toolbar.getByRole('button', { name: 'Session info' }).click();
  const info = page.locator('dialog[open]');
  assert.match(await info.textContent(), new RegExp(`Templatexterm.*Local.*local-1.*Owneralice.*${sessionId}`, 's'));
  await page.keyboard.press('Escape');

  await page.mouse.move(400, 2);
  await toolbar.getByRole('button', { name: 'Disconnect' }).click();
  await page.waitForFunction(() => window.streamspace.phase === 'stopped');
  assert.equal(await page.textContent('#status-text'), 'You disconnected from this desktop.');
  await page.click('#retry');
  await waitForDesktop(page, { connects: 2 });
  await page.screenshot({ path: join(ARTIFACTS, 'viewer-toolbar.png') });

  // Closing the tab is recorded as the viewer closing, not as an error.
  await page.close({ runBeforeUnload: true });
  await until('the disconnect audited', async () => {
    const { entries } = await stack.api('/api/v1/audit?action=vnc_disconnect&limit=5');
    return entries.some((e) => e.target_id === sessionId && e.details.reason === 'viewer closed');
  });
});

test('final states offer no reconnect, and a malformed link says so in words', async () => {
  const alice = await stack.login('alice', 'alice-password');
  const page = await signIn(browser, stack.base, 'alice', 'alice-password');
  await page.goto(`${stack.base}/vnc-viewer/not-a-session`);
  await page.waitForFunction(() => window.streamspace?.phase === 'stopped');
  assert.equal(await page.textContent('#status-text'), 'This is not a desktop link.');
  assert.ok(await page.isHidden('#retry'));
  assert.doesNotMatch(await page.textContent('body'), /"error"/);

  const sessionId = await stack.runningSession(alice, 'xterm');
  await stack.api(`/api/v1/sessions/${sessionId}`, { method: 'DELETE', token: alice });
  await until('ended', async () => (await stack.api(`/api/v1/sessions/${sessionId}`)).state === 'terminated');
  await page.goto(`${stack.base}/vnc-viewer/${sessionId}`);
  await page.waitForFunction(() => window.streamspace?.phase === 'stopped');
  assert.equal(await page.textContent('#status-text'), 'This desktop has been closed.');
  assert.ok(await page.isHidden('#retry'), 'nothing to reconnect to');
  await page.close();
});
