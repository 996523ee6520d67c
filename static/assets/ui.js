// Building blocks the pages share: elements, icons, badges, dialogs, copy buttons, times.

import { ApiError, el } from '/assets/api.js';

export { el };

const SVG = 'http://www.w3.org/2000/svg';

// Simple shapes, drawn here: no icon font or CDN. Each is labelled by the text beside it.
const ICONS = {
  kubernetes: 'M12 2 3.5 6.2 1.5 15.4 7.4 22h9.2l5.9-6.6-2-9.2Zm0 5.2 1 3.5 3.5-1-2.5 2.6 2.5 2.6-3.5-1-1 3.5-1-3.5-3.5 1 2.5-2.6L7.5 9.7l3.5 1Z',
  docker: 'M2 12h18c.6-1.4 1.9-2 3-2-.4-1.2-1.3-1.7-2.3-1.6-.3-1.2-1-2-2-2.4-.6 1-.7 2.2-.2 3.1H2Zm2-4h2.5v2.5H4Zm3 0h2.5v2.5H7Zm3 0h2.5v2.5H10Zm3 0h2.5v2.5H13Zm-6-3h2.5v2.5H7Zm3 0h2.5v2.5H10Zm3 0h2.5v2.5H13Zm-3-3h2.5v2.5H10ZM2 13c.5 4.5 4 8 9.5 8 5 0 8.6-2.7 10-7H2Z',
  local: 'M3 4h18v12H3Zm2 2v8h14V6ZM8 18h8v2H8Z',
  copy: 'M8 3h10a2 2 0 0 1 2 2v12h-2V5H8Zm-3 4h10a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V9a2 2 0 0 1 2-2Zm0 2v10h10V9Z',
};

export function icon(name, label) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', `icon icon-${name}`);
  if (label) {
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', label);
  } else {
    svg.setAttribute('aria-hidden', 'true');
  }
  const path = document.createElementNS(SVG, 'path');
  path.setAttribute('d', ICONS[name] ?? ICONS.local);
  svg.append(path);
  return svg;
}

/** Every platform an agent may run sessions on, with its name in words. */
export const PLATFORM_NAMES = { kubernetes: 'Kubernetes', docker: 'Docker', local: 'Local' };
/** [value, label] pairs of the platforms, for selects and check boxes. */
export const PLATFORM_CHOICES = Object.entries(PLATFORM_NAMES);

/** A platform with its icon and its name in words. */
export function platform(name) {
  return el('span', { class: 'platform' }, icon(name in ICONS ? name : 'local'), PLATFORM_NAMES[name] ?? name ?? '—');
}

const TONES = {
  online: 'good', running: 'good', ready: 'good', active: 'good', disabled: 'bad',
  warning: 'warn', degraded: 'warn', pending: 'busy', creating: 'busy', terminating: 'busy', deleting: 'busy',
  offline: 'bad', error: 'bad', failed: 'bad', lost: 'bad',
  terminated: 'idle', hibernating: 'busy', waking: 'busy', hibernated: 'idle',
};

const WORDS = {
  pending: 'Waiting for an agent', creating: 'Starting', running: 'Running', degraded: 'Agent unreachable',
  terminating: 'Stopping', terminated: 'Ended', failed: 'Failed', lost: 'Lost',
  online: 'Online', warning: 'Late heartbeat', offline: 'Offline', error: 'Error', ready: 'Ready', deleting: 'Deleting',
  active: 'Active', disabled: 'Disabled', hibernating: 'Hibernating', hibernated: 'Hibernated', waking: 'Waking',
};

/** A state as a word and a shape (not colour alone). */
export function badge(state) {
  const tone = TONES[state] ?? 'idle';
  return el('span', { class: `badge badge-${tone}`, 'data-state': state }, el('span', { class: 'dot', 'aria-hidden': 'true' }), WORDS[state] ?? state);
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : '—';
}

export function ago(iso) {
  if (!iso) return 'never';
  const seconds = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (seconds < 60) return `${Math.max(seconds, 0)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

/** A button that copies `text`, and says so. */
export function copyButton(text, label = 'Copy') {
  const button = el('button', { type: 'button', class: 'ghost copy', title: label, 'aria-label': label }, icon('copy'));
  button.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text);
      flash(button, 'Copied');
    } catch {
      flash(button, 'Copy failed');
    }
  });
  return button;
}

function flash(button, text) {
  const note = el('span', { class: 'flash', role: 'status' }, text);
  button.after(note);
  setTimeout(() => note.remove(), 1500);
}

/** An id in monospace, shortened, with the full id on hover and a copy button. */
export function shortId(id) {
  if (!id) return el('span', {}, '—');
  const text = String(id);
  const shown = text.length > 12 ? `${text.slice(0, 8)}…` : text;
  return el('span', { class: 'id' }, el('code', { title: text }, shown), copyButton(text, `Copy ${text}`));
}

/** A message for an error: the API's words, or why nothing answered. */
export function reason(error) {
  return error instanceof ApiError ? error.message : String(error?.message ?? error);
}

/**
 * A modal dialog: `render(body, close)` fills it. Escape and the close button dismiss it;
 * focus goes into it and back where it was afterwards. Resolves with what `close` was given.
 */
export function dialog(title, render, { wide = false } = {}) {
  const opener = document.activeElement;
  const heading = el('h2', { id: `dialog-${Math.random().toString(36).slice(2)}` }, title);
  const body = el('div', { class: 'dialog-body' });
  const node = el('dialog', { class: wide ? 'wide' : '', 'aria-labelledby': heading.id });
  const closeButton = el('button', { type: 'button', class: 'ghost close', 'aria-label': 'Close' }, '×');
  node.append(el('header', {}, heading, closeButton), body);
  document.body.append(node);
  return new Promise((resolve) => {
    const close = (value) => {
      node.close();
      node.remove();
      opener?.focus?.();
      resolve(value);
    };
    closeButton.addEventListener('click', () => close(undefined));
    node.addEventListener('cancel', (event) => {
      event.preventDefault();
      close(undefined);
    });
    render(body, close);
    node.showModal();
    (body.querySelector('[autofocus]') ?? body.querySelector('input, select, textarea, button'))?.focus();
  });
}

/** Asks before something that cannot be undone; resolves true to go ahead. */
export function confirmDialog(title, message, action = 'Delete') {
  return dialog(title, (body, close) => {
    body.append(
      el('p', {}, message),
      el('div', { class: 'actions' },
        el('button', { type: 'button', class: 'secondary', onclick: () => close(false) }, 'Cancel'),
        el('button', { type: 'button', class: 'danger', onclick: () => close(true) }, action)),
    );
  }).then((answer) => answer === true);
}

/** A form in a dialog: `fields` are labelled inputs; `submit(values)` may throw to show why. */
export function formDialog(title, fields, submit, { action = 'Save', wide = false } = {}) {
  return dialog(title, (body, close) => {
    const error = el('p', { class: 'error', role: 'alert' });
    const form = el('form', { class: 'stack' }, ...fields, error,
      el('div', { class: 'actions' },
        el('button', { type: 'button', class: 'secondary', onclick: () => close(undefined) }, 'Cancel'),
        el('button', { type: 'submit' }, action)));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      error.textContent = '';
      try {
        close(await submit(new FormData(form)));
      } catch (e) {
        error.textContent = reason(e);
      }
    });
    body.append(form);
  }, { wide });
}

/** A labelled field. */
export function field(label, input, hint) {
  return el('label', { class: 'field' }, el('span', {}, label), input, hint ? el('small', {}, hint) : '');
}

/** A select with `options` ([value, text] pairs or strings), `value` selected. */
export function select(name, options, value, attributes = {}) {
  return el('select', { name, ...attributes }, options.map((option) => {
    const [optionValue, text] = Array.isArray(option) ? option : [option, option];
    const node = el('option', { value: optionValue }, text);
    if (optionValue === value) node.selected = true;
    return node;
  }));
}

/**
 * A table whose rows stack into cards on narrow screens (each cell names its column). A row
 * is a list of cells, or `{ attributes, cells }`.
 */
export function table(columns, rows, empty) {
  const head = el('thead', {}, el('tr', {}, columns.map((c) => el('th', { scope: 'col' }, c))));
  const line = (row) => {
    const { attributes = {}, cells } = Array.isArray(row) ? { cells: row } : row;
    return el('tr', attributes, cells.map((cell, i) => el('td', { 'data-label': columns[i] }, cell)));
  };
  const body = el('tbody', {}, rows.length
    ? rows.map(line)
    : el('tr', {}, el('td', { colspan: columns.length, class: 'empty' }, empty)));
  return el('table', { class: 'responsive' }, head, body);
}

/**
 * Previous / Page N / Next over a list paged by cursor. `cursors` holds the cursor of each
 * page shown so far ('' for the first); `next` is the one the last answer gave, if any.
 */
export function pagerButtons(cursors, next, load, [back, forward] = ['Previous', 'Next']) {
  return [
    el('button', { type: 'button', class: 'secondary', disabled: cursors.length > 1 ? undefined : '', onclick: () => { cursors.pop(); load(); } }, back),
    el('span', { class: 'muted' }, `Page ${cursors.length}`),
    el('button', { type: 'button', class: 'secondary', disabled: next ? undefined : '', onclick: () => { cursors.push(next); load(); } }, forward),
  ];
}
