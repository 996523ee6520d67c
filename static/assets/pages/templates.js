// Templates (admins): what users can start. Every field can be set and changed; deleting asks
// first (running desktops keep running, and keep the template's name).

import { api } from '/assets/api.js';
import {
  confirmDialog, el, field, formDialog, pagerButtons, platform, PLATFORM_CHOICES, reason, table,
} from '/assets/ui.js';

// Templates per page.
const PAGE = 50;


/** `KEY=value` lines, one per variable. */
function envText(env) {
  return Object.entries(env ?? {}).map(([k, v]) => `${k}=${v}`).join('\n');
}

function parseEnv(text) {
  const env = {};
  for (const [i, line] of text.split('\n').entries()) {
    if (!line.trim()) continue;
    const at = line.indexOf('=');
    if (at < 1) throw new Error(`Environment, line ${i + 1}: write NAME=value`);
    env[line.slice(0, at).trim()] = line.slice(at + 1);
  }
  return env;
}

// Limits are seconds in the API and minutes here; a value not a whole number of minutes is
// shown to the second.
const minutes = (seconds) => (seconds == null ? '' : String(seconds / 60));
const seconds = (text) => (text.trim() === '' ? null : Math.round(Number(text) * 60));

/** A limit in words: "30 min", "8 h", or "—". */
function limit(value) {
  if (value == null) return '—';
  if (value % 3600 === 0) return `${value / 3600} h`;
  if (value % 60 === 0) return `${value / 60} min`;
  return `${value} s`;
}

function editor(template, reload) {
  const t = template ?? { vnc_port: 5900, default_resources: {}, env: {}, platforms: [] };
  const checks = PLATFORM_CHOICES.map(([value, label]) => el('label', { class: 'check' },
    el('input', { type: 'checkbox', name: 'platforms', value, ...(t.platforms?.includes(value) ? { checked: '' } : {}) }), label));
  return formDialog(template ? `Edit ${template.name}` : 'New template', [
    field('Name', el('input', { name: 'name', required: '', value: t.name ?? '', pattern: '[a-z0-9]([a-z0-9\\-]{0,61}[a-z0-9])?', autofocus: '' }), 'Lowercase letters, digits and "-".'),
    field('Display name', el('input', { name: 'display_name', value: t.display_name ?? '' })),
    field('Description', el('input', { name: 'description', value: t.description ?? '' })),
    field('Image or program', el('input', { name: 'image', required: '', value: t.image ?? '' }), 'A container image (Kubernetes, Docker) or a program on the host (local).'),
    field('VNC port', el('input', { name: 'vnc_port', type: 'number', min: '1', max: '65535', value: t.vnc_port })),
    field('Default CPU', el('input', { name: 'cpu', value: t.default_resources?.cpu ?? '', placeholder: '1' })),
    field('Default memory', el('input', { name: 'memory', value: t.default_resources?.memory ?? '', placeholder: '2Gi' })),
    field('Environment', el('textarea', { name: 'env', rows: '3', placeholder: 'TZ=Europe/Paris' }, envText(t.env)), 'One NAME=value per line.'),
    field('Idle after (minutes)', el('input', { name: 'idle_timeout', type: 'number', min: '0.0167', step: 'any', value: minutes(t.idle_timeout_seconds), placeholder: 'never' }), 'No keyboard, mouse or clipboard input from any viewer for this long; the viewer warns first.'),
    field('When idle', el('select', { name: 'idle_action' },
      el('option', { value: 'stop', ...(t.idle_action !== 'hibernate' ? { selected: '' } : {}) }, 'Stop the desktop'),
      el('option', { value: 'hibernate', ...(t.idle_action === 'hibernate' ? { selected: '' } : {}) }, 'Hibernate it (keeps its home; opening it wakes it)')),
    'Desktops without a persistent home stop either way.'),
    field('Maximum lifetime (minutes)', el('input', { name: 'max_lifetime', type: 'number', min: '0.0167', step: 'any', value: minutes(t.max_lifetime_seconds), placeholder: 'never' }), 'Its desktops stop this long after they started, whatever their use.'),
    el('fieldset', { class: 'checks' }, el('legend', {}, 'Runs on (none checked: any platform)'), ...checks),
    el('label', { class: 'check' }, el('input', { type: 'checkbox', name: 'record', ...(t.record ? { checked: '' } : {}) }), 'Record its desktops (every viewer\'s stream; viewers are told)'),
  ], async (form) => {
    const defaults = {};
    if (form.get('cpu')) defaults.cpu = form.get('cpu').trim();
    if (form.get('memory')) defaults.memory = form.get('memory').trim();
    const body = {
      name: form.get('name').trim(),
      display_name: form.get('display_name').trim() || undefined,
      description: form.get('description'),
      image: form.get('image').trim(),
      vnc_port: Number(form.get('vnc_port')),
      default_resources: defaults,
      env: parseEnv(form.get('env')),
      platforms: form.getAll('platforms'),
      idle_timeout_seconds: seconds(form.get('idle_timeout')),
      idle_action: form.get('idle_action'),
      max_lifetime_seconds: seconds(form.get('max_lifetime')),
      record: form.get('record') === 'on',
    };
    if (template) await api(`/api/v1/templates/${encodeURIComponent(template.name)}`, { method: 'PUT', body });
    else await api('/api/v1/templates', { method: 'POST', body });
    return true;
  }, { action: template ? 'Save' : 'Create', wide: true }).then((saved) => saved && reload());
}

export default {
  path: '/templates',
  title: 'Templates',
  admin: true,
  mount(root, app) {
    const list = el('div', { class: 'list' });
    const error = el('p', { class: 'error', role: 'alert' });
    const pager = el('div', { class: 'pager' });
    // Cursors of the pages shown so far: "Previous" goes back one.
    const cursors = [''];
    const load = async () => {
      try {
        const after = cursors.at(-1);
        const { templates, next_after: next } = await api(`/api/v1/templates?limit=${PAGE}${after ? `&after=${encodeURIComponent(after)}` : ''}`);
        pager.replaceChildren(...pagerButtons(cursors, next, load));
        list.replaceChildren(table(['Name', 'Image or program', 'Runs on', 'Defaults', 'Environment', 'When idle', 'Lifetime', 'Recorded', ''], templates.map((t) => ({
          attributes: { 'data-template': t.name },
          cells: [
            el('span', {}, el('strong', {}, t.display_name), el('div', { class: 'muted' }, el('code', {}, t.name))),
            el('code', {}, t.image),
            t.platforms.length ? el('span', {}, t.platforms.map((p) => platform(p))) : 'Any',
            `${t.default_resources?.cpu ?? '1'} CPU, ${t.default_resources?.memory ?? '2Gi'}`,
            `${Object.keys(t.env ?? {}).length} variables`,
            t.idle_timeout_seconds ? `${t.idle_action === 'hibernate' ? 'Hibernate' : 'Stop'} after ${limit(t.idle_timeout_seconds)}` : limit(null),
            limit(t.max_lifetime_seconds),
            t.record ? 'Yes' : 'No',
            el('span', { class: 'row-actions' },
              el('button', { type: 'button', class: 'secondary small', onclick: () => editor(t, load) }, 'Edit'),
              el('button', { type: 'button', class: 'danger small', onclick: async () => {
                if (!await confirmDialog(`Delete template ${t.name}?`, 'Users can no longer start it. Desktops already running keep running.', 'Delete template')) return;
                api(`/api/v1/templates/${encodeURIComponent(t.name)}`, { method: 'DELETE' }).then(load, (e) => { error.textContent = reason(e); });
              } }, 'Delete')),
          ],
        })), 'No templates yet.'));
      } catch (e) {
        if (e.status === 401) return app.expired();
        error.textContent = reason(e);
      }
    };
    root.append(el('div', { class: 'toolbar' }, el('button', { type: 'button', class: 'push', onclick: () => editor(null, load) }, 'New template')), error, list, pager);
    load();
    return {};
  },
};
