// Desktops (everyone): start one from a template, see one's own as cards, open, share,
// hibernate (opening a hibernated one wakes it), delete or remove them from the list; the desktops others shared with you; and the persistent homes
// that outlive them.

import { api, everything } from '/assets/api.js';
import {
  ago, badge, confirmDialog, el, field, platform, PLATFORM_NAMES, reason, shortId, table, when,
} from '/assets/ui.js';
import { autoRefresh } from '/assets/refresh.js';
import { MODE_NAMES, shareDialog } from '/assets/sharing.js';

const ENDED = ['terminated', 'failed', 'lost'];
const BUSY = { pending: 'Starting', creating: 'Starting', terminating: 'Stopping', hibernating: 'Hibernating', waking: 'Waking' };
// Opening a hibernated desktop wakes it (the viewer asks for it).
const OPENABLE = ['running', 'hibernated', 'waking'];

function progress(state) {
  if (!BUSY[state]) return '';
  return el('div', { class: 'progress', role: 'progressbar', 'aria-label': BUSY[state] }, el('span'));
}

function openLink(session) {
  if (!OPENABLE.includes(session.state)) return '';
  const label = session.state === 'running' ? 'Open' : 'Wake and open';
  return el('a', { class: 'button', href: `/vnc-viewer/${session.id}`, target: '_blank', rel: 'noopener' }, label);
}

function desktopCard(session, templates, act) {
  const template = templates.find((t) => t.name === session.template);
  const ended = ENDED.includes(session.state);
  const settling = ['terminating', 'hibernating'].includes(session.state);
  return el('article', { class: `card desktop state-${session.state}`, 'data-session': session.id },
    el('header', {}, el('h2', {}, template?.display_name ?? session.template), badge(session.state)),
    progress(session.state),
    session.state_reason ? el('p', { class: session.state === 'failed' || session.state === 'lost' ? 'reason error' : 'reason' }, session.state_reason) : '',
    el('dl', { class: 'facts compact' },
      el('dt', {}, 'Platform'), el('dd', {}, platform(session.platform)),
      el('dt', {}, 'Agent'), el('dd', {}, session.agent_id ? el('code', {}, session.agent_id) : '—'),
      el('dt', {}, 'Region'), el('dd', {}, session.region ?? '—'),
      el('dt', {}, 'Started'), el('dd', { title: when(session.started_at) }, session.started_at ? ago(session.started_at) : 'not yet'),
      el('dt', {}, 'Session'), el('dd', {}, shortId(session.id)),
    ),
    el('div', { class: 'actions' },
      openLink(session),
      ended || settling ? '' : el('button', { type: 'button', class: 'secondary', onclick: () => act.share(session, template) }, 'Share'),
      session.state === 'running' && session.persistent_home
        ? el('button', { type: 'button', class: 'secondary', onclick: () => act.hibernate(session, template) }, 'Hibernate') : '',
      ended
        ? el('button', { type: 'button', class: 'secondary', onclick: () => act.remove(session) }, 'Remove from list')
        : session.state === 'terminating' ? '' : el('button', { type: 'button', class: 'danger', onclick: () => act.stop(session, template) }, 'Delete')),
  );
}

function sharedCard(shared, templates) {
  const template = templates.find((t) => t.name === shared.template);
  return el('article', { class: `card desktop shared state-${shared.state}`, 'data-session': shared.id },
    el('header', {}, el('h2', {}, template?.display_name ?? shared.template), badge(shared.state)),
    el('dl', { class: 'facts compact' },
      el('dt', {}, 'Owner'), el('dd', {}, shared.owner),
      el('dt', {}, 'You may'), el('dd', {}, MODE_NAMES[shared.mode]),
      el('dt', {}, 'Shared'), el('dd', { title: when(shared.shared_at) }, ago(shared.shared_at)),
      el('dt', {}, 'Platform'), el('dd', {}, platform(shared.platform)),
    ),
    el('div', { class: 'actions' },
      openLink(shared) || el('span', { class: 'muted' }, 'Not running')),
  );
}

function homesTable(homes, act) {
  return table(['Template', 'Agent', 'State', 'Last used', 'In use by', ''], homes.map((h) => ({
    attributes: { 'data-home': h.id },
    cells: [
      h.template,
      el('span', {}, platform(h.platform), ' ', el('code', {}, h.agent_id)),
      el('span', {}, badge(h.state), h.state_reason ? el('div', { class: 'reason' }, h.state_reason) : ''),
      when(h.last_used_at),
      h.in_use_by ? shortId(h.in_use_by) : '—',
      h.in_use_by || h.state === 'deleting' ? '' : el('button', { type: 'button', class: 'danger small', onclick: () => act.deleteHome(h) }, 'Delete'),
    ],
  })), 'No persistent homes yet: a desktop started with "Keep my home" makes one.');
}

export default {
  path: '/desktops',
  title: 'Desktops',
  admin: false,
  mount(root, app) {
    let templates = [];
    const grid = el('div', { class: 'cards desktops' });
    const homes = el('div', { class: 'list' });
    const shared = el('div', { class: 'cards desktops' });
    const error = el('p', { class: 'error', role: 'alert' });
    const formError = el('p', { class: 'error', role: 'alert' });
    const inputs = {
      template: el('select', { name: 'template', required: '' }),
      platform: el('select', { name: 'platform' }),
      cpu: el('input', { name: 'cpu', size: '8', inputmode: 'decimal' }),
      memory: el('input', { name: 'memory', size: '8' }),
      home: el('input', { name: 'persistent_home', type: 'checkbox', checked: '' }),
    };
    const chosen = () => templates.find((t) => t.name === inputs.template.value);
    const suitTemplate = () => {
      const template = chosen();
      const allowed = template?.platforms?.length ? template.platforms : Object.keys(PLATFORM_NAMES);
      const options = [...(allowed.length > 1 ? [['', 'Any that can run it']] : []), ...allowed.map((p) => [p, PLATFORM_NAMES[p] ?? p])];
      inputs.platform.replaceChildren(...options.map(([v, t]) => el('option', { value: v }, t)));
      inputs.cpu.placeholder = template?.default_resources?.cpu ?? '1';
      inputs.memory.placeholder = template?.default_resources?.memory ?? '2Gi';
    };
    inputs.template.addEventListener('change', suitTemplate);

    const load = async () => {
      try {
        const [{ sessions }, { homes: list }, { sessions: sharedWithMe }] = await Promise.all([
          api(`/api/v1/sessions?owner=${app.me.id}`),
          api(`/api/v1/homes?owner=${app.me.id}`),
          api('/api/v1/shared-sessions'),
        ]);
        error.textContent = '';
        grid.replaceChildren(...(sessions.length
          ? sessions.map((s) => desktopCard(s, templates, act))
          : [el('p', { class: 'muted empty' }, 'No desktops yet. Start one above.')]));
        homes.replaceChildren(homesTable(list, act));
        shared.replaceChildren(...(sharedWithMe.length
          ? sharedWithMe.map((s) => sharedCard(s, templates))
          : [el('p', { class: 'muted empty' }, 'Nobody has shared a desktop with you.')]));
        refresh.stamp.textContent = `Updated ${new Date().toLocaleTimeString()}`;
      } catch (e) {
        if (e.status === 401) return app.expired();
        error.textContent = reason(e);
      }
    };
    const failing = (promise) => promise.then(load, (e) => { error.textContent = reason(e); });
    const act = {
      async stop(session, template) {
        if (!await confirmDialog('Delete this desktop?', `The ${template?.display_name ?? session.template} desktop stops and its viewers close.${session.persistent_home ? ' Its home is kept for your next desktop.' : ' Its files are deleted.'}`, 'Delete desktop')) return;
        await failing(api(`/api/v1/sessions/${session.id}`, { method: 'DELETE' }));
      },
      async hibernate(session, template) {
        if (!await confirmDialog('Hibernate this desktop?', `The ${template?.display_name ?? session.template} desktop stops and its viewers close; its home stays. Opening it again wakes it, with the files in its home as they were (open windows are not kept).`, 'Hibernate')) return;
        await failing(api(`/api/v1/sessions/${session.id}/hibernate`, { method: 'POST', body: {} }));
      },
      remove: (session) => failing(api(`/api/v1/sessions/${session.id}`, { method: 'DELETE' })),
      share: (session, template) => shareDialog(session, template?.display_name ?? session.template),
      async deleteHome(home) {
        if (!await confirmDialog(`Delete your home for ${home.template}?`, 'Its files are removed for good; your next desktop of this template starts with an empty home.', 'Delete home')) return;
        await failing(api(`/api/v1/homes/${home.id}`, { method: 'DELETE' }));
      },
    };
    const refresh = autoRefresh('desktops', load, 5);
    const form = el('form', { class: 'toolbar start' },
      field('Template', inputs.template), field('Platform', inputs.platform), field('CPU', inputs.cpu), field('Memory', inputs.memory),
      el('label', { class: 'check' }, inputs.home, 'Keep my home'),
      el('button', { type: 'submit', class: 'push' }, 'Start desktop'));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      formError.textContent = '';
      const body = { template: inputs.template.value, persistent_home: inputs.home.checked, resources: {} };
      if (inputs.platform.value) body.platform = inputs.platform.value;
      if (inputs.cpu.value) body.resources.cpu = inputs.cpu.value.trim();
      if (inputs.memory.value) body.resources.memory = inputs.memory.value.trim();
      try {
        await api('/api/v1/sessions', { method: 'POST', body });
        await load();
      } catch (e) {
        formError.textContent = reason(e);
      }
    });
    root.append(
      el('section', { 'aria-labelledby': 'start-heading' }, el('h2', { id: 'start-heading' }, 'Start a desktop'), form, formError),
      el('div', { class: 'toolbar' }, refresh.control, refresh.stamp),
      error, grid,
      el('section', { 'aria-labelledby': 'shared-heading' }, el('h2', { id: 'shared-heading' }, 'Shared with me'), shared),
      el('section', { 'aria-labelledby': 'homes-heading' },
        el('h2', { id: 'homes-heading' }, 'Homes'),
        el('p', { class: 'note' }, 'A desktop that keeps its home finds it again next time: one home per template, on the agent that keeps it, used by one desktop at a time.'),
        homes),
    );
    everything('/api/v1/templates', 'templates').then((list) => {
      templates = list;
      inputs.template.replaceChildren(...list.map((t) => el('option', { value: t.name }, t.display_name)));
      suitTemplate();
      load();
    }, (e) => { error.textContent = reason(e); });
    return { stop: refresh.stop };
  },
};
