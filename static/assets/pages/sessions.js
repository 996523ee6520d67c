// Sessions (admins): every user's, filtered by state, user, agent and platform, newest first,
// a page at a time.

import { api } from '/assets/api.js';
import {
  ago, badge, confirmDialog, el, field, pagerButtons, platform, PLATFORM_CHOICES, reason, select, shortId, table, when,
} from '/assets/ui.js';
import { autoRefresh } from '/assets/refresh.js';

const STATES = ['', 'pending', 'creating', 'running', 'degraded', 'terminating', 'terminated', 'failed', 'lost', 'hibernating', 'hibernated', 'waking'];
const PAGE = 25;

export default {
  path: '/sessions',
  title: 'Sessions',
  admin: true,
  mount(root, app) {
    const query = app.query();
    const filters = {
      state: select('state', STATES.map((s) => [s, s || 'All states']), query.get('state') ?? ''),
      user: el('input', { name: 'user', value: query.get('user') ?? '', placeholder: 'User name' }),
      agent_id: el('input', { name: 'agent_id', value: query.get('agent_id') ?? '', placeholder: 'Agent id' }),
      platform: select('platform', [['', 'All platforms'], ...PLATFORM_CHOICES], query.get('platform') ?? ''),
    };
    const list = el('div', { class: 'list' });
    const error = el('p', { class: 'error', role: 'alert' });
    const pager = el('div', { class: 'pager' });
    // Cursors of the pages shown so far: "Newer" goes back one.
    let cursors = [''];

    const load = async () => {
      const params = Object.fromEntries(Object.entries(filters).map(([k, input]) => [k, input.value.trim()]));
      app.setQuery(params);
      const search = new URLSearchParams(Object.entries({ ...params, limit: String(PAGE), before: cursors.at(-1) }).filter(([, v]) => v));
      try {
        const { sessions, next_before: next } = await api(`/api/v1/sessions?${search}`);
        error.textContent = '';
        list.replaceChildren(table(['Session', 'User', 'Template', 'State', 'Platform', 'Agent', 'Created', ''], sessions.map((s) => ({
          attributes: { 'data-session': s.id },
          cells: [
            shortId(s.id), s.owner, s.template,
            el('span', {}, badge(s.state), s.state_reason ? el('div', { class: 'reason' }, s.state_reason) : ''),
            platform(s.platform), s.agent_id ? el('code', {}, s.agent_id) : '—',
            el('span', { title: when(s.created_at) }, ago(s.created_at)),
            el('span', { class: 'row-actions' },
              s.state === 'running' ? el('a', { href: `/vnc-viewer/${s.id}`, target: '_blank', rel: 'noopener' }, 'Open') : '',
              ['terminated', 'failed', 'lost', 'terminating'].includes(s.state) ? '' : el('button', { type: 'button', class: 'danger small', onclick: async () => {
                if (!await confirmDialog('Delete this session?', `${s.owner}'s ${s.template} desktop stops and its viewers close.`, 'Delete session')) return;
                api(`/api/v1/sessions/${s.id}`, { method: 'DELETE' }).then(load, (e) => { error.textContent = reason(e); });
              } }, 'Delete')),
          ],
        })), 'No session matches these filters.'));
        pager.replaceChildren(...pagerButtons(cursors, next, load, ['Newer', 'Older']));
        refresh.stamp.textContent = `Updated ${new Date().toLocaleTimeString()}`;
      } catch (e) {
        if (e.status === 401) return app.expired();
        error.textContent = reason(e);
      }
    };
    const restart = () => {
      cursors = [''];
      load();
    };
    for (const input of Object.values(filters)) input.addEventListener('change', restart);
    const refresh = autoRefresh('sessions', load);
    root.append(
      el('div', { class: 'toolbar' }, ...Object.entries({ State: filters.state, User: filters.user, Agent: filters.agent_id, Platform: filters.platform }).map(([l, i]) => field(l, i)), refresh.control),
      error, list, pager, refresh.stamp,
    );
    load();
    return { stop: refresh.stop };
  },
};
