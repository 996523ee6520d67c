// The desktop viewer: noVNC (from its npm package, served at /novnc) connected through the
// control plane's VNC proxy with a short viewer token, reconnecting by itself when the stream
// drops, and saying plainly why when the desktop cannot be shown.

import RFB from '/novnc/core/rfb.js';
import { api, ApiError, token, signInUrl } from '/assets/api.js';

const sessionId = decodeURIComponent(location.pathname.split('/').filter(Boolean).pop());
const screen = document.getElementById('screen');
const statusBox = document.getElementById('status');
const statusText = document.getElementById('status-text');
const statusDetail = document.getElementById('status-detail');
const spinner = document.getElementById('spinner');
const retryButton = document.getElementById('retry');

// Observable state, for people debugging and for the browser tests.
const state = (window.streamspace = {
  phase: 'starting',
  connects: 0,
  reconnects: 0,
  lastConnectMs: null,
  message: '',
});

let rfb = null;
let attempt = 0;
let retryTimer = null;
let startedAt = 0;

function show(message, { detail = '', busy = true, canRetry = false } = {}) {
  state.message = message;
  statusText.textContent = message;
  statusDetail.textContent = detail;
  spinner.hidden = !busy;
  retryButton.hidden = !canRetry;
  statusBox.hidden = false;
}

function hideStatus() {
  statusBox.hidden = true;
}

function stop(message, detail = '') {
  state.phase = 'stopped';
  clearTimeout(retryTimer);
  show(message, { detail, busy: false, canRetry: true });
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

async function connect() {
  clearTimeout(retryTimer);
  if (!token()) {
    location.replace(signInUrl());
    return;
  }
  startedAt = performance.now();
  state.phase = 'connecting';
  show(state.connects ? 'Reconnecting…' : 'Connecting to your desktop…');
  let session;
  let viewer;
  try {
    session = await api(`/api/v1/sessions/${encodeURIComponent(sessionId)}`);
    if (session.state === 'pending' || session.state === 'creating') {
      attempt = 0;
      retryTimer = setTimeout(connect, 1000);
      state.phase = 'waiting';
      show('Starting your desktop…', { detail: `The session is ${session.state}.` });
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
    if (e.status === 404) return stop('This session does not exist, or it is not yours.');
    if (e.code === 'vnc_proxy_disabled') return stop('Viewing is switched off on this server.', e.message);
    if (e.status === 409) return retryLater('The desktop is not ready.', e.message);
    return retryLater('The control plane did not answer.', e.message);
  }
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const url = `${scheme}://${location.host}${viewer.path}?token=${encodeURIComponent(viewer.token)}`;
  open(url);
}

function open(url) {
  const client = new RFB(screen, url, { shared: true });
  client.scaleViewport = true;
  client.resizeSession = false;
  client.background = '#101418';
  rfb = client;
  client.addEventListener('connect', () => {
    if (rfb !== client) return;
    attempt = 0;
    state.connects += 1;
    state.lastConnectMs = performance.now() - startedAt;
    state.phase = 'connected';
    hideStatus();
    client.focus();
  });
  client.addEventListener('disconnect', (event) => {
    if (rfb !== client) return; // replaced on purpose
    rfb = null;
    state.phase = 'disconnected';
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
  attempt = 0;
  const old = rfb;
  rfb = null; // its disconnect event is now ignored
  if (old) old.disconnect();
  connect();
}

function toggleFullscreen() {
  if (document.fullscreenElement) document.exitFullscreen();
  else document.documentElement.requestFullscreen().catch(() => {});
}

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

retryButton.addEventListener('click', reconnect);
state.reconnectNow = reconnect;
connect();
