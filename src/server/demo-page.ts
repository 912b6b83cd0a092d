/**
 * The browser demo page served at `GET /`: one self-contained HTML document (inline CSS and JS, no
 * external resources, no build step) that talks to the server over the wire protocol with websocket
 * PCM16 audio at 16 kHz. Two AudioWorklets (loaded from a Blob URL) do the audio: `vox-capture`
 * downsamples the microphone to 16 kHz mono and posts 20 ms frames; `vox-playout` plays the agent's
 * frames gap-free from a queue and reports what it has played.
 *
 * The page shows both regions of the session's public state: the turn (`listening`, `thinking`,
 * `speaking`, `interrupted.*`, …) and the user's voice (silent / speaking / paused). While the turn
 * is `interrupted.*` the server has paused the reply, and the page pauses its own playout too (the
 * queued audio is kept); a false interruption resumes it, a confirmed one flushes it.
 *
 * A mini statechart beside the badges lights the active node of each region, and a link opens the
 * session in `/inspect?session=<id>` (the full live statechart).
 *
 * The avatar: `avatar.frames` envelopes are decoded in the page (demo-avatar.ts) and drawn on a
 * canvas face — jaw, eyelids, head rotation — each keyframe at the AudioContext time its audio is
 * heard, from the playout worklet's clock reports, not when it arrives (the Motion Server answers
 * faster than real time). A barge-in, a confirmed interruption or a lost connection resets the face.
 *
 * The page exposes a read-only `window.__voxstate` ({ state, voice, framesPlayed, ... }) for tests.
 * The resume token lives only in a closure: it is never shown, logged or put on `window`.
 */

import { AVATAR_SCRIPT } from './demo-avatar.js';

/** Response headers for the page: a strict CSP that still lets the inline code and the Blob worklet run. */
export const DEMO_PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy': [
    "default-src 'none'",
    // AudioWorklet modules are scripts: the Blob URL needs blob: in script-src.
    "script-src 'unsafe-inline' blob:",
    "style-src 'unsafe-inline'",
    "connect-src 'self' ws: wss:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
  'permissions-policy': 'microphone=(self)',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
};

/** The two AudioWorklet processors, as module source for a Blob URL. `sampleRate` is the worklet global. */
const WORKLETS = String.raw`
const FRAME = 320; // 20 ms at 16 kHz
class Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / 16000; this.pos = 0; this.sum = 0; this.n = 0;
    this.frame = new Int16Array(FRAME); this.fill = 0;
  }
  process(inputs) {
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true;
    const length = channels[0].length;
    for (let i = 0; i < length; i++) {
      let v = 0;
      for (let c = 0; c < channels.length; c++) v += channels[c][i];
      // Box filter over each output period: a cheap anti-alias low-pass before decimating.
      this.sum += v / channels.length; this.n++; this.pos += 1;
      if (this.pos < this.step) continue;
      this.pos -= this.step;
      const s = Math.max(-1, Math.min(1, this.sum / this.n));
      this.sum = 0; this.n = 0;
      this.frame[this.fill++] = s < 0 ? s * 32768 : s * 32767;
      if (this.fill === FRAME) {
        this.port.postMessage(this.frame.buffer, [this.frame.buffer]);
        this.frame = new Int16Array(FRAME); this.fill = 0;
      }
    }
    return true;
  }
}
class Playout extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = []; this.head = 0; this.queued = 0; this.primed = false; this.draining = false; this.paused = false;
    this.prebuffer = Math.round(sampleRate * 0.06); this.limit = sampleRate * 20;
    this.frames = 0; this.reply = null; this.played = 0; this.sinceReport = 0; this.playing = false;
    this.port.onmessage = (e) => {
      const m = e.data;
      if (m.flush) { this.queue = []; this.head = 0; this.queued = 0; this.primed = false; this.paused = false; this.playing = false; this.report(currentTime); return; }
      if (m.pause !== undefined) { this.paused = m.pause; return; }
      if (m.drain) { this.draining = true; return; }
      this.queue.push(m); this.queued += m.samples.length; this.draining = false;
      while (this.queued > this.limit && this.queue.length > 1) { this.queued -= this.queue[0].samples.length - this.head; this.queue.shift(); this.head = 0; }
    };
  }
  // The audio clock for the page: the reply's first playedMs ms are rendered, and the last of them is
  // heard at context time at (currentTime is this render quantum's first sample). Sent when playing
  // starts or stops, and every 100 ms of audio in between.
  report(at) {
    this.sinceReport = 0;
    this.port.postMessage({ replyId: this.reply, playedMs: (this.played * 1000) / sampleRate, frames: this.frames, at, playing: this.playing });
  }
  process(_inputs, outputs) {
    const out = outputs[0][0];
    if (!this.primed && (this.queued >= this.prebuffer || (this.draining && this.queued > 0))) this.primed = true;
    let i = 0;
    while (this.primed && !this.paused && i < out.length && this.queue.length > 0) {
      const chunk = this.queue[0];
      if (chunk.replyId !== this.reply) { this.reply = chunk.replyId; this.played = 0; }
      const n = Math.min(out.length - i, chunk.samples.length - this.head);
      out.set(chunk.samples.subarray(this.head, this.head + n), i);
      i += n; this.head += n; this.queued -= n; this.played += n; this.sinceReport += n;
      if (this.head === chunk.samples.length) { this.queue.shift(); this.head = 0; this.frames++; }
    }
    out.fill(0, i);
    // Paused: hold the queue (the reply may resume). Ran dry: wait for the prebuffer again.
    if (!this.paused && this.primed && this.queue.length === 0) this.primed = false;
    const playing = this.primed && !this.paused;
    if (playing !== this.playing || this.sinceReport >= sampleRate / 10 || (i > 0 && !playing)) {
      this.playing = playing;
      this.report(currentTime + i / sampleRate);
    }
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    return true;
  }
}
registerProcessor('vox-capture', Capture);
registerProcessor('vox-playout', Playout);
`;

const SCRIPT = String.raw`
'use strict';
const $ = (id) => document.getElementById(id);
const ui = { state: $('state'), voice: $('voice'), note: $('note'), conn: $('conn'), log: $('log'), partial: $('partial'), metrics: $('metrics'),
  errors: $('errors'), start: $('start'), stop: $('stop'), reconnect: $('reconnect'), form: $('text-form'), text: $('text'),
  avatar: $('avatar'), chart: $('chart'), inspect: $('inspect') };
const view = { state: 'disconnected', voice: 'silent', connected: false, micOn: false, framesReceived: 0, framesPlayed: 0, replies: 0, transcripts: 0,
  falseInterruptions: 0, errors: 0, sessionId: '', partials: 0, partial: '', playedMs: 0,
  // The avatar: keyframes decoded, distinct keyframes put on the canvas (and how many of those after
  // their reply's last frames had arrived), the keyframe on the canvas now (-1: the rest pose).
  avatarKeyframes: 0, avatarShown: 0, avatarShownAfterLast: 0, avatarKeyframe: -1, avatarConversation: '', avatarDraws: 0, avatarResets: 0 };
Object.defineProperty(window, '__voxstate', { value: new Proxy(view, { set: () => false, defineProperty: () => false, deleteProperty: () => false }) });

let ws = null, session = null, attempt = 0, retryTimer = 0, gaveUp = false;
let rate = 16000, ctx = null, playout = null, mic = null, upsample = null;
let replyId = null, replyRate = 16000, dropAudio = false, outputPaused = false;
const replyItems = new Map();

function wsUrl() {
  return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + WS_PATH;
}
function send(message) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
}
function addLine(who, text, cls) {
  const li = document.createElement('li');
  const b = document.createElement('b');
  b.textContent = who + ': ';
  const span = document.createElement('span');
  span.textContent = text;
  li.append(b, span);
  if (cls) li.className = cls;
  ui.log.append(li);
  li.scrollIntoView({ block: 'nearest' });
  return span;
}
function showError(text) {
  view.errors++;
  const li = document.createElement('li');
  li.textContent = text;
  ui.errors.append(li);
}
function setState(state, voice) {
  view.state = state;
  ui.state.textContent = state;
  ui.state.dataset.state = state.split('.')[0];
  if (voice) {
    view.voice = voice;
    ui.voice.textContent = voice;
    ui.voice.dataset.voice = voice;
  }
  // The mini statechart: the active node of each region.
  const [top, sub] = state.split('.');
  for (const node of ui.chart.querySelectorAll('[data-node]')) {
    const on = node.parentElement.dataset.region === 'voice' ? node.dataset.node === view.voice : node.dataset.node === top;
    node.classList.toggle('on', on);
    if (on) node.setAttribute('aria-current', 'true'); else node.removeAttribute('aria-current');
    if (node.dataset.node === 'interrupted') node.textContent = on && sub ? 'interrupted · ' + sub : 'interrupted';
  }
  // interrupted.*: the server paused the reply at the user's voice; pause what is queued here too.
  const pause = state.startsWith('interrupted');
  if (pause !== outputPaused) {
    outputPaused = pause;
    if (playout) playout.port.postMessage({ pause });
  }
}
function setConn(text, connected) {
  view.connected = connected;
  ui.conn.textContent = text;
  ui.reconnect.hidden = !gaveUp;
}

// ---- connection, with resume after a drop
function connect() {
  clearTimeout(retryTimer);
  gaveUp = false;
  setConn(session ? 'reconnecting…' : 'connecting…', false);
  const socket = new WebSocket(wsUrl());
  socket.binaryType = 'arraybuffer';
  ws = socket;
  socket.onopen = () => {
    if (session) send({ type: 'session.resume', sessionId: session.id, resumeToken: session.token, protocol: 1 });
    else send({ type: 'session.hello', protocol: 1, audio: { transport: 'websocket', format: 'pcm16', sampleRate: 16000, channels: 1 } });
  };
  socket.onmessage = (e) => (typeof e.data === 'string' ? onMessage(JSON.parse(e.data)) : onAudio(e.data));
  socket.onclose = (e) => {
    if (ws !== socket) return;
    ws = null;
    flush();
    // A refused, unknown or expired session is final: start a new one. 1000/1008/other 44xx: stop.
    if (e.code === 1000 || e.code === 4403 || e.code === 4404 || e.code === 4408) session = null;
    const retry = e.code === 4403 || e.code === 4404 || e.code === 4408 || !(e.code === 1000 || e.code === 1008 || (e.code >= 4400 && e.code < 4500));
    if (!retry || attempt >= 8) {
      gaveUp = true;
      setConn('disconnected (' + e.code + ')', false);
      setState('disconnected', 'silent');
      return;
    }
    attempt++;
    const delay = Math.min(500 * 2 ** (attempt - 1), 8000) * (1 - Math.random() * 0.3);
    setConn('connection lost, retrying in ' + (delay / 1000).toFixed(1) + ' s', false);
    retryTimer = setTimeout(connect, delay);
  };
}

function onMessage(m) {
  switch (m.type) {
    case 'session.ready':
      session = { id: m.sessionId, token: m.resumeToken };
      view.sessionId = m.sessionId;
      ui.inspect.href = '/inspect?session=' + encodeURIComponent(m.sessionId);
      ui.inspect.parentElement.hidden = false;
      rate = m.audio.sampleRate;
      attempt = 0;
      setConn('connected', true);
      break;
    case 'session.resumed':
      if (m.resumeToken) session.token = m.resumeToken;
      attempt = 0;
      setConn('connected (resumed)', true);
      setState(m.state, m.voice);
      break;
    case 'session.state':
      setState(m.state, m.voice);
      break;
    case 'interruption.false':
      view.falseInterruptions++;
      ui.note.textContent = 'Not an interruption (' + Math.round(m.voicedMs) + ' ms of voice): the agent goes on.';
      break;
    case 'interruption.confirmed':
      ui.note.textContent = 'Interrupted (' + m.by + ').';
      flush();
      dropAudio = true;
      break;
    case 'transcript.partial':
      // What the recognizer has heard so far; the final transcript replaces it in the conversation.
      view.partials++;
      view.partial = m.text;
      ui.partial.textContent = m.text;
      break;
    case 'transcript.final':
      view.partial = '';
      ui.partial.textContent = '';
      if (m.text) { view.transcripts++; addLine('You', m.text, 'user'); }
      break;
    case 'reply.delta': {
      let span = replyItems.get(m.replyId);
      if (!span) { span = addLine('Agent', '', 'agent'); replyItems.set(m.replyId, span); }
      span.textContent += m.text;
      break;
    }
    case 'reply.done': {
      let span = replyItems.get(m.replyId);
      if (!span) span = addLine('Agent', '', 'agent');
      replyItems.delete(m.replyId);
      span.textContent = m.text + (m.interrupted ? ' (interrupted)' : '');
      view.replies++;
      if (m.interrupted) { flush(); dropAudio = true; }
      if (m.replyId === replyId) { playout && playout.port.postMessage({ drain: true }); }
      break;
    }
    case 'reply.audio_start':
      ui.note.textContent = '';
      replyId = m.replyId;
      avatar.audioStart(m.replyId);
      replyRate = m.sampleRate || rate;
      dropAudio = false;
      upsample = null;
      break;
    case 'reply.audio_end':
      if (playout) playout.port.postMessage({ drain: true });
      break;
    case 'avatar.audio':
      avatar.audio(m.conversationId);
      break;
    case 'avatar.frames':
      onFrames(m);
      break;
    case 'avatar.interrupt':
      flush();
      break;
    case 'metrics.turn': {
      const parts = [['speech end → first audio', m.speechEndToFirstAudioMs], ['STT', m.sttMs],
        ['LLM first token', m.llmFirstTokenMs], ['TTS first audio', m.ttsFirstAudioMs]]
        .filter((p) => typeof p[1] === 'number').map((p) => p[0] + ' ' + Math.round(p[1]) + ' ms');
      const li = document.createElement('li');
      li.textContent = m.turnId + ': ' + (parts.join(', ') || 'no timings');
      ui.metrics.prepend(li);
      while (ui.metrics.children.length > 5) ui.metrics.lastElementChild.remove();
      break;
    }
    case 'error':
      showError(m.code + ': ' + m.message + (m.fatal ? ' (fatal)' : ''));
      break;
  }
}

// ---- audio out: PCM16 frames → Float32 at the context rate → the playout worklet
function resampler(inRate, outRate) {
  const step = inRate / outRate;
  let pos = 0, prev = 0;
  return (pcm) => {
    const out = new Float32Array(Math.ceil((pcm.length - pos) / step) + 1);
    let k = 0;
    for (; pos < pcm.length; pos += step) {
      const i = Math.floor(pos), f = pos - i;
      const a = i === 0 ? prev : pcm[i - 1], b = pcm[i];
      out[k++] = (a + (b - a) * f) / 32768;
    }
    pos -= pcm.length;
    prev = pcm[pcm.length - 1];
    return out.subarray(0, k);
  };
}
function onAudio(buffer) {
  view.framesReceived++;
  if (dropAudio || !playout || buffer.byteLength < 2) return;
  upsample = upsample || resampler(replyRate, ctx.sampleRate);
  const samples = upsample(new Int16Array(buffer, 0, buffer.byteLength >> 1));
  playout.port.postMessage({ replyId, samples }, [samples.buffer]);
}
function flush() {
  outputPaused = false;
  if (playout) playout.port.postMessage({ flush: true });
  resetAvatar();
}

// ---- the avatar: FLAME keyframes drawn when their audio is heard (demo-avatar.ts)
const avatar = createAvatarTimeline();
const face = { g: ui.avatar.getContext('2d'), w: ui.avatar.clientWidth || 200, h: ui.avatar.clientHeight || 200, key: '', raf: 0, shown: '' };
const endedConversations = new Set();
{
  const dpr = Math.min(2, devicePixelRatio || 1);
  ui.avatar.width = Math.round(face.w * dpr);
  ui.avatar.height = Math.round(face.h * dpr);
  face.g.scale(dpr, dpr);
}
function base64Bytes(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}
function onFrames(m) {
  const keyframes = [];
  for (const frame of m.frames) {
    let animation = null;
    try { animation = decodeAnimation(base64Bytes(frame)); } catch (error) { showError('avatar: unreadable frame (' + error.message + ')'); }
    if (animation) for (const k of animation.keyframes) keyframes.push(k);
  }
  avatar.frames(m.conversationId, keyframes, m.isLast);
  ui.avatar.dataset.live = '';
  view.avatarKeyframes = avatar.stats.keyframes;
  if (m.isLast) endedConversations.add(m.conversationId);
  wakeAvatar();
}
// The AudioContext time the listener hears now: the output timestamp carried forward to this
// instant (it accounts for the output latency), or currentTime less the reported latency.
function audibleTime() {
  const ts = ctx.getOutputTimestamp ? ctx.getOutputTimestamp() : undefined;
  if (ts && ts.contextTime > 0 && ts.performanceTime > 0) return ts.contextTime + Math.max(0, performance.now() - ts.performanceTime) / 1000;
  return ctx.currentTime - (ctx.outputLatency || ctx.baseLatency || 0);
}
function paint(pose) {
  let key = '';
  for (const k in pose) key += pose[k].toFixed(4) + ',';
  if (key === face.key) return;
  face.key = key;
  drawFace(face.g, face.w, face.h, pose);
  view.avatarDraws++;
}
function tickAvatar() {
  face.raf = 0;
  if (!ctx) return;
  const r = avatar.poseAt(audibleTime(), outputPaused);
  paint(r.pose);
  view.avatarKeyframe = r.keyframe;
  view.avatarConversation = r.conversation;
  const shown = r.conversation + '#' + r.keyframe;
  if (r.keyframe >= 0 && shown !== face.shown) {
    view.avatarShown++;
    if (endedConversations.has(r.conversation)) view.avatarShownAfterLast++;
  }
  face.shown = shown;
  if (r.active) face.raf = requestAnimationFrame(tickAvatar);
}
function wakeAvatar() {
  if (!face.raf) face.raf = requestAnimationFrame(tickAvatar);
}
/** Barge-in (or a lost connection): the reply's motion is over; back to the rest pose at once. */
function resetAvatar() {
  avatar.interrupt();
  endedConversations.clear();
  view.avatarResets++;
  view.avatarKeyframe = -1;
  view.avatarConversation = '';
  face.shown = '';
  paint(REST);
}
paint(REST);

let audioReady = null;
function ensureAudio() {
  audioReady = audioReady || setUpAudio().catch((error) => { audioReady = null; throw error; });
  return audioReady.then(() => (ctx.state === 'suspended' ? ctx.resume() : undefined));
}
async function setUpAudio() {
  const context = new AudioContext({ latencyHint: 'interactive' });
  const url = URL.createObjectURL(new Blob([WORKLETS], { type: 'text/javascript' }));
  try {
    await context.audioWorklet.addModule(url);
  } catch (error) {
    void context.close();
    throw error;
  } finally {
    URL.revokeObjectURL(url);
  }
  const node = new AudioWorkletNode(context, 'vox-playout', { numberOfInputs: 0, outputChannelCount: [1] });
  node.port.onmessage = (e) => {
    view.framesPlayed = e.data.frames;
    avatar.clock(e.data);
    wakeAvatar();
    if (e.data.replyId) {
      view.playedMs = e.data.playedMs;
      send({ type: 'playback.progress', replyId: e.data.replyId, playedMs: e.data.playedMs });
    }
  };
  node.connect(context.destination);
  ctx = context;
  playout = node;
}

// ---- audio in: microphone → 16 kHz PCM16 20 ms frames → binary messages
async function startMic() {
  ui.start.disabled = true;
  try {
    await ensureAudio();
    const stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true, channelCount: 1 } });
    const source = ctx.createMediaStreamSource(stream);
    const capture = new AudioWorkletNode(ctx, 'vox-capture', { numberOfOutputs: 0 });
    capture.port.onmessage = (e) => { if (ws && ws.readyState === WebSocket.OPEN) ws.send(e.data); };
    source.connect(capture);
    mic = { stream, source, capture };
    view.micOn = true;
    ui.start.textContent = 'Microphone on';
  } catch (error) {
    ui.start.disabled = false;
    showError('microphone: ' + (error && error.message ? error.message : String(error)));
  }
}

ui.start.addEventListener('click', () => void startMic());
ui.stop.addEventListener('click', () => { flush(); send({ type: 'session.interrupt' }); });
ui.reconnect.addEventListener('click', () => { attempt = 0; connect(); });
ui.form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const text = ui.text.value.trim();
  if (!text || !ws || ws.readyState !== WebSocket.OPEN) return;
  try { await ensureAudio(); } catch (error) { showError('audio: ' + error.message); }
  send({ type: 'user.text', text });
  addLine('You (typed)', text, 'user');
  ui.text.value = '';
});
addEventListener('pagehide', () => {
  send({ type: 'session.close', reason: 'page closed' });
  if (mic) mic.stream.getTracks().forEach((t) => t.stop());
});
connect();
`;

const STYLE = `
:root { color-scheme: light dark; font: 16px/1.5 system-ui, sans-serif; }
body { max-width: 46rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
.bar { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; margin: 1rem 0; }
button, input { font: inherit; padding: .45rem .8rem; border-radius: .4rem; border: 1px solid #888; }
button { cursor: pointer; background: #1d4ed8; color: #fff; border-color: #1d4ed8; }
button:disabled { opacity: .6; cursor: default; }
button.secondary { background: transparent; color: inherit; border-color: #888; }
button:focus-visible, input:focus-visible { outline: 3px solid #f59e0b; outline-offset: 2px; }
#state { font-family: ui-monospace, monospace; padding: .15rem .5rem; border-radius: .3rem; background: #8883; }
#state[data-state="speaking"] { background: #16a34a55; }
#state[data-state="interrupted"] { background: #f59e0b55; }
#voice { font-family: ui-monospace, monospace; padding: .15rem .5rem; border-radius: .3rem; background: #8883; }
#voice[data-voice="speaking"] { background: #2563eb55; }
#voice[data-voice="paused"] { background: #2563eb22; }
#note { color: #888; min-height: 1.5em; }
#log { list-style: none; padding: 0; min-height: 6rem; max-height: 24rem; overflow-y: auto; border: 1px solid #8886; border-radius: .4rem; }
#log li { padding: .35rem .6rem; border-bottom: 1px solid #8883; }
#log li.agent b { color: #16a34a; } #log li.user b { color: #2563eb; }
#partial { color: #888; font-style: italic; min-height: 1.5em; }
#partial:not(:empty)::before { content: "hearing: "; font-style: normal; }
.stage { display: flex; flex-wrap: wrap; gap: 1rem; align-items: center; }
.stage > div { flex: 1; min-width: 16rem; } .stage p { margin: .25rem 0; }
#avatar { width: 200px; height: 200px; border-radius: .6rem; background: #8881; }
#avatar:not([data-live]) { opacity: .45; } /* no avatar frames yet (the server may have no avatar) */
#chart div { display: flex; flex-wrap: wrap; gap: .25rem; align-items: center; margin: .2rem 0; font: .75rem ui-monospace, monospace; }
#chart i { width: 2.6rem; color: #888; }
#chart span { padding: 0 .35rem; border: 1px solid #8886; border-radius: 1rem; color: #888; }
#chart span.on { color: inherit; border-color: #16a34a; background: #16a34a33; font-weight: 600; }
#chart [data-region="voice"] span.on { border-color: #2563eb; background: #2563eb33; }
.small { font-size: .85rem; color: #888; }
#errors li { color: #dc2626; }
form { display: flex; gap: .5rem; } form input { flex: 1; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
`;

/** JSON for a `<script>` body: `<`, U+2028 and U+2029 escaped so no value can end the script element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/** The demo page for a server whose WebSocket endpoint is `wsPath` (default `/ws`). */
export function demoPageHtml(options: { readonly wsPath?: string } = {}): string {
  const wsPath = options.wsPath ?? '/ws';
  if (!wsPath.startsWith('/')) throw new TypeError(`wsPath must start with "/", got ${JSON.stringify(wsPath)}`);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>voxstate — talk to the agent</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>voxstate</h1>
<p>Talk to the agent with your microphone, or type. Connection: <span id="conn" role="status">connecting…</span></p>
<section class="stage">
<canvas id="avatar" role="img" aria-label="The agent's face, animated by the avatar frames as its voice plays"></canvas>
<div>
<p>Session state: <span id="state" role="status" aria-live="polite">disconnected</span>
  · Your voice: <span id="voice" data-voice="silent">silent</span></p>
<div id="chart" aria-hidden="true">
  <div data-region="turn"><i>turn</i> <span data-node="listening">listening</span><span data-node="transcribing">transcribing</span><span data-node="thinking">thinking</span><span data-node="speaking">speaking</span><span data-node="interrupted">interrupted</span></div>
  <div data-region="voice"><i>voice</i> <span data-node="silent">silent</span><span data-node="speaking">speaking</span><span data-node="paused">paused</span></div>
</div>
<p class="small" id="inspect-note" hidden><a id="inspect" href="/inspect" target="_blank" rel="noopener">Inspect this session</a>
  — <code>/inspect?session=&lt;id&gt;</code> draws this session's full statechart live, with its event log and
  turn timings (on by default when the server listens on loopback).</p>
</div>
</section>
<p id="note" aria-live="polite"></p>
<div class="bar">
  <button id="start" type="button">Start microphone</button>
  <button id="stop" type="button" class="secondary">Stop the agent</button>
  <button id="reconnect" type="button" class="secondary" hidden>Reconnect</button>
</div>
<h2 class="visually-hidden">Conversation</h2>
<ol id="log" aria-live="polite" aria-label="Conversation"></ol>
<p id="partial" aria-live="off" aria-label="Live transcript"></p>
<form id="text-form">
  <label class="visually-hidden" for="text">Message</label>
  <input id="text" type="text" autocomplete="off" placeholder="Type a message" maxlength="16000">
  <button type="submit">Send</button>
</form>
<h2>Turn timings</h2>
<ul id="metrics" aria-label="Turn timings"></ul>
<ul id="errors" role="alert" aria-label="Errors"></ul>
</main>
<script>
const WS_PATH = ${scriptJson(wsPath)};
const WORKLETS = ${scriptJson(WORKLETS)};
${AVATAR_SCRIPT}
${SCRIPT}
</script>
</body>
</html>
`;
}
