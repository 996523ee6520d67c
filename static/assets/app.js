// The app: sign-in, the header and its navigation, and a router over the pages. Each page is
// its own path (`/desktops`, `/agents`, …) served as this same document, so deep links, the
// back button and reloads work; filters live in the query string for the same reason.

import { api, ApiError, setToken, token } from '/assets/api.js';
import { el, field, formDialog, reason } from '/assets/ui.js';
import desktops from '/assets/pages/desktops.js';
import agents from '/assets/pages/agents.js';
import sessions from '/assets/pages/sessions.js';
import templates from '/assets/pages/templates.js';
import users from '/assets/pages/users.js';
import audit from '/assets/pages/audit.js';
import recordings from '/assets/pages/recordings.js';

const PAGES = [desktops, agents, sessions, templates, users, audit, recordings];
const $ = (selector) => document.querySelector(selector);

const app = {
  me: null,
  current: null,
  /** Goes to `path` (with its query) as a new history entry. */
  navigate(path) {
    history.pushState({}, '', path);
    route();
  },
  /** The current query string's parameters. */
  query() {
    return new URLSearchParams(location.search);
  },
  /** Replaces the query string (filters) without a new history entry. */
  setQuery(params) {
    const entries = Object.entries(params).filter(([, v]) => v !== '' && v !== undefined && v !== null);
    const search = new URLSearchParams(entries).toString();
    history.replaceState({}, '', `${location.pathname}${search ? `?${search}` : ''}`);
  },
  /** Called by pages when the API says the login is no longer valid. */
  expired() {
    signOut('Your sign-in expired; sign in again.');
  },
};

function pageFor(path) {
  const page = PAGES.find((p) => p.path === path) ?? desktops;
  return page.admin && app.me?.role !== 'admin' ? desktops : page;
}

function route() {
  const page = pageFor(location.pathname);
  if (location.pathname !== page.path) history.replaceState({}, '', page.path);
  app.current?.stop?.();
  for (const link of document.querySelectorAll('nav.main a')) {
    if (link.getAttribute('href') === page.path) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.title = `${page.title} · StreamSpace`;
  const root = $('#page');
  root.replaceChildren(el('h1', { class: 'page-title' }, page.title));
  app.current = page.mount(root, app);
  root.focus({ preventScroll: true });
}

function renderHeader() {
  const nav = $('nav.main');
  nav.replaceChildren(...PAGES.filter((p) => !p.admin || app.me.role === 'admin').map((page) => el('a', { href: page.path }, page.title)));
  $('#whoami').replaceChildren(el('strong', {}, app.me.username), ` (${app.me.role})`);
}

function signOut(message = '') {
  setToken(null);
  app.me = null;
  app.current?.stop?.();
  app.current = null;
  $('#app').hidden = true;
  $('#signin').hidden = false;
  $('#signin-error').textContent = message;
  $('#signin input[name=username]').focus();
}

async function start() {
  try {
    app.me = await api('/api/v1/auth/me');
  } catch (e) {
    return signOut(e instanceof ApiError && e.status === 401 ? '' : reason(e));
  }
  const next = app.query().get('next');
  if (next && next.startsWith('/vnc-viewer/')) {
    location.replace(next);
    return;
  }
  $('#signin').hidden = true;
  $('#app').hidden = false;
  renderHeader();
  route();
}

function changePassword() {
  formDialog('Change your password', [
    field('Current password', el('input', { name: 'current_password', type: 'password', required: '', autocomplete: 'current-password', autofocus: '' })),
    field('New password', el('input', { name: 'new_password', type: 'password', required: '', minlength: '8', autocomplete: 'new-password' }), 'At least 8 characters.'),
  ], async (form) => {
    const answer = await api('/api/v1/auth/password', { method: 'POST', body: Object.fromEntries(form) });
    setToken(answer.token);
    return true;
  }, { action: 'Change password' });
}

document.addEventListener('click', (event) => {
  const link = event.target.closest('a');
  if (!link || link.target || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || !PAGES.some((p) => p.path === url.pathname)) return;
  event.preventDefault();
  app.navigate(url.pathname + url.search);
});

window.addEventListener('popstate', () => app.me && route());

$('#signin-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  $('#signin-error').textContent = '';
  try {
    const { token: value } = await api('/api/v1/auth/login', { method: 'POST', body: Object.fromEntries(new FormData(event.target)) });
    setToken(value);
    event.target.reset();
    await start();
  } catch (e) {
    $('#signin-error').textContent = reason(e);
  }
});

$('#signout').addEventListener('click', () => signOut());
$('#change-password').addEventListener('click', changePassword);

if (token()) start();
else signOut();
