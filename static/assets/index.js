// Sign-in, the user's desktops and homes, and for admins: agents, templates, users and the audit log.

import { api, ApiError, el, setToken, token } from '/assets/api.js';

const $ = (selector) => document.querySelector(selector);
let me = null;
let refreshTimer = null;

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : '—';
}

function stateCell(value) {
  return el('td', { class: `state state-${value}` }, value);
}

function fill(tableId, rows) {
  const body = document.querySelector(`#${tableId} tbody`);
  body.replaceChildren(...rows);
}

function reportTo(id) {
  return (e) => {
    $(id).textContent = e instanceof ApiError ? e.message : String(e);
  };
}

async function refreshSessions() {
  const { sessions } = await api('/api/v1/sessions');
  fill(
    'sessions',
    sessions.map((s) =>
      el(
        'tr',
        { 'data-session': s.id },
        el('td', {}, el('code', {}, s.id.slice(0, 8))),
        el('td', {}, s.owner),
        el('td', {}, s.template),
        el('td', { class: `state state-${s.state}`, title: s.state_reason ?? '' }, s.state, s.state_reason ? el('div', { class: 'reason' }, s.state_reason) : ''),
        el('td', {}, s.agent_id ?? '—'),
        el('td', {}, when(s.started_at)),
        el(
          'td',
          {},
          s.state === 'running' ? el('a', { href: `/vnc-viewer/${s.id}`, target: '_blank' }, 'Open') : '',
          ' ',
          ['terminated', 'failed', 'lost'].includes(s.state)
            ? ''
            : el('button', { class: 'danger', type: 'button', onclick: () => api(`/api/v1/sessions/${s.id}`, { method: 'DELETE' }).then(refresh) }, 'Delete'),
        ),
      ),
    ),
  );
}

async function refreshHomes() {
  const { homes } = await api('/api/v1/homes');
  fill(
    'homes',
    homes.map((h) =>
      el(
        'tr',
        { 'data-home': h.id },
        el('td', {}, h.owner),
        el('td', {}, h.template),
        el('td', {}, `${h.agent_id} (${h.platform})`),
        el('td', { class: `state state-${h.state}` }, h.state, h.state_reason ? el('div', { class: 'reason' }, h.state_reason) : ''),
        el('td', {}, when(h.last_used_at)),
        el('td', {}, h.in_use_by ? el('code', {}, h.in_use_by.slice(0, 8)) : '—'),
        el(
          'td',
          {},
          h.in_use_by || h.state === 'deleting'
            ? ''
            : el('button', { class: 'danger', type: 'button', onclick: () => confirm(`Delete ${h.owner}'s home for ${h.template}? Its files are removed for good.`) && api(`/api/v1/homes/${h.id}`, { method: 'DELETE' }).then(refresh, reportTo('#home-error')) }, 'Delete'),
        ),
      ),
    ),
  );
}

async function refreshTemplates() {
  const { templates } = await api('/api/v1/templates');
  $('#new-session select').replaceChildren(...templates.map((t) => el('option', { value: t.name }, t.display_name)));
  if (me.role !== 'admin') return;
  fill(
    'templates',
    templates.map((t) =>
      el(
        'tr',
        {},
        el('td', {}, t.name),
        el('td', {}, el('code', {}, t.image)),
        el('td', {}, t.vnc_port),
        el('td', {}, JSON.stringify(t.default_resources)),
        el('td', {}, el('button', { class: 'danger', type: 'button', onclick: () => api(`/api/v1/templates/${t.name}`, { method: 'DELETE' }).then(refresh) }, 'Delete')),
      ),
    ),
  );
}

async function refreshAdmin() {
  const [{ agents }, { users }, { entries }] = await Promise.all([
    api('/api/v1/agents'),
    api('/api/v1/users'),
    api('/api/v1/audit?limit=25'),
  ]);
  fill(
    'agents',
    agents.map((a) =>
      el(
        'tr',
        {},
        el('td', {}, a.agent_id),
        el('td', {}, a.platform),
        el('td', {}, a.region ?? '—'),
        stateCell(a.status),
        el('td', {}, `${a.active_sessions} / ${a.capacity.max_sessions ?? '?'}`),
        el('td', {}, when(a.last_heartbeat)),
        el('td', {}, el('button', { class: 'danger', type: 'button', onclick: () => confirm(`Delete agent ${a.agent_id}?`) && api(`/api/v1/agents/${a.agent_id}`, { method: 'DELETE' }).then(refresh) }, 'Delete')),
      ),
    ),
  );
  fill(
    'users',
    users.map((u) =>
      el(
        'tr',
        {},
        el('td', {}, u.username),
        el('td', {}, u.role),
        el('td', {}, u.disabled ? 'disabled' : 'active'),
        el(
          'td',
          {},
          u.id === me.id
            ? ''
            : el('button', { class: 'secondary', type: 'button', onclick: () => api(`/api/v1/users/${u.id}`, { method: 'PATCH', body: { disabled: !u.disabled } }).then(refresh) }, u.disabled ? 'Enable' : 'Disable'),
        ),
      ),
    ),
  );
  fill(
    'audit',
    entries.map((e) =>
      el(
        'tr',
        {},
        el('td', {}, when(e.at)),
        el('td', {}, e.action),
        el('td', {}, e.actor_username ?? e.actor_agent_id ?? '—'),
        el('td', {}, e.target_type ? `${e.target_type} ${e.target_id}` : '—'),
        el('td', {}, el('code', {}, JSON.stringify(e.details))),
      ),
    ),
  );
}

async function refresh() {
  try {
    await Promise.all([refreshSessions(), refreshHomes(), me.role === 'admin' ? refreshAdmin() : null]);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return signOut();
  }
}

function signOut() {
  setToken(null);
  me = null;
  clearInterval(refreshTimer);
  $('#app').hidden = true;
  $('#signin').hidden = false;
}

async function start() {
  try {
    me = await api('/api/v1/auth/me');
  } catch (e) {
    return signOut();
  }
  const next = new URLSearchParams(location.search).get('next');
  if (next && next.startsWith('/vnc-viewer/')) {
    location.replace(next);
    return;
  }
  $('#signin').hidden = true;
  $('#app').hidden = false;
  $('#whoami').textContent = `${me.username} (${me.role})`;
  $('#admin').hidden = me.role !== 'admin';
  await refreshTemplates();
  await refresh();
  clearInterval(refreshTimer);
  refreshTimer = setInterval(refresh, 2000);
}

function formData(form) {
  return Object.fromEntries(new FormData(form).entries());
}

$('#signin-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  $('#signin-error').textContent = '';
  try {
    const { token: value } = await api('/api/v1/auth/login', { method: 'POST', body: formData(event.target) });
    setToken(value);
    await start();
  } catch (e) {
    reportTo('#signin-error')(e);
  }
});

$('#signout').addEventListener('click', signOut);

$('#new-session').addEventListener('submit', async (event) => {
  event.preventDefault();
  $('#new-session-error').textContent = '';
  const { template, platform, cpu, memory, persistent_home } = formData(event.target);
  const resources = {};
  if (cpu) resources.cpu = cpu;
  if (memory) resources.memory = memory;
  const body = { template, resources, persistent_home: persistent_home === 'on' };
  if (platform) body.platform = platform;
  api('/api/v1/sessions', { method: 'POST', body }).then(refresh, reportTo('#new-session-error'));
});

$('#register-agent').addEventListener('submit', async (event) => {
  event.preventDefault();
  $('#agent-error').textContent = '';
  const body = formData(event.target);
  if (!body.region) delete body.region;
  try {
    const { credential } = await api('/api/v1/agents/register', { method: 'POST', body });
    $('#agent-token').replaceChildren('AGENT_TOKEN for ', el('strong', {}, body.agent_id), ' (shown only now): ', el('div', { class: 'token' }, credential.token));
    refresh();
  } catch (e) {
    reportTo('#agent-error')(e);
  }
});

$('#new-template').addEventListener('submit', (event) => {
  event.preventDefault();
  $('#template-error').textContent = '';
  api('/api/v1/templates', { method: 'POST', body: formData(event.target) }).then(refreshTemplates, reportTo('#template-error'));
});

$('#new-user').addEventListener('submit', (event) => {
  event.preventDefault();
  $('#user-error').textContent = '';
  api('/api/v1/users', { method: 'POST', body: formData(event.target) }).then(refresh, reportTo('#user-error'));
});

if (token()) start();
else signOut();
