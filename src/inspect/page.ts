/**
 * The inspector page (`GET /inspect`): one self-contained HTML document, no CDN and no build step.
 * It lists the live sessions, and for the one you pick draws its statecharts as nested boxes with
 * the active states highlighted, the event log, the transcript and each turn's latency waterfall,
 * all from the stream at `/inspect/ws` (protocol: ./protocol.ts, docs/inspect.md).
 *
 * `?session=<id>` opens that session at once; `?token=<t>` is passed on to the stream (a browser
 * cannot set headers on a WebSocket). The script and the style are allowed by hash in the page's
 * Content-Security-Policy, nothing else.
 */
import { createHash } from 'node:crypto';

const STYLE = `
:root { color-scheme: light dark; --fg: #1d2330; --muted: #6b7385; --bg: #f6f7f9; --panel: #fff; --line: #d7dbe3;
  --active: #1f7a4d; --active-bg: #d9f2e4; --was: #b7791f; --accent: #2f5fd0; font: 13px/1.4 system-ui, sans-serif; }
@media (prefers-color-scheme: dark) { :root { --fg: #e3e6ee; --muted: #97a0b3; --bg: #12151b; --panel: #1b1f27; --line: #333a47;
  --active: #5ad39a; --active-bg: #173a2a; --was: #e0a848; --accent: #7ea2ff; } }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); }
header { display: flex; gap: 1em; align-items: baseline; padding: .6em 1em; border-bottom: 1px solid var(--line); background: var(--panel); }
header h1 { font-size: 15px; margin: 0; }
#status { color: var(--muted); }
main { display: grid; grid-template-columns: minmax(0, 3fr) minmax(320px, 2fr); gap: .8em; padding: .8em 1em; }
section { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: .6em .8em; min-width: 0; }
section h2 { font-size: 13px; margin: .2em 0 .4em; color: var(--muted); font-weight: 600; text-transform: uppercase; letter-spacing: .04em; }
#sessions-section, #chart-section { grid-column: 1 / -1; }
#chosen { font-family: ui-monospace, monospace; text-transform: none; letter-spacing: 0; font-weight: 400; margin-left: .5em; }
#waterfall { margin-top: .2em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .2em .6em; border-bottom: 1px solid var(--line); white-space: nowrap; }
td.id { font-family: ui-monospace, monospace; }
tr.session { cursor: pointer; }
tr.session:hover td { background: var(--bg); }
tr.session.chosen td { background: var(--active-bg); }
.empty { color: var(--muted); font-style: italic; }
#actors button { margin: 0 .3em .3em 0; font: inherit; border: 1px solid var(--line); background: var(--bg); color: var(--fg); border-radius: 4px; padding: .1em .5em; cursor: pointer; }
#actors button.chosen { border-color: var(--accent); color: var(--accent); }
#chart { overflow: auto; }
.state { border: 1px solid var(--line); border-radius: 6px; padding: .25em .4em; margin: .2em; min-width: 5em; transition: background .2s; }
.state > .name { font-weight: 600; white-space: nowrap; }
.state > .name .kind { color: var(--muted); font-weight: 400; font-size: 11px; margin-left: .4em; }
.state > .kids { display: flex; flex-wrap: wrap; align-items: flex-start; }
.state.parallel > .kids > .state { border-style: dashed; }
.state.final { border-width: 3px; border-style: double; }
.state.active { border-color: var(--active); background: var(--active-bg); }
.state.active > .name { color: var(--active); }
.state.was { border-color: var(--was); }
#trail { font-family: ui-monospace, monospace; font-size: 12px; margin: .4em 0 0; color: var(--muted); white-space: pre-wrap; }
#last { font-family: ui-monospace, monospace; font-size: 12px; min-height: 1.4em; }
#filters label { margin-right: .8em; color: var(--muted); white-space: nowrap; }
#log { height: 24em; overflow: auto; font-family: ui-monospace, monospace; font-size: 12px; margin-top: .4em; }
#log div { white-space: pre; border-bottom: 1px solid var(--line); padding: .05em 0; }
#log .k { display: inline-block; width: 7.5em; color: var(--muted); }
#log .event .k { color: var(--accent); }
#log .transition .k { color: var(--active); }
#log .provider .k, #log .tool .k { color: var(--was); }
#transcript { max-height: 18em; overflow: auto; }
#transcript p { margin: .2em 0; }
#transcript .user b { color: var(--accent); }
#transcript .assistant b { color: var(--active); }
#waterfall svg { width: 100%; }
#waterfall text { fill: var(--fg); font-size: 11px; }
#waterfall .axis { stroke: var(--line); }
.bar-endpoint { fill: #8a94a8; background: #8a94a8; } .bar-stt { fill: #b58ad8; background: #b58ad8; } .bar-llm { fill: #4f8ae0; background: #4f8ae0; }
.bar-tts { fill: #3fb27f; background: #3fb27f; } .bar-total { stroke: #d05050; stroke-width: 2; }
.legend span { margin-right: 1em; } .legend i { display: inline-block; width: .8em; height: .8em; margin-right: .3em; vertical-align: -1px; }
`;

const SCRIPT = `
'use strict';
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const token = params.get('token');
let wanted = params.get('session');
const PROVIDERS = new Set(['stt', 'llm', 'tts', 'turnDetector', 'summarize']);
const MAX_LOG_ROWS = 2000;
const charts = new Map();
let sessions = [];
let chosen = null;          // the session watched
let view = null;            // { root, actors: Map, transcript: [], turns: [] }
let shownActor = null;      // whose chart is drawn
let socket = null;
let retry = 500;

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === 'class') node.className = v; else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v); else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}
const clock = (t) => new Date(t).toTimeString().slice(0, 8) + '.' + String(t % 1000).padStart(3, '0');
const age = (ms) => ms < 60000 ? Math.round(ms / 1000) + ' s' : ms < 3600000 ? Math.floor(ms / 60000) + ' min ' + Math.round((ms % 60000) / 1000) + ' s' : (ms / 3600000).toFixed(1) + ' h';
const short = (value) => { const s = JSON.stringify(value); return s === undefined ? '' : s.length > 240 ? s.slice(0, 240) + '…' : s; };

function connect() {
  const url = new URL('/inspect/ws', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  if (token) url.searchParams.set('token', token);
  socket = new WebSocket(url);
  socket.onopen = () => { retry = 500; $('status').textContent = 'connected'; if (chosen) watch(chosen); };
  socket.onclose = () => { $('status').textContent = 'disconnected, retrying…'; setTimeout(connect, retry); retry = Math.min(retry * 2, 8000); };
  socket.onmessage = (message) => receive(JSON.parse(message.data));
}

function watch(id) {
  chosen = id;
  view = null;
  shownActor = null;
  $('log').textContent = '';
  renderSessions();
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: 'watch', sessionId: id }));
}

function receive(message) {
  switch (message.type) {
    case 'inspect.sessions':
      sessions = message.sessions;
      renderSessions();
      if (wanted && sessions.some((s) => s.id === wanted)) { const id = wanted; wanted = null; watch(id); }
      break;
    case 'inspect.chart':
      charts.set(message.key, indexChart(message.chart));
      break;
    case 'inspect.session': {
      if (message.session.id !== chosen) break;
      view = { id: chosen, root: message.root, actors: new Map(), names: new Map(), transcript: message.transcript.slice(), turns: message.turns.slice(), trails: new Map() };
      for (const actor of message.actors) { view.actors.set(actor.actor, actor); view.names.set(actor.actor, actor.src); }
      shownActor = message.root;
      for (const actor of message.actors) if (actor.chart && actor.value !== undefined) trail(actor.actor, actor.value);
      $('log').textContent = '';
      for (const entry of message.log) logEntry(entry);
      renderAll();
      break;
    }
    case 'inspect.log':
      if (!view) break;
      if (message.dropped) logLine('dropped', 'dropped', message.dropped + ' batches (the page fell behind)');
      for (const log of message.logs) if (log.sessionId === view.id) for (const entry of log.entries) apply(entry);
      break;
    case 'inspect.error':
      $('status').textContent = message.message;
      break;
  }
}

function apply(entry) {
  const actors = view.actors;
  logEntry(entry);
  switch (entry.kind) {
    case 'actor':
      actors.set(entry.actor, { ...entry, status: 'active' });
      renderActors();
      break;
    case 'state': {
      const actor = actors.get(entry.actor);
      if (actor) { actor.value = entry.value; actor.status = entry.status; }
      trail(entry.actor, entry.value);
      if (entry.actor === shownActor) highlight();
      if (entry.status !== 'active') { actors.delete(entry.actor); renderActors(); }
      break;
    }
    case 'stopped':
      actors.delete(entry.actor);
      renderActors();
      break;
    case 'transition':
      if (entry.actor === shownActor) { $('last').textContent = entry.event + ': ' + entry.source + ' → ' + entry.targets.join(', '); markLeft(entry.source); }
      break;
    case 'event':
      if (entry.actor === view.root && entry.event && entry.event.type === 'user.text') addLine({ t: entry.t, role: 'user', text: entry.event.text, typed: true });
      break;
    case 'emit':
      if (entry.event.type === 'transcript.final' && entry.event.text) addLine({ t: entry.t, role: 'user', text: entry.event.text });
      if (entry.event.type === 'reply.done' && entry.event.text) addLine({ t: entry.t, role: 'assistant', text: entry.event.text, interrupted: entry.event.interrupted || undefined });
      break;
    case 'turn':
      view.turns.push(entry.metrics);
      renderWaterfall();
      break;
  }
}

// ---- sessions
function renderSessions() {
  const body = $('sessions');
  body.textContent = '';
  if (sessions.length === 0) { body.append(el('tr', {}, el('td', { class: 'empty', colspan: '6', text: 'no sessions yet' }))); return; }
  for (const s of sessions) {
    body.append(el('tr', { class: 'session' + (s.id === chosen ? ' chosen' : ''), 'data-session': s.id, onclick: () => watch(s.id) },
      el('td', { class: 'id', text: s.id }), el('td', { class: 'state', text: s.state || '—' }), el('td', { text: s.voice }),
      el('td', { text: s.stage === null ? '—' : s.stage }), el('td', { text: age(s.ageMs) }), el('td', { class: 'turns', text: String(s.turns) + (s.ended ? ' (closed)' : '') })));
  }
}

// ---- statecharts
function indexChart(chart) {
  const byId = new Map(chart.nodes.map((n) => [n.id, { ...n, kids: [], out: [] }]));
  let root = null;
  for (const n of byId.values()) { if (n.parent === null) root = n; else byId.get(n.parent).kids.push(n); }
  for (const e of chart.edges) byId.get(e.source)?.out.push(e);
  return { id: chart.id, byId, root };
}

function activeIds(chart, value) {
  const ids = new Set();
  const walk = (node, v) => {
    ids.add(node.id);
    if (typeof v === 'string') { const kid = node.kids.find((k) => k.key === v); if (kid) ids.add(kid.id); }
    else if (v && typeof v === 'object') for (const [key, sub] of Object.entries(v)) { const kid = node.kids.find((k) => k.key === key); if (kid) walk(kid, sub); }
  };
  if (chart.root && value !== undefined) walk(chart.root, value);
  return ids;
}

function edgeText(e, chart) {
  const target = chart.byId.get(e.target);
  const name = e.delay !== undefined ? 'after ' + e.delay : e.event === '' ? 'always' : e.event;
  return name + (e.guard ? ' [' + e.guard + ']' : '') + ' → ' + (target ? target.key : e.target);
}

function box(node, chart) {
  const kind = node.type === 'parallel' ? 'parallel' : node.type === 'final' ? 'final' : node.type === 'history' ? 'history' : '';
  const title = node.out.map((e) => edgeText(e, chart)).join('\\n') + (node.invoke ? '\\ninvokes ' + node.invoke.join(', ') : '');
  const name = el('div', { class: 'name', text: node.key });
  if (kind) name.append(el('span', { class: 'kind', text: kind }));
  if (node.invoke) name.append(el('span', { class: 'kind', text: '⟳ ' + node.invoke.join(', ') }));
  const div = el('div', { class: 'state ' + node.type, 'data-id': node.id, title: title.trim() }, name);
  if (node.kids.length > 0) div.append(el('div', { class: 'kids' }, ...node.kids.map((k) => box(k, chart))));
  return div;
}

function renderChart() {
  const target = $('chart');
  target.textContent = '';
  const actor = view && view.actors.get(shownActor);
  const chart = actor && actor.chart && charts.get(actor.chart);
  if (!chart) { target.append(el('p', { class: 'empty', text: view ? 'this actor is not a state machine' : 'pick a session above' })); return; }
  target.append(box(chart.root, chart));
  highlight();
}

function highlight() {
  const actor = view && view.actors.get(shownActor);
  const chart = actor && actor.chart && charts.get(actor.chart);
  if (!chart) return;
  const ids = activeIds(chart, actor.value);
  for (const node of $('chart').querySelectorAll('.state')) node.classList.toggle('active', ids.has(node.dataset.id));
  renderTrail();
}

function markLeft(id) {
  for (const node of $('chart').querySelectorAll('.state.was')) node.classList.remove('was');
  const node = $('chart').querySelector('.state[data-id="' + CSS.escape(id) + '"]');
  if (node) node.classList.add('was');
}

/** Per region of a parallel state: the active path inside it, as it changes. */
function trail(actorId, value) {
  const actor = view.actors.get(actorId);
  const chart = actor && actor.chart && charts.get(actor.chart);
  if (!chart) return;
  const ids = activeIds(chart, value);
  const trails = view.trails.get(actorId) || new Map();
  view.trails.set(actorId, trails);
  const regions = [...chart.byId.values()].filter((n) => n.parent !== null && chart.byId.get(n.parent).type === 'parallel');
  const record = (label, path) => { const list = trails.get(label) || []; if (list[list.length - 1] !== path) list.push(path); if (list.length > 12) list.shift(); trails.set(label, list); };
  if (regions.length === 0) { record(chart.id, [...ids].filter((id) => id !== chart.root.id).map((id) => chart.byId.get(id).key).join('.')); return; }
  for (const region of regions) {
    if (!ids.has(region.id)) continue;
    const path = [];
    for (let node = region; node; ) { const kid = node.kids.find((k) => ids.has(k.id)); if (!kid) break; path.push(kid.key); node = kid; }
    record(region.key, path.join('.'));
  }
}

function renderTrail() {
  const trails = view && view.trails.get(shownActor);
  $('trail').textContent = trails ? [...trails].map(([label, list]) => label + ': ' + list.join(' → ')).join('\\n') : '';
}

function renderActors() {
  const target = $('actors');
  target.textContent = '';
  if (!view) return;
  for (const actor of view.actors.values()) {
    if (!actor.chart) continue;
    target.append(el('button', { class: actor.actor === shownActor ? 'chosen' : '', 'data-actor': actor.actor, text: actor.src + (actor.id === actor.src ? '' : ' (' + actor.id + ')'),
      onclick: () => { shownActor = actor.actor; renderActors(); renderChart(); } }));
  }
  const others = [...view.actors.values()].filter((a) => !a.chart).map((a) => a.src);
  if (others.length > 0) target.append(el('span', { class: 'empty', text: 'also running: ' + others.join(', ') }));
}

// ---- log
function actorName(id) {
  if (!view) return id;
  if (id === view.root) return 'session';
  return view.names.get(id) || id;
}

function logLine(kind, label, text) {
  const log = $('log');
  const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  const row = el('div', { class: kind }, el('span', { class: 'k', text: label }), text);
  row.hidden = !$('f-' + filterOf(kind))?.checked;
  log.append(row);
  while (log.childElementCount > MAX_LOG_ROWS) log.firstElementChild.remove();
  if (atBottom) log.scrollTop = log.scrollHeight;
}

function filterOf(kind) { return kind === 'provider' || kind === 'tool' ? 'calls' : kind === 'dropped' ? 'event' : kind; }

function logEntry(e) {
  const at = clock(e.t) + '  ';
  if (e.kind === 'actor' && view) view.names.set(e.actor, e.src);
  switch (e.kind) {
    case 'event': return logLine('event', 'event', at + e.event.type + ' → ' + actorName(e.actor) + (e.source ? ' (from ' + actorName(e.source) + ')' : '') + '  ' + short(omitType(e.event)));
    case 'transition': return logLine('transition', 'transition', at + actorName(e.actor) + ': ' + e.source + ' → ' + e.targets.join(', ') + '  (' + (e.event || 'always') + ')');
    case 'state': return logLine('states', 'state', at + actorName(e.actor) + ' ' + short(e.value) + (e.status === 'active' ? '' : ' ' + e.status));
    case 'actor': {
      const kind = PROVIDERS.has(e.src) ? 'provider' : e.src === 'tools' ? 'tool' : 'actors';
      return logLine(kind, kind === 'provider' ? 'provider' : kind === 'tool' ? 'tools' : 'actor', at + e.src + ' started' + (e.parent ? ' by ' + actorName(e.parent) : ''));
    }
    case 'stopped': {
      const src = actorName(e.actor);
      const kind = PROVIDERS.has(src) ? 'provider' : src === 'tools' ? 'tool' : 'actors';
      return logLine(kind, kind === 'provider' ? 'provider' : kind === 'tool' ? 'tools' : 'actor', at + src + ' ' + e.status);
    }
    case 'emit': {
      const tool = e.event.type === 'tools.start' || e.event.type === 'tools.end';
      return logLine(tool ? 'tool' : 'emits', tool ? 'tool call' : 'emit', at + e.event.type + '  ' + short(omitType(e.event)));
    }
    case 'turn': return logLine('emits', 'turn', at + 'turn ' + e.metrics.turnId + ' ' + short(omitType(e.metrics)));
  }
}
function omitType(o) { if (!o || typeof o !== 'object') return o; const { type, ...rest } = o; return rest; }

function applyFilters() { for (const row of $('log').children) row.hidden = !$('f-' + filterOf(row.className))?.checked; }

// ---- transcript and waterfall
function addLine(line) { if (!view) return; view.transcript.push(line); renderTranscript(); }

function renderTranscript() {
  const target = $('transcript');
  target.textContent = '';
  if (!view || view.transcript.length === 0) { target.append(el('p', { class: 'empty', text: 'nothing said yet' })); return; }
  for (const line of view.transcript) {
    target.append(el('p', { class: line.role }, el('b', { text: (line.role === 'user' ? 'user' + (line.typed ? ' (typed)' : '') : 'agent' + (line.interrupted ? ' (cut off)' : '')) + ': ' }), line.text));
  }
  target.scrollTop = target.scrollHeight;
}

function renderWaterfall() {
  const target = $('waterfall');
  target.textContent = '';
  const turns = view ? view.turns.slice(-6) : [];
  if (turns.length === 0) { target.append(el('p', { class: 'empty', text: 'no turn finished yet' })); return; }
  const NS = 'http://www.w3.org/2000/svg';
  const svg = (tag, attrs, text) => { const n = document.createElementNS(NS, tag); for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v)); if (text !== undefined) n.textContent = text; return n; };
  // One time axis from the user's audio edge (voice turns) or the turn's start (typed ones).
  const groups = turns.map((m) => {
    const bars = [];
    const llm = m.llmFirstTokenMs, tts = m.ttsFirstAudioMs, total = m.userStoppedToFirstAudioMs;
    if (m.endpointingMs !== undefined) bars.push(['endpoint', 0, m.endpointingMs, 'end of turn']);
    if (m.sttFinalLagMs !== undefined) bars.push(['stt', 0, m.sttFinalLagMs, 'final transcript']);
    // The reply started (turn.start) where its LLM and TTS time ends before the first audio.
    let start = 0;
    if (total !== undefined && llm !== undefined && tts !== undefined) start = Math.max(0, total - llm - tts);
    else if (m.endpointingMs !== undefined) start = m.endpointingMs;
    if (llm !== undefined) bars.push(['llm', start, start + llm, 'LLM first token']);
    if (tts !== undefined) bars.push(['tts', start + (llm || 0), start + (llm || 0) + tts, 'TTS first audio']);
    return { m, bars, total, end: Math.max(total || 0, ...bars.map((b) => b[2])) };
  });
  const span = Math.max(1, ...groups.map((g) => g.end));
  const W = 560, L = 170, HEAD = 18, ROW = 15;
  const x = (ms) => L + (ms / span) * (W - L - 12);
  const image = svg('svg', { role: 'img' });
  let y = 0;
  for (const g of groups) {
    const m = g.m;
    image.append(svg('text', { x: 0, y: y + 13, 'font-weight': 600 }, 'turn ' + m.turnId + ' (' + m.source + (m.interrupted ? ', cut off' : '') + ')' + (g.total !== undefined ? ': first audio ' + Math.round(g.total) + ' ms after the user stopped' : '')));
    y += HEAD;
    const top = y;
    for (const [kind, from, to, label] of g.bars) {
      image.append(svg('text', { x: 8, y: y + 11 }, label + ' ' + Math.round(to - from) + ' ms'));
      const rect = svg('rect', { class: 'bar-' + kind, x: x(from), y: y + 2, width: Math.max(2, x(to) - x(from)), height: ROW - 4 });
      rect.append(svg('title', {}, label + ': ' + Math.round(from) + '–' + Math.round(to) + ' ms'));
      image.append(rect);
      y += ROW;
    }
    if (g.total !== undefined) image.append(svg('line', { class: 'bar-total', x1: x(g.total), x2: x(g.total), y1: top, y2: y }));
    y += 6;
  }
  image.append(svg('line', { class: 'axis', x1: L, x2: W - 12, y1: y, y2: y }));
  image.append(svg('text', { x: L, y: y + 13 }, '0 ms'), svg('text', { x: W - 70, y: y + 13 }, Math.round(span) + ' ms'));
  image.setAttribute('viewBox', '0 0 ' + W + ' ' + (y + 18));
  target.append(image);
  target.append(el('div', { class: 'legend' }, ...[['endpoint', 'end of turn'], ['stt', 'final transcript'], ['llm', 'LLM first token'], ['tts', 'TTS first audio']].map(([k, t]) => el('span', {}, el('i', { class: 'bar-' + k }), t)), el('span', { class: 'total', text: 'red line: first audio' })));
}

function renderAll() {
  $('chosen').textContent = view ? view.id : '';
  renderActors();
  renderChart();
  renderTranscript();
  renderWaterfall();
}

for (const box of document.querySelectorAll('#filters input')) box.addEventListener('change', applyFilters);
renderSessions();
renderAll();
connect();
`;

const BODY = `<header><h1>voxstate inspector</h1><span id="status">connecting…</span></header>
<main>
<section id="sessions-section"><h2>Sessions</h2>
<table><thead><tr><th>id</th><th>state</th><th>voice</th><th>stage</th><th>age</th><th>turns</th></tr></thead><tbody id="sessions"></tbody></table></section>
<section id="chart-section"><h2>Statechart <span id="chosen"></span></h2><div id="actors"></div><div id="last"></div><div id="chart"></div><pre id="trail"></pre></section>
<section><h2>Event log</h2><div id="filters">
<label><input type="checkbox" id="f-event" checked> events</label><label><input type="checkbox" id="f-transition" checked> transitions</label>
<label><input type="checkbox" id="f-calls" checked> provider and tool calls</label><label><input type="checkbox" id="f-emits" checked> emitted</label>
<label><input type="checkbox" id="f-actors"> actors</label><label><input type="checkbox" id="f-states"> states</label></div><div id="log"></div></section>
<section><h2>Transcript</h2><div id="transcript"></div><h2>Latency waterfall</h2><div id="waterfall"></div></section>
</main>`;

const hash = (text: string): string => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>voxstate inspector</title><style>${STYLE}</style></head>
<body>${BODY}<script>${SCRIPT}</script></body></html>`;

export const INSPECT_PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy': [
    "default-src 'none'",
    `script-src ${hash(SCRIPT)}`,
    `style-src ${hash(STYLE)}`,
    "connect-src 'self'",
    "img-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

/** The page's HTML. */
export function inspectPageHtml(): string {
  return PAGE;
}
