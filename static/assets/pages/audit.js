// Audit (admins): what happened, newest first, filtered by action, user and time, a page at a
// time ("Older"), with details in words.

import { api } from '/assets/api.js';
import { el, field, reason, shortId, table, when } from '/assets/ui.js';

const PAGE = 50;
const ACTIONS = ['', 'login', 'login_failed', 'password_change', 'user_create', 'user_update', 'user_delete',
  'session_create', 'session_delete', 'session_remove', 'session_idle_stop', 'session_lifetime_stop',
  'session_hibernate', 'session_wake', 'session_idle_hibernate',
  'session_share', 'session_share_revoke', 'home_delete', 'vnc_connect', 'vnc_disconnect', 'recording_delete',
  'agent_register', 'agent_connect', 'agent_disconnect', 'agent_goodbye', 'agent_timeout', 'agent_offline', 'agent_error',
  'agent_refused', 'agent_delete',
  'credential_mint', 'credential_rotate', 'credential_revoke', 'template_create', 'template_update', 'template_delete'];

const LABELS = {
  bytes_to_viewer: 'to viewer', bytes_from_viewer: 'from viewer', duration_ms: 'lasted', agent_id: 'agent',
  stream_id: 'stream', template: 'template', username: 'user', reason: 'why', state: 'state', role: 'role',
};

function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** Details as short phrases, not JSON. */
function details(entry) {
  const parts = Object.entries(entry.details ?? {}).filter(([, v]) => v !== null && v !== undefined && v !== '');
  if (!parts.length) return '—';
  return el('ul', { class: 'plain details' }, parts.map(([key, value]) => {
    let text = value;
    if (key.startsWith('bytes_')) text = bytes(value);
    else if (key === 'duration_ms') text = `${(value / 1000).toFixed(1)} s`;
    else if (typeof value === 'boolean') text = value ? 'yes' : 'no';
    else if (typeof value === 'object') text = JSON.stringify(value);
    return el('li', {}, el('span', { class: 'muted' }, `${LABELS[key] ?? key.replaceAll('_', ' ')}: `), String(text));
  }));
}

/** A datetime-local input's value as RFC 3339, in the browser's time zone. */
function rfc3339(local) {
  return local ? new Date(local).toISOString() : '';
}

export default {
  path: '/audit',
  title: 'Audit',
  admin: true,
  mount(root, app) {
    const query = app.query();
    const action = el('select', { name: 'action' }, ACTIONS.map((a) => {
      const option = el('option', { value: a }, a ? a.replaceAll('_', ' ') : 'All actions');
      option.selected = a === (query.get('action') ?? '');
      return option;
    }));
    const user = el('input', { name: 'user', value: query.get('user') ?? '', placeholder: 'User name' });
    const since = el('input', { name: 'since', type: 'datetime-local', value: query.get('since') ?? '' });
    const until = el('input', { name: 'until', type: 'datetime-local', value: query.get('until') ?? '' });
    const list = el('div', { class: 'list' });
    const error = el('p', { class: 'error', role: 'alert' });
    const more = el('button', { type: 'button', class: 'secondary', hidden: '' }, 'Older');
    let before = null;
    let rows = [];

    const load = async (append = false) => {
      app.setQuery({ action: action.value, user: user.value.trim(), since: since.value, until: until.value });
      const params = new URLSearchParams(Object.entries({
        action: action.value, user: user.value.trim(), since: rfc3339(since.value), until: rfc3339(until.value),
        limit: String(PAGE), before: append ? before : '',
      }).filter(([, v]) => v));
      try {
        const { entries, next_before: next } = await api(`/api/v1/audit?${params}`);
        error.textContent = '';
        rows = append ? rows.concat(entries) : entries;
        before = next;
        more.hidden = !next;
        list.replaceChildren(table(['When', 'Action', 'Who', 'Target', 'Details', 'From'], rows.map((e) => ({
          attributes: { 'data-entry': e.id },
          cells: [
            when(e.at), e.action.replaceAll('_', ' '),
            e.actor_username ?? (e.actor_agent_id ? el('span', {}, 'agent ', el('code', {}, e.actor_agent_id)) : '—'),
            e.target_type ? el('span', {}, `${e.target_type} `, shortId(e.target_id)) : '—',
            details(e), e.source_ip ?? '—',
          ],
        })), 'Nothing recorded matches these filters.'));
      } catch (e) {
        if (e.status === 401) return app.expired();
        error.textContent = reason(e);
      }
    };
    for (const input of [action, user, since, until]) input.addEventListener('change', () => load());
    more.addEventListener('click', () => load(true));
    root.append(
      el('div', { class: 'toolbar' }, field('Action', action), field('User', user), field('From', since), field('Until', until)),
      error, list, el('div', { class: 'pager' }, more),
    );
    load();
    return {};
  },
};
