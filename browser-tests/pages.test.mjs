// The pages as a user and an admin use them, in real Chromium against the real control plane
// and a real local agent: every page and dialog, deep links and the back button, auto-refresh
// that keeps filters, scroll and open dialogs, every confirmation, and a 390 px phone.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Stack, until } from './stack.mjs';
import { ARTIFACTS, launch, signIn } from './browser.mjs';

const stack = new Stack();
let browser;
const PHONE = { width: 390, height: 844 };

before(async () => {
  await stack.startControlPlane();
  await stack.api('/api/v1/templates', { method: 'POST', body: { name: 'xterm', display_name: 'Terminal', image: 'xterm', platforms: ['local'] } });
  await stack.api('/api/v1/templates', { method: 'POST', body: { name: 'broken', display_name: 'Broken desktop', image: 'no-such-desktop-program' } });
  await stack.startAgent('local-1', 'local');
  await stack.api('/api/v1/agents/register', { method: 'POST', body: { agent_id: 'k8s-eu', platform: 'kubernetes', region: 'eu' } });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await stack.stop();
});

/** Fails when anything on the page is wider than the viewport. */
async function assertNoOverflow(page, what) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `${what} overflows the viewport by ${overflow} px`);
}

/** Chooses `answer` in the confirmation dialog that is open, after checking its words. */
async function confirm(page, expected, answer) {
  const dialog = page.locator('dialog[open]').last();
  await dialog.waitFor();
  assert.match(await dialog.textContent(), expected);
  await dialog.getByRole('button', { name: answer, exact: true }).click();
}

function watchErrors(page) {
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => m.type() === 'error' && !m.text().includes('status of 4') && errors.push(m.text()));
  return errors;
}

test('a user starts a desktop from a card, sees why another failed, deletes and removes them', async () => {
  await stack.createUser('erin', 'erin-password');
  const page = await signIn(browser, stack.base, 'erin', 'erin-password');
  const errors = watchErrors(page);
  await page.waitForSelector('h1.page-title >> text=Desktops');
  assert.equal(new URL(page.url()).pathname, '/desktops');
  // The template says where it runs: only local is offered, and its defaults show.
  await page.selectOption('select[name=template]', 'xterm');
  assert.deepEqual(await page.$$eval('select[name=platform] option', (o) => o.map((x) => x.value)), ['local']);
  assert.equal(await page.getAttribute('input[name=memory]', 'placeholder'), '2Gi');
  await page.click('form.start button[type=submit]');
  await page.waitForSelector('article.desktop');
  const id = await page.getAttribute('article.desktop', 'data-session');
  const card = page.locator(`article[data-session="${id}"]`);
  await card.locator('a', { hasText: 'Open' }).waitFor({ timeout: 20000 });
  assert.match(await card.textContent(), /Terminal.*Running.*Local.*local-1/s);
  await page.screenshot({ path: join(ARTIFACTS, 'page-desktops.png'), fullPage: true });

  // A desktop that cannot start says why, in words.
  await page.selectOption('select[name=template]', 'broken');
  await page.uncheck('input[name=persistent_home]');
  await page.click('form.start button[type=submit]');
  const failed = page.locator('article.desktop.state-failed');
  await failed.waitFor({ timeout: 20000 });
  assert.match(await failed.textContent(), /Failed.*desktop program "no-such-desktop-program" is not installed on this host/s);
  await failed.getByRole('button', { name: 'Remove from list' }).click();
  await failed.waitFor({ state: 'detached' });

  // Deleting asks first, and says the home stays.
  await card.getByRole('button', { name: 'Delete' }).click();
  await confirm(page, /stops and its viewers close\. Its home is kept/, 'Cancel');
  assert.equal(await page.locator('article.desktop').count(), 1);
  await card.getByRole('button', { name: 'Delete' }).click();
  await confirm(page, /Delete this desktop\?/, 'Delete desktop');
  await card.getByRole('button', { name: 'Remove from list' }).waitFor({ timeout: 20000 });
  assert.match(await card.textContent(), /Ended/);
  await card.getByRole('button', { name: 'Remove from list' }).click();
  await page.waitForSelector('text=No desktops yet');
  // Its home outlived it, until its owner deletes it (asked first).
  assert.match(await page.locator('tr[data-home]').textContent(), /xterm.*local-1.*Ready/);
  await page.click('tr[data-home] >> text=Delete');
  await confirm(page, /Its files are removed for good/, 'Delete home');
  await page.waitForSelector('text=No persistent homes yet');

  await page.setViewportSize(PHONE);
  await assertNoOverflow(page, 'the desktops page');
  await page.screenshot({ path: join(ARTIFACTS, 'page-desktops-phone.png'), fullPage: true });
  assert.deepEqual(errors, []);
  // Admin pages are not offered to users, even by deep link.
  assert.deepEqual(await page.$$eval('nav.main a', (links) => links.map((a) => a.textContent)), ['Desktops']);
  await page.goto(`${stack.base}/agents`);
  await page.waitForSelector('h1.page-title >> text=Desktops');
  await page.close();
});

test('the agents page: cards, filters in the URL, search, details with credentials, register and remove', async () => {
  const page = await signIn(browser, stack.base, 'admin', 'admin-password');
  const errors = watchErrors(page);
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write']);
  await page.click('nav.main >> text=Agents');
  await page.waitForSelector('tr[data-agent="local-1"]');
  const stat = (id) => page.textContent(`[data-stat=${id}] .value`);
  assert.equal(await stat('total'), '2');
  assert.equal(await stat('online'), '1');
  assert.equal(await stat('platforms'), '2');
  // Status in words and a shape, not colour alone; platform icons with names.
  assert.match(await page.textContent('tr[data-agent="local-1"]'), /Local.*Online/s);
  assert.match(await page.textContent('tr[data-agent="k8s-eu"]'), /Kubernetes.*eu.*Offline/s);

  await page.selectOption('select[name=status]', 'online');
  await page.waitForSelector('tr[data-agent="k8s-eu"]', { state: 'detached' });
  assert.equal(new URL(page.url()).searchParams.get('status'), 'online');
  await page.selectOption('select[name=status]', '');
  await page.selectOption('select[name=region]', 'eu');
  await page.waitForSelector('tr[data-agent="local-1"]', { state: 'detached' });
  await page.selectOption('select[name=region]', '');
  await page.fill('input[name=q]', 'k8s');
  await page.waitForSelector('tr[data-agent="local-1"]', { state: 'detached' });
  await page.fill('input[name=q]', '');
  await page.waitForSelector('tr[data-agent="local-1"]');

  // Details: id copyable, capacity, credentials minted (token once, with the helm line),
  // rotated and revoked, each asked first where it cannot be undone.
  await page.click('tr[data-agent="k8s-eu"] >> text=Details');
  const details = page.locator('dialog[open]');
  await details.locator('h3', { hasText: 'Credentials' }).waitFor();
  assert.match(await details.textContent(), /Agent idk8s-eu.*Kubernetes.*eu.*Offline/s);
  await details.getByRole('button', { name: 'Copy the agent id' }).click();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), 'k8s-eu');
  await details.getByRole('button', { name: 'Mint credential' }).click();
  const shown = page.locator('dialog[open]').last();
  await shown.locator('[data-token]').waitFor();
  const token = await shown.locator('[data-token]').textContent();
  assert.match(await shown.textContent(), new RegExp(`helm install k8s-eu charts/streamspace-k8s-agent .*--set token.value=${token}`));
  await shown.getByRole('button', { name: 'Copy the token' }).click();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), token);
  await shown.getByRole('button', { name: 'Done' }).click();
  await until('two credentials listed', async () => (await details.locator('tr[data-credential]').count()) === 2);
  await details.locator('tr[data-credential] >> text=Revoke').first().click();
  await confirm(page, /is disconnected at once/, 'Revoke');
  await details.locator('text=/Revoked/').waitFor();
  await details.getByRole('button', { name: 'Rotate credentials' }).click();
  await confirm(page, /revoke all others/, 'Rotate');
  await page.locator('dialog[open] >> text=Done').click();
  await page.screenshot({ path: join(ARTIFACTS, 'page-agent-details.png') });
  await details.getByRole('button', { name: 'Close' }).click();

  // Registering shows the one-time token and the line that starts the agent.
  await page.click('text=Register agent');
  await page.fill('dialog[open] input[name=agent_id]', 'edge-2');
  await page.selectOption('dialog[open] select[name=platform]', 'local');
  await page.click('dialog[open] button[type=submit]');
  const registered = page.locator('dialog[open]');
  await registered.locator('[data-token]').waitFor();
  const line = await registered.locator('[data-command="On the desktop host"]').textContent();
  assert.match(line, /^AGENT_ID=edge-2 CONTROL_PLANE_URL=ws:\/\/127\.0\.0\.1:\d+ AGENT_TOKEN=\S+ PLATFORM=local streamspace-k8s-agent$/);
  await registered.getByRole('button', { name: 'Done' }).click();
  await page.waitForSelector('tr[data-agent="edge-2"]');

  // A Docker agent is registered the same way; its lines mount the engine's socket.
  await page.click('text=Register agent');
  await page.fill('dialog[open] input[name=agent_id]', 'docker-2');
  await page.selectOption('dialog[open] select[name=platform]', 'docker');
  await page.click('dialog[open] button[type=submit]');
  await registered.locator('[data-token]').waitFor();
  const dockerLine = await registered.locator('[data-command="docker run (next to the engine)"]').textContent();
  assert.match(dockerLine, /-e AGENT_ID=docker-2 .* -e PLATFORM=docker .*-v \/var\/run\/docker\.sock:\/var\/run\/docker\.sock/);
  await registered.getByRole('button', { name: 'Done' }).click();
  assert.match(await page.textContent('tr[data-agent="docker-2"]'), /Docker.*Offline/s);
  await page.click('tr[data-agent="docker-2"] >> text=Remove');
  await confirm(page, /It has no active sessions/, 'Remove agent');
  await page.waitForSelector('tr[data-agent="docker-2"]', { state: 'detached' });

  // Removing says what happens to its sessions.
  await page.click('tr[data-agent="edge-2"] >> text=Remove');
  await confirm(page, /It has no active sessions/, 'Remove agent');
  await page.waitForSelector('tr[data-agent="edge-2"]', { state: 'detached' });
  await page.screenshot({ path: join(ARTIFACTS, 'page-agents.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});

test('auto-refresh keeps the filters, the scroll position and an open dialog; deep links and back work', async () => {
  const page = await signIn(browser, stack.base, 'admin', 'admin-password');
  await page.setViewportSize({ width: 1280, height: 300 });
  await page.goto(`${stack.base}/agents?platform=local`);
  await page.waitForSelector('tr[data-agent="local-1"]');
  assert.equal(await page.inputValue('select[name=platform]'), 'local');
  await page.selectOption('select[data-refresh=agents]', '5');
  await page.evaluate(() => window.scrollTo(0, 120));
  const scrolled = await page.evaluate(() => window.scrollY);
  assert.ok(scrolled > 0, 'the page can scroll');
  await page.click('tr[data-agent="local-1"] >> text=Details');
  await page.locator('dialog[open] h3', { hasText: 'Credentials' }).waitFor();
  const stamp = await page.textContent('.stamp');
  await until('an automatic refresh', async () => (await page.textContent('.stamp')) !== stamp, 12000);
  assert.equal(await page.locator('dialog[open]').count(), 1, 'the dialog stayed open');
  assert.equal(await page.inputValue('select[name=platform]'), 'local');
  assert.equal(await page.evaluate(() => window.scrollY), scrolled);
  await page.keyboard.press('Escape');
  await page.selectOption('select[data-refresh=agents]', '0');

  // Navigation is history: back returns to the filtered page.
  await page.click('nav.main >> text=Users');
  await page.waitForSelector('tr[data-user="admin"]');
  await page.goBack();
  await page.waitForSelector('tr[data-agent="local-1"]');
  assert.equal(new URL(page.url()).search, '?platform=local');
  await page.close();
});

test('templates, users and audit: every field, every confirmation, filters and paging', async () => {
  const page = await signIn(browser, stack.base, 'admin', 'admin-password');
  const errors = watchErrors(page);
  await page.click('nav.main >> text=Templates');
  await page.click('text=New template');
  const form = page.locator('dialog[open]');
  await form.locator('input[name=name]').fill('xfce');
  await form.locator('input[name=display_name]').fill('Xfce desktop');
  await form.locator('input[name=image]').fill('streamspace/desktop:1');
  await form.locator('input[name=vnc_port]').fill('5901');
  await form.locator('input[name=cpu]').fill('2');
  await form.locator('input[name=memory]').fill('4Gi');
  await form.locator('textarea[name=env]').fill('TZ=Europe/Paris\nnot a variable');
  await form.locator('input[value=kubernetes]').check();
  await form.locator('button[type=submit]').click();
  assert.match(await form.locator('.error').textContent(), /Environment, line 2: write NAME=value/);
  await form.locator('textarea[name=env]').fill('TZ=Europe/Paris');
  await form.locator('button[type=submit]').click();
  await page.waitForSelector('tr[data-template="xfce"]');
  const saved = await stack.api('/api/v1/templates/xfce');
  assert.deepEqual([saved.vnc_port, saved.default_resources, saved.env, saved.platforms],
    [5901, { cpu: '2', memory: '4Gi' }, { TZ: 'Europe/Paris' }, ['kubernetes']]);
  await page.click('tr[data-template="xfce"] >> text=Edit');
  await page.fill('dialog[open] input[name=display_name]', 'Xfce');
  await page.click('dialog[open] button[type=submit]');
  await page.waitForSelector('tr[data-template="xfce"] >> text=Xfce');
  await page.screenshot({ path: join(ARTIFACTS, 'page-templates.png'), fullPage: true });
  await page.click('tr[data-template="xfce"] >> text=Delete');
  await confirm(page, /Desktops already running keep running/, 'Delete template');
  await page.waitForSelector('tr[data-template="xfce"]', { state: 'detached' });

  await page.click('nav.main >> text=Users');
  await page.click('text=New user');
  await page.fill('dialog[open] input[name=username]', 'frank');
  await page.fill('dialog[open] input[name=password]', 'frank-password');
  await page.click('dialog[open] button[type=submit]');
  const frank = page.locator('tr[data-user="frank"]');
  await frank.waitFor();
  await frank.locator('select[name=role]').selectOption('admin');
  await until('frank an admin', async () => (await stack.api('/api/v1/users')).users.find((u) => u.username === 'frank').role === 'admin');
  await frank.getByRole('button', { name: 'Reset password' }).click();
  await page.fill('dialog[open] input[name=password]', 'frank-new-password');
  await page.click('dialog[open] button[type=submit]');
  await until('the new password works', async () => Boolean(await stack.login('frank', 'frank-new-password').catch(() => null)));
  await page.screenshot({ path: join(ARTIFACTS, 'page-users.png'), fullPage: true });
  await frank.getByRole('button', { name: 'Disable' }).click();
  await confirm(page, /signed out and their open desktop viewers close/, 'Disable');
  await frank.locator('text=Disabled').waitFor();
  await frank.getByRole('button', { name: 'Delete' }).click();
  await confirm(page, /audit log keeps their name/, 'Delete user');
  await frank.waitFor({ state: 'detached' });
  await page.setViewportSize(PHONE);
  await assertNoOverflow(page, 'the users page');
  await page.setViewportSize({ width: 1280, height: 900 });

  await page.click('nav.main >> text=Audit');
  await page.selectOption('select[name=action]', 'user_delete');
  // The filtered list replaces the whole one (which has a "user delete" row too).
  await page.waitForFunction(() => document.querySelectorAll('tr[data-entry]').length === 1);
  await page.waitForSelector('tr[data-entry] >> text=user delete');
  assert.match(await page.textContent('tr[data-entry]'), /admin.*user/s);
  await page.selectOption('select[name=action]', '');
  await page.fill('input[name=user]', 'admin');
  await page.dispatchEvent('input[name=user]', 'change');
  await page.waitForSelector('tr[data-entry] >> text=template create');
  // Readable details, not JSON.
  assert.equal(await page.locator('tr[data-entry] td:has-text("{")').count(), 0);
  await page.screenshot({ path: join(ARTIFACTS, 'page-audit.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});

test('sessions: every user\'s, filtered and paged; every page fits a phone', async () => {
  const grace = await stack.createUser('grace', 'grace-password');
  for (let i = 0; i < 27; i += 1) {
    const session = await stack.api('/api/v1/sessions', { method: 'POST', body: { template: 'broken', persistent_home: false }, token: grace });
    await until('it failed', async () => (await stack.api(`/api/v1/sessions/${session.id}`)).state === 'failed');
  }
  const page = await signIn(browser, stack.base, 'admin', 'admin-password');
  await page.goto(`${stack.base}/sessions?user=grace`);
  await page.waitForSelector('tr[data-session]');
  assert.equal(await page.locator('tr[data-session]').count(), 25);
  await page.click('text=Older');
  await page.waitForSelector('text=Page 2');
  assert.equal(await page.locator('tr[data-session]').count(), 2);
  await page.click('text=Newer');
  await page.waitForSelector('text=Page 1');
  await page.selectOption('select[name=state]', 'running');
  await page.waitForSelector('text=No session matches these filters.');
  // A running one is deleted from here too, after a confirmation naming whose it is.
  const running = await stack.runningSession(grace, 'xterm');
  await page.selectOption('select[name=state]', 'pending');
  await page.selectOption('select[name=state]', 'running');
  await page.click(`tr[data-session="${running}"] >> text=Delete`);
  await confirm(page, /grace's xterm desktop stops/, 'Delete session');
  await until('it ended', async () => (await stack.api(`/api/v1/sessions/${running}`)).state === 'terminated', 20000);
  await page.screenshot({ path: join(ARTIFACTS, 'page-sessions.png'), fullPage: true });

  await page.setViewportSize(PHONE);
  for (const path of ['/desktops', '/agents', '/sessions?user=grace', '/templates', '/users', '/audit']) {
    await page.goto(`${stack.base}${path}`);
    await page.waitForSelector('main table, main .cards');
    await page.waitForTimeout(300);
    await assertNoOverflow(page, path);
  }
  await page.screenshot({ path: join(ARTIFACTS, 'page-audit-phone.png'), fullPage: true });
  await page.close();
});

test('everyone changes their own password from the header', async () => {
  await stack.createUser('hana', 'hana-password');
  const page = await signIn(browser, stack.base, 'hana', 'hana-password');
  await page.click('#change-password');
  await page.fill('dialog[open] input[name=current_password]', 'wrong-password');
  await page.fill('dialog[open] input[name=new_password]', 'hana-new-password');
  await page.click('dialog[open] button[type=submit]');
  await page.waitForSelector('dialog[open] .error >> text=that is not your current password');
  await page.fill('dialog[open] input[name=current_password]', 'hana-password');
  await page.click('dialog[open] button[type=submit]');
  await page.waitForSelector('dialog[open]', { state: 'detached' });
  // Still signed in (with the fresh token), and the new password is the one that works.
  await page.reload();
  await page.waitForSelector('h1.page-title >> text=Desktops');
  await stack.login('hana', 'hana-new-password');
  await page.close();
});

test('the pages work from the keyboard: navigation, dialogs that take and give back focus', async () => {
  const page = await signIn(browser, stack.base, 'admin', 'admin-password');
  await page.waitForSelector('h1.page-title');
  // Tab from the top of the page to the Agents link and follow it.
  await page.focus('a.brand');
  let reached = false;
  for (let i = 0; i < 10 && !reached; i += 1) {
    await page.keyboard.press('Tab');
    reached = await page.evaluate(() => document.activeElement?.textContent === 'Agents');
  }
  assert.ok(reached, 'the Agents link is reachable with Tab');
  await page.keyboard.press('Enter');
  await page.waitForSelector('h1.page-title >> text=Agents');
  assert.equal(await page.getAttribute('nav.main a[href="/agents"]', 'aria-current'), 'page');
  // A dialog opened from the keyboard takes the focus, Escape closes it, focus comes back.
  await page.focus('text=Register agent');
  await page.keyboard.press('Enter');
  await page.waitForSelector('dialog[open]');
  assert.equal(await page.evaluate(() => document.activeElement?.name), 'agent_id');
  assert.equal(await page.getAttribute('dialog[open]', 'aria-labelledby') !== null, true);
  await page.keyboard.press('Escape');
  await page.waitForSelector('dialog[open]', { state: 'detached' });
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Register agent');
  await page.close();
});

test('the API reference renders the control plane\'s own document and tries a call with the app\'s sign-in', async () => {
  const page = await signIn(browser, stack.base, 'admin', 'admin-password');
  const errors = watchErrors(page);
  await page.waitForSelector('h1.page-title');
  // The header's link opens the reference in a new tab.
  const [reference] = await Promise.all([page.context().waitForEvent('page'), page.click('header.top a[href="/api-docs"]')]);
  reference.on('pageerror', (e) => errors.push(e.message));
  reference.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  await reference.waitForSelector('.opblock-summary');
  const document = await stack.api('/api/v1/openapi.json');
  const operations = Object.values(document.paths).flatMap((item) => Object.keys(item));
  assert.ok(operations.length >= 30);
  assert.equal(await reference.locator('.opblock').count(), operations.length, 'every operation is listed');
  assert.match(await reference.textContent('.info .title'), /StreamSpace control plane/);
  // "Try it out" on GET /api/v1/auth/me goes with the app's login token.
  await reference.click('#operations-auth-auth_me .opblock-summary');
  await reference.click('#operations-auth-auth_me .try-out__btn');
  await reference.click('#operations-auth-auth_me .execute');
  const answer = reference.locator('#operations-auth-auth_me .live-responses-table tbody .response-col_status').first();
  await answer.waitFor();
  assert.equal((await answer.textContent()).trim(), '200');
  assert.match(await reference.textContent('#operations-auth-auth_me .live-responses-table'), /"username": "admin"/);
  await reference.screenshot({ path: join(ARTIFACTS, 'page-api-reference.png') });
  assert.deepEqual(errors, []);
  await reference.close();
  await page.close();
});
