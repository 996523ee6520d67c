// Recordings (admins): every recorded viewer stream, newest first ("Older" for the next
// page), with who watched which desktop, how long, how large, whether the disk kept up;
// Play opens the player, Delete removes the recording and its file.

import { api } from '/assets/api.js';
import { confirmDialog, el, reason, shortId, table, when } from '/assets/ui.js';

const PAGE = 50;

function size(n) {
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function length(ms) {
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}

export default {
  path: '/recordings',
  title: 'Recordings',
  admin: true,
  mount(root, app) {
    const list = el('div', { class: 'list' });
    const error = el('p', { class: 'error', role: 'alert' });
    const more = el('button', { type: 'button', class: 'secondary', hidden: '' }, 'Older');
    let before = null;
    let rows = [];
    const load = async (append = false) => {
      const params = new URLSearchParams({ limit: String(PAGE), ...(append && before ? { before } : {}) });
      try {
        const { recordings, next_before: next } = await api(`/api/v1/recordings?${params}`);
        error.textContent = '';
        rows = append ? rows.concat(recordings) : recordings;
        before = next;
        more.hidden = !next;
        list.replaceChildren(table(['Began', 'User', 'Desktop', 'Length', 'Size', ''], rows.map((r) => ({
          attributes: { 'data-recording': r.id },
          cells: [
            when(r.started_at), r.username,
            el('span', {}, r.template, ' ', r.session_id ? shortId(r.session_id) : ''),
            r.ended_at ? length(r.duration_ms) : 'recording…',
            el('span', {}, size(r.bytes), r.complete ? '' : el('div', { class: 'reason error' }, 'cut short: the disk fell behind')),
            el('span', { class: 'row-actions' },
              el('a', { class: 'button small', href: `/recording-player/${r.id}`, target: '_blank', rel: 'noopener' }, 'Play'),
              el('button', { type: 'button', class: 'danger small', onclick: async () => {
                if (!await confirmDialog('Delete this recording?', 'Its file is removed for good.', 'Delete recording')) return;
                api(`/api/v1/recordings/${r.id}`, { method: 'DELETE' }).then(() => load(), (e) => { error.textContent = reason(e); });
              } }, 'Delete')),
          ],
        })), 'No recordings yet: a template with "Record its desktops" records every viewer of them.'));
      } catch (e) {
        if (e.status === 401) return app.expired();
        error.textContent = reason(e);
      }
    };
    more.addEventListener('click', () => load(true));
    root.append(error, list, el('div', { class: 'pager' }, more));
    load();
    return {};
  },
};
