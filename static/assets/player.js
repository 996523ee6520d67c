// The recording player: fetches a recording (the desktop's RFB bytes, each chunk with its
// time), and feeds it to noVNC through a channel of our own instead of a WebSocket, at real
// speed or faster. Seeking replays from the start up to the new position at once (RFB
// updates build on the screen before them), then plays on from there.

import RFB from '/novnc/core/rfb.js';
import { api, ApiError, token, signInUrl } from '/assets/api.js';

const recordingId = decodeURIComponent(location.pathname.split('/').filter(Boolean).pop());
const screen = document.getElementById('screen');
const playButton = document.getElementById('play');
const speedSelect = document.getElementById('speed');
const seek = document.getElementById('seek');
const clock = document.getElementById('clock');
const statusBox = document.getElementById('status');

// Observable state, for people debugging and for the browser tests.
const state = (window.streamspace = { phase: 'loading', position: 0, duration: 0, playing: false, chunks: 0 });

const MAGIC = 'STREAMSPACE-RFB-RECORDING 1\n';

/** The recording's chunks: [{ at (ms), data (ArrayBuffer) }]. */
function parse(buffer) {
  const bytes = new Uint8Array(buffer);
  const magic = new TextDecoder().decode(bytes.subarray(0, MAGIC.length));
  if (magic !== MAGIC) throw new Error('this is not a StreamSpace recording');
  const view = new DataView(buffer);
  const chunks = [];
  let offset = MAGIC.length;
  while (offset + 8 <= bytes.length) {
    const at = view.getUint32(offset);
    const length = view.getUint32(offset + 4);
    offset += 8;
    if (offset + length > bytes.length) break; // a recording cut mid-chunk ends there
    chunks.push({ at, data: buffer.slice(offset, offset + length) });
    offset += length;
  }
  return chunks;
}

/** What noVNC needs of a WebSocket, fed by us; what the viewer "sends" goes nowhere. */
class Replay {
  constructor() {
    this.binaryType = 'arraybuffer';
    this.protocol = '';
    this.readyState = WebSocket.OPEN;
    this.onerror = null;
    this.onmessage = null;
    this.onopen = null;
    this.onclose = null;
  }
  send() {}
  close() {
    if (this.readyState === WebSocket.CLOSED) return;
    this.readyState = WebSocket.CLOSED;
    this.onclose?.({ code: 1000, reason: '', wasClean: true });
  }
  feed(data) {
    this.onmessage?.({ data });
  }
}

let chunks = [];
let rfb = null;
let channel = null;
let next = 0; // the next chunk to feed
let origin = 0; // performance.now() at which position 0 would have played
let timer = null;

const minutes = (ms) => `${Math.floor(ms / 60000)}:${String(Math.floor(ms / 1000) % 60).padStart(2, '0')}`;

function show(message, detail = '') {
  document.getElementById('status-text').textContent = message;
  document.getElementById('status-detail').textContent = detail;
  document.getElementById('spinner').hidden = true;
  statusBox.hidden = false;
}

function speed() {
  return Number(speedSelect.value);
}

function render() {
  seek.value = String(state.position);
  clock.textContent = `${minutes(state.position)} / ${minutes(state.duration)}`;
  playButton.textContent = state.playing ? 'Pause' : 'Play';
}

/** A fresh screen fed everything before `position` at once. */
function restartAt(position) {
  if (rfb) rfb.disconnect();
  screen.replaceChildren();
  channel = new Replay();
  rfb = new RFB(screen, channel, { shared: true });
  rfb.viewOnly = true;
  rfb.scaleViewport = true;
  next = 0;
  while (next < chunks.length && chunks[next].at <= position) channel.feed(chunks[next++].data);
  state.position = position;
}

function tick() {
  clearTimeout(timer);
  if (!state.playing) return;
  state.position = Math.min(state.duration, (performance.now() - origin) * speed());
  while (next < chunks.length && chunks[next].at <= state.position) channel.feed(chunks[next++].data);
  state.chunks = next;
  render();
  if (next >= chunks.length) {
    state.playing = false;
    state.phase = 'ended';
    render();
    return;
  }
  const wait = (chunks[next].at - state.position) / speed();
  timer = setTimeout(tick, Math.max(0, Math.min(wait, 250)));
}

function play() {
  if (state.phase === 'ended') restartAt(0);
  state.playing = true;
  state.phase = 'playing';
  origin = performance.now() - state.position / speed();
  tick();
}

function pause() {
  state.playing = false;
  state.phase = 'paused';
  clearTimeout(timer);
  render();
}

playButton.addEventListener('click', () => (state.playing ? pause() : play()));
speedSelect.addEventListener('change', () => {
  if (state.playing) origin = performance.now() - state.position / speed();
});
seek.addEventListener('input', () => {
  const [target, playing] = [Number(seek.value), state.playing];
  pause(); // (which shows the old position on the bar)
  restartAt(target);
  state.chunks = next;
  if (playing) play();
  else render();
});

async function load() {
  if (!token()) {
    location.replace(signInUrl());
    return;
  }
  try {
    const recording = await api(`/api/v1/recordings/${encodeURIComponent(recordingId)}`);
    const response = await fetch(`/api/v1/recordings/${encodeURIComponent(recordingId)}/data`, { headers: { authorization: `Bearer ${token()}` } });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new ApiError(response.status, body.error, body.message ?? response.statusText);
    }
    chunks = parse(await response.arrayBuffer());
    state.total = chunks.length;
    state.duration = chunks.length ? chunks[chunks.length - 1].at : 0;
    seek.max = String(state.duration);
    document.title = `${recording.username} · ${recording.template} — StreamSpace recording`;
  } catch (e) {
    state.phase = 'failed';
    if (e instanceof ApiError && e.status === 401) {
      location.replace(signInUrl());
      return;
    }
    return show('This recording cannot be played.', e.message);
  }
  statusBox.hidden = true;
  restartAt(0);
  state.phase = 'ready';
  render();
  play();
}

load();
