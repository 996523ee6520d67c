// Sharing a desktop (its owner): invite a user to watch it or to use it, see who it is shared
// with and who is connected now, change a share's mode or revoke it (their viewer closes at
// once). Guests find it under "Shared with me" on the Desktops page.

import { api } from '/assets/api.js';
import { ago, dialog, el, field, reason, select, table, when } from '/assets/ui.js';

export const MODE_NAMES = { view: 'View only', control: 'View and control' };

function sharesTable(shares, act) {
  return table(['User', 'May', 'Since', ''], shares.map((s) => ({
    attributes: { 'data-share': s.username },
    cells: [
      s.username,
      select('mode', Object.entries(MODE_NAMES), s.mode, { 'aria-label': `What ${s.username} may do`, onchange: (e) => act.change(s, e.target.value) }),
      el('span', { title: when(s.created_at) }, ago(s.created_at)),
      el('button', { type: 'button', class: 'danger small', onclick: () => act.revoke(s) }, 'Revoke'),
    ],
  })), 'Not shared with anyone.');
}

function viewersTable(viewers) {
  return table(['User', 'Connection', 'From', 'Since'], viewers.map((v) => ({
    attributes: { 'data-viewer': v.username },
    cells: [v.username, MODE_NAMES[v.mode], v.ip ?? '—', el('span', { title: when(v.connected_at) }, ago(v.connected_at))],
  })), 'Nobody is connected.');
}

/** The sharing dialog of `session`; resolves when it closes. */
export function shareDialog(session, title) {
  return dialog(`Share ${title}`, (body) => {
    const error = el('p', { class: 'error', role: 'alert' });
    const shares = el('div', { class: 'list', 'aria-live': 'polite' });
    const viewers = el('div', { class: 'list', 'aria-live': 'polite' });
    const base = `/api/v1/sessions/${session.id}`;
    const load = async () => {
      try {
        const [{ shares: list }, { viewers: connected }] = await Promise.all([api(`${base}/shares`), api(`${base}/viewers`)]);
        shares.replaceChildren(sharesTable(list, act));
        viewers.replaceChildren(viewersTable(connected));
      } catch (e) {
        error.textContent = reason(e);
      }
    };
    const run = async (promise) => {
      error.textContent = '';
      try {
        await promise;
      } catch (e) {
        error.textContent = reason(e);
      }
      await load();
    };
    const act = {
      change: (share, mode) => run(api(`${base}/shares`, { method: 'POST', body: { username: share.username, mode } })),
      revoke: (share) => run(api(`${base}/shares/${share.user_id}`, { method: 'DELETE' })),
    };
    const username = el('input', { name: 'username', required: '', autocomplete: 'off', autofocus: '' });
    const mode = select('mode', Object.entries(MODE_NAMES), 'view');
    const form = el('form', { class: 'toolbar' }, field('User name', username), field('May', mode), el('button', { type: 'submit' }, 'Share'));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      run(api(`${base}/shares`, { method: 'POST', body: { username: username.value.trim(), mode: mode.value } })).then(() => {
        if (!error.textContent) form.reset();
      });
    });
    body.append(
      el('p', { class: 'note' }, 'People you share with open it from "Shared with me". View-only guests watch: their keyboard, mouse and clipboard never reach your desktop. Changing or revoking a share closes their viewer at once.'),
      form, error,
      el('h3', {}, 'Shared with'), shares,
      el('h3', {}, 'Connected now'), viewers,
      el('div', { class: 'actions' }, el('button', { type: 'button', class: 'secondary', onclick: load }, 'Refresh')),
    );
    load();
  }, { wide: true });
}
