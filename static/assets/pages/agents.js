// Agents (admins): summary cards, filters served by the API, a search by id, auto-refresh,
// a details dialog with credentials, removal, and registration with the lines that start the
// new agent.

import { api } from '/assets/api.js';
import {
  ago, badge, pagerButtons, confirmDialog, copyButton, dialog, el, field, formDialog, platform, PLATFORM_CHOICES, reason, select, shortId,
  table, when,
} from '/assets/ui.js';
import { autoRefresh } from '/assets/refresh.js';

const PLATFORMS = [['', 'All platforms'], ...PLATFORM_CHOICES];
// Agents per page.
const PAGE = 50;
const STATUSES = [['', 'All statuses'], ['online', 'Online'], ['warning', 'Late heartbeat'], ['offline', 'Offline'], ['error', 'Error']];

function card(label, value, id) {
  return el('div', { class: 'card stat', 'data-stat': id }, el('span', { class: 'value' }, String(value)), el('span', { class: 'label' }, label));
}

function controlPlaneWs() {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`;
}

/** The exact lines that start an agent with this credential. */
export function startLines(agent, token) {
  const url = controlPlaneWs();
  const region = agent.region ? ` --set region=${agent.region}` : '';
  const env = `-e AGENT_ID=${agent.agent_id} -e CONTROL_PLANE_URL=${url} -e AGENT_TOKEN=${token}`;
  if (agent.platform === 'kubernetes') {
    return [
      ['Helm (in the cluster)', `helm install ${agent.agent_id} charts/streamspace-k8s-agent --namespace streamspace-sessions --set agentId=${agent.agent_id} --set controlPlaneUrl=${url} --set token.value=${token}${region}`],
      ['docker run (outside the cluster)', `docker run -d --name ${agent.agent_id} ${env} -e PLATFORM=kubernetes -e NAMESPACE=streamspace-sessions${agent.region ? ` -e REGION=${agent.region}` : ''} -e KUBECONFIG=/kubeconfig -v $HOME/.kube/config:/kubeconfig:ro ghcr.io/streamspace/k8s-agent`],
    ];
  }
  if (agent.platform === 'docker') {
    return [
      ['docker run (next to the engine)', `docker run -d --name ${agent.agent_id} ${env} -e PLATFORM=docker${agent.region ? ` -e REGION=${agent.region}` : ''} --network host --group-add $(stat -c %g /var/run/docker.sock) -v /var/run/docker.sock:/var/run/docker.sock ghcr.io/streamspace/k8s-agent`],
      ['On the Docker host', `AGENT_ID=${agent.agent_id} CONTROL_PLANE_URL=${url} AGENT_TOKEN=${token} PLATFORM=docker${agent.region ? ` REGION=${agent.region}` : ''} streamspace-k8s-agent`],
    ];
  }
  return [
    ['On the desktop host', `AGENT_ID=${agent.agent_id} CONTROL_PLANE_URL=${url} AGENT_TOKEN=${token} PLATFORM=${agent.platform}${agent.region ? ` REGION=${agent.region}` : ''} streamspace-k8s-agent`],
  ];
}

/** A freshly minted token, shown once, with how to use it. */
function showToken(agent, credential) {
  return dialog(`Credential for ${agent.agent_id}`, (body, close) => {
    body.append(
      el('p', { class: 'warning-note' }, 'This token is shown only now. Copy it before you close this dialog.'),
      el('div', { class: 'token-line' }, el('code', { class: 'token', 'data-token': '' }, credential.token), copyButton(credential.token, 'Copy the token')),
      ...startLines(agent, credential.token).map(([label, line]) => el('div', { class: 'command' },
        el('h3', {}, label), el('div', { class: 'token-line' }, el('code', { 'data-command': label }, line), copyButton(line, `Copy the ${label} command`)))),
      el('div', { class: 'actions' }, el('button', { type: 'button', onclick: () => close() }, 'Done')),
    );
  }, { wide: true });
}

async function details(id, reload) {
  let agent;
  try {
    agent = await api(`/api/v1/agents/${encodeURIComponent(id)}`);
  } catch (e) {
    return dialog('Agent', (body) => body.append(el('p', { class: 'error' }, reason(e))));
  }
  return dialog(`Agent ${agent.agent_id}`, (body, close) => {
    const credentials = el('div', { class: 'credentials' });
    const active = el('div', { class: 'active-sessions' });
    const error = el('p', { class: 'error', role: 'alert' });
    const loadCredentials = async () => {
      const { credentials: list } = await api(`/api/v1/agents/${encodeURIComponent(id)}/credentials`);
      credentials.replaceChildren(table(['Prefix', 'Created', 'Last used', 'State', ''], list.map((c) => ({
        attributes: { 'data-credential': c.id },
        cells: [
          el('code', {}, `${c.token_prefix}…`), when(c.created_at), when(c.last_used_at), c.revoked_at ? `Revoked ${when(c.revoked_at)}` : 'Active',
          c.revoked_at ? '' : el('button', { type: 'button', class: 'secondary small', onclick: async () => {
            if (!await confirmDialog('Revoke credential', `Revoke ${c.token_prefix}…? An agent linked with it is disconnected at once.`, 'Revoke')) return;
            await api(`/api/v1/agents/${encodeURIComponent(id)}/credentials/${c.id}`, { method: 'DELETE' }).then(loadCredentials, (e) => { error.textContent = reason(e); });
          } }, 'Revoke'),
        ],
      })), 'No credentials.'));
    };
    const mint = async (rotate) => {
      if (rotate && !await confirmDialog('Rotate credentials', `Mint a new credential for ${id} and revoke all others? The agent must be restarted with the new token.`, 'Rotate')) return;
      try {
        const credential = await api(`/api/v1/agents/${encodeURIComponent(id)}/credentials${rotate ? '/rotate' : ''}`, { method: 'POST', body: {} });
        await showToken(agent, credential);
        await loadCredentials();
      } catch (e) {
        error.textContent = reason(e);
      }
    };
    const capacity = agent.capacity ?? {};
    const metadata = Object.entries(agent.metadata ?? {});
    body.append(
      el('dl', { class: 'facts' },
        el('dt', {}, 'Agent id'), el('dd', {}, el('code', {}, agent.agent_id), copyButton(agent.agent_id, 'Copy the agent id')),
        el('dt', {}, 'Platform'), el('dd', {}, platform(agent.platform)),
        el('dt', {}, 'Region'), el('dd', {}, agent.region ?? '—'),
        el('dt', {}, 'Status'), el('dd', {}, badge(agent.status)),
        el('dt', {}, 'Last heartbeat'), el('dd', { title: when(agent.last_heartbeat) }, ago(agent.last_heartbeat)),
        el('dt', {}, 'Capacity'), el('dd', {}, `${capacity.max_sessions ?? '?'} sessions`, capacity.cpu ? `, ${capacity.cpu} CPU` : '', capacity.memory ? `, ${capacity.memory} memory` : ''),
        el('dt', {}, 'Metadata'), el('dd', {}, metadata.length ? el('ul', { class: 'plain' }, metadata.map(([k, v]) => el('li', {}, el('code', {}, k), ': ', typeof v === 'string' ? v : JSON.stringify(v)))) : '—'),
        el('dt', {}, 'Created'), el('dd', {}, when(agent.created_at)),
        el('dt', {}, 'Updated'), el('dd', {}, when(agent.updated_at)),
      ),
      el('h3', {}, `Active sessions (${agent.active_sessions})`), active,
      el('h3', {}, 'Credentials'), credentials,
      el('div', { class: 'actions' },
        el('button', { type: 'button', class: 'secondary', onclick: () => mint(false) }, 'Mint credential'),
        el('button', { type: 'button', class: 'secondary', onclick: () => mint(true) }, 'Rotate credentials')),
      error,
    );
    api(`/api/v1/sessions?agent_id=${encodeURIComponent(id)}&limit=100`).then(({ sessions }) => {
      const live = sessions.filter((s) => !['terminated', 'failed', 'lost'].includes(s.state));
      active.replaceChildren(live.length
        ? el('ul', { class: 'plain' }, live.map((s) => el('li', {}, shortId(s.id), ' ', s.owner, ' · ', s.template, ' · ', badge(s.state),
          s.state === 'running' ? el('a', { href: `/vnc-viewer/${s.id}`, target: '_blank', rel: 'noopener' }, ' Open') : '')))
        : el('p', { class: 'muted' }, 'None.'),
      el('a', { href: `/sessions?agent_id=${encodeURIComponent(id)}`, onclick: () => close() }, 'All sessions of this agent'));
    }, (e) => active.replaceChildren(el('p', { class: 'error' }, reason(e))));
    loadCredentials().catch((e) => { error.textContent = reason(e); });
  }, { wide: true }).then(reload);
}

async function remove(agent, reload) {
  const sessions = agent.active_sessions;
  const consequence = sessions
    ? `Its ${sessions} active session${sessions === 1 ? '' : 's'} will be marked lost, and its link is closed at once. The desktops themselves keep running on the agent until it is cleaned up there.`
    : 'It has no active sessions. Its link is closed at once and its credentials stop working.';
  if (!await confirmDialog(`Remove agent ${agent.agent_id}?`, consequence, 'Remove agent')) return;
  await api(`/api/v1/agents/${encodeURIComponent(agent.agent_id)}`, { method: 'DELETE' });
  reload();
}

function register(reload) {
  return formDialog('Register an agent', [
    field('Agent id', el('input', { name: 'agent_id', required: '', pattern: '[A-Za-z0-9]([A-Za-z0-9._\\-]{0,61}[A-Za-z0-9])?', autofocus: '' }), 'Letters, digits, ".", "_" and "-".'),
    field('Platform', select('platform', PLATFORM_CHOICES, 'kubernetes')),
    field('Region', el('input', { name: 'region' }), 'Optional; sessions may ask for one.'),
  ], async (form) => {
    const body = Object.fromEntries(form);
    if (!body.region) delete body.region;
    const { agent, credential } = await api('/api/v1/agents/register', { method: 'POST', body });
    return { agent, credential };
  }, { action: 'Register' }).then(async (registered) => {
    if (!registered) return;
    reload();
    await showToken(registered.agent, registered.credential);
  });
}

export default {
  path: '/agents',
  title: 'Agents',
  admin: true,
  mount(root, app) {
    const query = app.query();
    const filters = {
      platform: select('platform', PLATFORMS, query.get('platform') ?? ''),
      status: select('status', STATUSES, query.get('status') ?? ''),
      region: select('region', [['', 'All regions']], query.get('region') ?? ''),
      search: el('input', { type: 'search', name: 'q', value: query.get('q') ?? '', placeholder: 'Agent id' }),
    };
    const cards = el('div', { class: 'cards stats' });
    const list = el('div', { class: 'list' });
    const error = el('p', { class: 'error', role: 'alert' });
    const pager = el('div', { class: 'pager' });
    let regions = new Set(query.get('region') ? [query.get('region')] : []);
    // Cursors of the pages shown so far: "Previous" goes back one.
    let cursors = [''];

    const load = async () => {
      const params = { platform: filters.platform.value, status: filters.status.value, region: filters.region.value, q: filters.search.value.trim() };
      app.setQuery(params);
      const search = new URLSearchParams(Object.entries({ ...params, limit: String(PAGE), after: cursors.at(-1) }).filter(([, v]) => v));
      try {
        const [summary, { agents, next_after: next }] = await Promise.all([api('/api/v1/agent-summary'), api(`/api/v1/agents?${search}`)]);
        error.textContent = '';
        cards.replaceChildren(
          card('Agents', summary.agents, 'total'),
          card('Online', summary.by_status.online ?? 0, 'online'),
          card('Active sessions', summary.active_sessions, 'sessions'),
          card('Platforms', summary.platforms.length, 'platforms'),
        );
        const known = new Set([...regions, ...summary.regions]);
        if (known.size !== regions.size) {
          regions = known;
          const chosen = filters.region.value;
          filters.region.replaceChildren(...[['', 'All regions'], ...[...regions].sort().map((r) => [r, r])].map(([v, t]) => {
            const option = el('option', { value: v }, t);
            option.selected = v === chosen;
            return option;
          }));
        }
        list.replaceChildren(table(['Agent', 'Platform', 'Region', 'Status', 'Sessions', 'Last heartbeat', ''], agents.map((a) => ({
          attributes: { 'data-agent': a.agent_id },
          cells: [
            el('button', { type: 'button', class: 'link mono', onclick: () => details(a.agent_id, load) }, a.agent_id),
            platform(a.platform),
            a.region ?? '—',
            badge(a.status),
            `${a.active_sessions} / ${a.capacity?.max_sessions ?? '?'}`,
            el('span', { title: when(a.last_heartbeat) }, ago(a.last_heartbeat)),
            el('span', { class: 'row-actions' },
              el('button', { type: 'button', class: 'secondary small', onclick: () => details(a.agent_id, load) }, 'Details'),
              el('button', { type: 'button', class: 'danger small', onclick: () => remove(a, load).catch((e) => { error.textContent = reason(e); }) }, 'Remove')),
          ],
        })), summary.agents ? 'No agent matches these filters.' : 'No agents yet: register one.'));
        pager.replaceChildren(...pagerButtons(cursors, next, load));
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
    const refresh = autoRefresh('agents', load);
    for (const input of Object.values(filters)) input.addEventListener(input.type === 'search' ? 'input' : 'change', restart);
    root.append(
      cards,
      el('div', { class: 'toolbar' },
        field('Platform', filters.platform), field('Status', filters.status), field('Region', filters.region), field('Search', filters.search),
        refresh.control,
        el('button', { type: 'button', class: 'push', onclick: () => register(load) }, 'Register agent')),
      error, list, pager, refresh.stamp,
    );
    load();
    return { stop: refresh.stop };
  },
};
