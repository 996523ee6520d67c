// The desktop viewer: noVNC (from its npm package, served at /novnc) connected through the
// control plane's VNC proxy with a short viewer token, reconnecting by itself when the stream
// drops, and saying plainly why when the desktop cannot be shown. A toolbar that hides itself
// (it comes back at the top edge) carries the clipboard, Ctrl-Alt-Del, full screen, scaling,
// reconnect, disconnect and the session's details. On a desktop shared for watching, the
// viewer says so and sends no input (the control plane drops it anyway). A desktop near its
// template's idle timeout or maximum lifetime is announced with a countdown (and, for the
// idle timeout, "I'm still here"). Opening a hibernated desktop wakes it, and the viewer says
// "waking" until it is back; a stream that ends because the desktop went to sleep does not
// wake it again by itself (a button does).

import RFB from '/novnc/core/rfb.js';
import { api, ApiError, token, signInUrl } from '/assets/api.js';
import { dialog, el, platform, reason, when } from '/assets/ui.js';

const sessionId = decodeURIComponent(location.pathname.split('/').filter(Boolean).pop());
const WELL_FORMED = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(sessionId);
const toolbar = document.getElementById('toolbar');
const clipboardPanel = document.getElementById('clipboard');
const clipboardText = document.getElementById('clipboard-text');
const screen = document.getElementById('screen');
const statusBox = document.getElementById('status');
const statusText = document.getElementById('status-text');
const statusDetail = document.getElementById('status-detail');
const spinner = document.getElementById('spinner');
const retryButton = document.getElementById('retry');
const modeBanner = document.getElementById('mode');
const limitWarning = document.getElementById('limit-warning');
const limitText = document.getElementById('limit-text');
const stillHere = document.getElementById('still-here');

// Observable state, for people debugging and for the browser tests.
const state = (window.streamspace = {
  phase: 'starting',
  connects: 0,
  reconnects: 0,
  lastConnectMs: null,
  message: '',
  mode: null,
  limitWarning: null,
  wakes: 0,
});

let rfb = null;
let attempt = 0;
let retryTimer = null;
let startedAt = 0;
let session = null;
let scaled = true;
// Opening the page (or a click) wakes a hibernated desktop; reconnecting after it fell asleep
// under the viewer does not.
let mayWake = true;

function show(message, { detail = '', busy = true, canRetry = false, retryLabel = 'Reconnect now' } = {}) {
  state.message = message;
  statusText.textContent = message;
  statusDetail.textContent = detail;
  spinner.hidden = !busy;
  retryButton.hidden = !canRetry;
  retryButton.textContent = retryLabel;
  statusBox.hidden = false;
}

function hideStatus() {
  statusBox.hidden = true;
}

// Final: the desktop is gone or not the caller's, so there is nothing to reconnect to.
function stop(message, detail = '', { canRetry = false, retryLabel } = {}) {
  state.phase = 'stopped';
  clearTimeout(retryTimer);
  show(message, { detail, busy: false, canRetry, retryLabel });
}

// Retries back off from a quarter second to eight, with jitter.
function retryLater(message, detail = '') {
  clearTimeout(retryTimer);
  const delay = Math.min(8000, 250 * 2 ** attempt) * (0.5 + Math.random() / 2);
  attempt += 1;
  state.phase = 'waiting';
  show(message, { detail: `${detail}${detail ? ' ' : ''}Retrying in ${(delay / 1000).toFixed(1)} s.`, canRetry: true });
  retryTimer = setTimeout(() => connect(), delay);
}

const ENDED = {
  terminating: 'This desktop is shutting down.',
  terminated: 'This desktop has been closed.',
  lost: 'This desktop was lost: its agent came back without it.',
  failed: 'This desktop failed.',
};

// States that pass by themselves: the viewer looks again every second.
const PASSING = {
  pending: ['Starting your desktop…', ''],
  creating: ['Starting your desktop…', ''],
  waking: ['Waking your desktop…', 'It starts again on the agent that keeps its home.'],
  hibernating: ['This desktop is going to sleep…', 'Its home stays; it can be woken once it is asleep.'],
};

// A hibernated desktop: woken when the page was opened for it (or on a click), else left
// asleep with a button. True when the caller should look again shortly.
async function wakeOrWait() {
  if (!mayWake) {
    const why = session.state_reason ? `${session.state_reason[0].toUpperCase()}${session.state_reason.slice(1)}. ` : '';
    stop('This desktop is hibernated.', `${why}Its home is kept; wake it to go on.`, { canRetry: true, retryLabel: 'Wake it' });
    return false;
  }
  mayWake = false;
  try {
    await api(`/api/v1/sessions/${encodeURIComponent(sessionId)}/wake`, { method: 'POST' });
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    if (e.status === 403) {
      mayWake = true; // its owner may wake it; this page connects when it runs
      retryLater('This desktop is hibernated.', 'Its owner can wake it.');
      return false;
    }
    if (e.code === 'agent_unavailable') {
      mayWake = true;
      retryLater('This desktop cannot wake yet.', e.message);
      return false;
    }
    throw e;
  }
  state.wakes += 1;
  return true;
}

async function connect() {
  clearTimeout(retryTimer);
  if (!WELL_FORMED) return stop('This is not a desktop link.', 'The address does not name a session; open your desktop from the Desktops page.');
  if (!token()) {
    location.replace(signInUrl());
    return;
  }
  startedAt = performance.now();
  state.phase = 'connecting';
  show(state.connects ? 'Reconnecting…' : 'Connecting to your desktop…');
  let viewer;
  try {
    session = await api(`/api/v1/sessions/${encodeURIComponent(sessionId)}`);
    if (session.state === 'hibernated' && !await wakeOrWait()) return;
    if (session.state === 'hibernated' || PASSING[session.state]) {
      const [message, detail] = PASSING[session.state] ?? PASSING.waking;
      attempt = 0;
      retryTimer = setTimeout(connect, 1000);
      state.phase = 'waiting';
      show(message, { detail: detail || `The session is ${session.state}.` });
      return;
    }
    if (session.state === 'degraded') {
      return retryLater('The agent running this desktop is offline.', 'Waiting for it to come back.');
    }
    if (session.state !== 'running') {
      return stop(ENDED[session.state] ?? `This desktop is ${session.state}.`, session.state_reason ?? '');
    }
    if (session.agent_status && session.agent_status !== 'online') {
      return retryLater('The agent running this desktop is not responding.', 'Waiting for it to come back.');
    }
    viewer = await api(`/api/v1/sessions/${encodeURIComponent(sessionId)}/viewer-token`, { method: 'POST' });
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    if (e.status === 401) {
      location.replace(signInUrl());
      return;
    }
    if (e.status === 404) return stop('This session does not exist, or it is not yours.', 'If it was shared with you, its owner may have stopped sharing it.');
    if (e.code === 'vnc_proxy_disabled') return stop('Viewing is switched off on this server.', e.message);
    if (e.status === 409) return retryLater('The desktop is not ready.', e.message);
    return retryLater('The control plane did not answer.', e.message);
  }
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const url = `${scheme}://${location.host}${viewer.path}?token=${encodeURIComponent(viewer.token)}`;
  showMode(viewer.mode);
  state.recorded = viewer.recorded;
  document.getElementById('recorded').hidden = !viewer.recorded;
  open(url);
}

// Limits: a warning this long before the end (a quarter of the limit, between 1 s and 2 min),
// with the session read again every half of that (at most every 15 s) to see other viewers'
// input; the countdown itself ticks every second.
const leadMs = (seconds) => Math.min(120, Math.max(1, seconds / 4)) * 1000;
let limitTimer = null;
let sessionReadAt = 0;

function deadlines(s) {
  const started = Date.parse(s.started_at ?? s.created_at);
  const ends = [];
  if (s.idle_timeout_seconds) {
    const lastInput = Math.max(started, s.last_input_at ? Date.parse(s.last_input_at) : 0);
    ends.push({ kind: 'idle', at: lastInput + s.idle_timeout_seconds * 1000, lead: leadMs(s.idle_timeout_seconds) });
  }
  if (s.max_lifetime_seconds) {
    ends.push({ kind: 'lifetime', at: started + s.max_lifetime_seconds * 1000, lead: leadMs(s.max_lifetime_seconds) });
  }
  return ends;
}

// Its idle timeout hibernates it (its template says so, and it has a home to keep).
const sleeps = (s) => s.idle_action === 'hibernate' && s.persistent_home;

function inWords(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}

async function watchLimits() {
  clearTimeout(limitTimer);
  const ends = session && state.phase === 'connected' ? deadlines(session) : [];
  if (!ends.length) {
    limitWarning.hidden = true;
    state.limitWarning = null;
    return;
  }
  const poll = Math.min(15000, ...ends.map((e) => e.lead / 2));
  if (Date.now() - sessionReadAt >= poll) {
    try {
      session = await api(`/api/v1/sessions/${encodeURIComponent(sessionId)}`);
      sessionReadAt = Date.now();
    } catch {
      // The stream's own end says what happened; the warning waits for the next read.
    }
  }
  const now = Date.now();
  const due = deadlines(session).filter((e) => now >= e.at - e.lead).sort((a, b) => a.at - b.at)[0];
  state.limitWarning = due?.kind ?? null;
  limitWarning.hidden = !due;
  if (due) {
    limitText.textContent = due.kind === 'idle'
      ? `No input for a while: this desktop ${sleeps(session) ? 'hibernates' : 'stops'} in ${inWords(due.at - now)}.`
      : `This desktop reaches its maximum lifetime and stops in ${inWords(due.at - now)}. Save your work.`;
    stillHere.hidden = due.kind !== 'idle' || state.mode === 'view';
  }
  limitTimer = setTimeout(watchLimits, 1000);
}

stillHere.addEventListener('click', async () => {
  try {
    await api(`/api/v1/sessions/${encodeURIComponent(sessionId)}/activity`, { method: 'POST' });
    sessionReadAt = 0;
    await watchLimits();
  } catch (e) {
    limitText.textContent = reason(e);
  }
  rfb?.focus();
});

// View-only: a banner says so, and the controls that send input are off.
function showMode(mode) {
  state.mode = mode;
  const viewOnly = mode === 'view';
  modeBanner.hidden = !viewOnly;
  modeBanner.textContent = viewOnly ? `View only: ${session.owner} shares this desktop with you to watch.` : '';
  for (const action of ['ctrl-alt-del', 'clipboard']) {
    toolbar.querySelector(`[data-action=${action}]`).disabled = viewOnly;
  }
}

function open(url) {
  const client = new RFB(screen, url, { shared: true });
  client.viewOnly = state.mode === 'view';
  client.scaleViewport = scaled;
  client.clipViewport = !scaled;
  client.resizeSession = false;
  client.background = '#101418';
  rfb = client;
  client.addEventListener('connect', () => {
    if (rfb !== client) return;
    attempt = 0;
    mayWake = false;
    state.connects += 1;
    state.lastConnectMs = performance.now() - startedAt;
    state.phase = 'connected';
    hideStatus();
    revealToolbar();
    client.focus();
    sessionReadAt = 0;
    watchLimits();
  });
  client.addEventListener('clipboard', (event) => {
    clipboardText.value = event.detail.text;
  });
  client.addEventListener('disconnect', (event) => {
    if (rfb !== client) return; // replaced on purpose
    rfb = null;
    state.phase = 'disconnected';
    watchLimits();
    const why = event.detail.clean ? 'The desktop closed the connection.' : 'The connection to your desktop dropped.';
    retryLater(why);
  });
  client.addEventListener('securityfailure', (event) => {
    if (rfb !== client) return;
    stop('The desktop refused the connection.', event.detail.reason ?? '');
  });
  client.addEventListener('credentialsrequired', () => {
    if (rfb !== client) return;
    stop('The desktop asks for a password, which StreamSpace sessions never do.');
    client.disconnect();
  });
  client.addEventListener('desktopname', (event) => {
    document.title = `${event.detail.name} — StreamSpace`;
  });
}

function reconnect() {
  state.reconnects += 1;
  mayWake = true;
  attempt = 0;
  const old = rfb;
  rfb = null; // its disconnect event is now ignored
  if (old) old.disconnect();
  connect();
}

function disconnect() {
  const old = rfb;
  rfb = null;
  if (old) old.disconnect();
  stop('You disconnected from this desktop.', 'It keeps running; reconnect whenever you like.', { canRetry: true });
}

function toggleFullscreen() {
  if (document.fullscreenElement) document.exitFullscreen();
  else document.documentElement.requestFullscreen().catch(() => {});
}

function toggleScale(button) {
  scaled = !scaled;
  if (rfb) {
    rfb.scaleViewport = scaled;
    rfb.clipViewport = !scaled;
  }
  button.textContent = scaled ? 'Scale: fit' : 'Scale: 100 %';
  button.setAttribute('aria-pressed', String(scaled));
}

function toggleClipboard(button) {
  const open = clipboardPanel.hidden;
  clipboardPanel.hidden = !open;
  button.setAttribute('aria-expanded', String(open));
  if (open) clipboardText.focus();
  else rfb?.focus();
}

function showInfo() {
  dialog('Session info', (body) => {
    if (!session) {
      body.append(el('p', {}, 'No details yet.'));
      return;
    }
    body.append(el('dl', { class: 'facts' },
      el('dt', {}, 'Template'), el('dd', {}, session.template),
      el('dt', {}, 'Platform'), el('dd', {}, platform(session.platform)),
      el('dt', {}, 'Agent'), el('dd', {}, el('code', {}, session.agent_id ?? '—')),
      el('dt', {}, 'Region'), el('dd', {}, session.region ?? '—'),
      el('dt', {}, 'Started'), el('dd', {}, when(session.started_at)),
      el('dt', {}, 'Owner'), el('dd', {}, session.owner),
      el('dt', {}, 'Session'), el('dd', {}, el('code', {}, session.id))));
  }).then(() => rfb?.focus());
}

// The toolbar shows itself on connect and near the top edge, and hides again a few seconds
// after the pointer leaves it, so the desktop gets the whole window.
let hideTimer = null;
function revealToolbar(ms = 3000) {
  toolbar.classList.add('shown');
  clearTimeout(hideTimer);
  hideTimer = setTimeout(() => {
    if (!toolbar.matches(':hover') && clipboardPanel.hidden) toolbar.classList.remove('shown');
  }, ms);
}
document.getElementById('toolbar-edge').addEventListener('mouseenter', () => revealToolbar());
toolbar.addEventListener('mouseleave', () => revealToolbar(1500));

const ACTIONS = {
  clipboard: toggleClipboard,
  'ctrl-alt-del': () => rfb?.sendCtrlAltDel(),
  fullscreen: toggleFullscreen,
  scale: toggleScale,
  reconnect,
  disconnect,
  info: showInfo,
};
toolbar.addEventListener('click', (event) => {
  const button = event.target.closest('button[data-action]');
  if (!button) return;
  ACTIONS[button.dataset.action](button);
  if (!['clipboard', 'info', 'disconnect'].includes(button.dataset.action)) rfb?.focus();
});
document.addEventListener('fullscreenchange', () => {
  toolbar.querySelector('[data-action=fullscreen]').setAttribute('aria-pressed', String(Boolean(document.fullscreenElement)));
});
document.getElementById('clipboard-send').addEventListener('click', () => {
  rfb?.clipboardPasteFrom(clipboardText.value);
  state.clipboardSent = clipboardText.value;
});
document.getElementById('clipboard-close').addEventListener('click', () => toggleClipboard(toolbar.querySelector('[data-action=clipboard]')));

// Capture phase on window: the shortcuts never reach noVNC, so the remote desktop does not
// see them either.
window.addEventListener(
  'keydown',
  (event) => {
    if (!(event.ctrlKey && event.altKey && event.shiftKey)) return;
    if (event.code === 'KeyF') toggleFullscreen();
    else if (event.code === 'KeyR') reconnect();
    else return;
    event.preventDefault();
    event.stopImmediatePropagation();
  },
  true,
);

// Closing the tab closes the stream cleanly, so it is recorded as the viewer closing.
window.addEventListener('pagehide', () => {
  const old = rfb;
  rfb = null;
  old?.disconnect();
});

setTimeout(() => document.getElementById('hint').classList.add('faded'), 5000);
retryButton.addEventListener('click', reconnect);
state.reconnectNow = reconnect;
connect();
