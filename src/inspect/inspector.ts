/**
 * The inspector hub of one server: it watches sessions through XState's inspection API and streams
 * what it sees to the clients of `/inspect/ws` (protocol: ./protocol.ts, docs/inspect.md).
 *
 * What it costs is what is looked at:
 * - no client connected: nothing runs per event; each session has a record (its actor, stage,
 *   turn count and turn timings, from the server's hooks);
 * - a client connected: the session list (id, state, stage, age, turns), from each session's
 *   snapshot, sent every `listIntervalMs` and soon after a state change (one snapshot listener per
 *   session);
 * - a client watching a session (or `*`, every session): its actor system is inspected
 *   (`actor.system.inspect(observer)`) for as long as someone watches it, each inspection event is
 *   scrubbed (./scrub.ts) and serialized once, and the entries go out in batches every `flushMs`,
 *   one frame per client whatever the number of sessions it watches.
 * With `forward`, every session is inspected from its start (createActor's `inspect` option, so the
 * forwarded tool sees each actor created) and each event is handed on scrubbed (./forward.ts).
 * Secrets never leave: secret-named properties are redacted and the session's resume token is cut
 * out of every string.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AnyActorRef, InspectionEvent, Observer } from 'xstate';
import type { WebSocket, WebSocketServer } from 'ws';
import { ConfigError } from '../errors.js';
import { type Logger, silentLogger } from '../observability/logger.js';
import type { Hooks, TurnMetrics } from '../server/hooks.js';
import { type AccessCheck, checkAccess, isLoopbackHost } from '../server/http-access.js';
import { ChartRegistry, isMachine } from './charts.js';
import type { Forwarder } from './forward.js';
import { DEFAULT_INSPECT_OPTIONS, type InspectOptions, type Limits } from './options.js';
import { INSPECT_PAGE_HEADERS, inspectPageHtml } from './page.js';
import { type ActorSummary, INSPECT_PROTOCOL_VERSION, type InspectServerMessage, parseInspectClientMessage, type TranscriptLine, WATCH_ALL } from './protocol.js';
import { sameValue, SessionRecord, type Snapshotish } from './record.js';
import { LOG_LIMITS, scrub, scrubbedJson } from './scrub.js';

export { DEFAULT_INSPECT_OPTIONS, type InspectOptions } from './options.js';

/** The page's path and its stream's. */
export const INSPECT_PATH = '/inspect';
export const INSPECT_STREAM_PATH = '/inspect/ws';

/** VoiceServer's `inspect` option. */
export type InspectOption = boolean | InspectOptions;

/**
 * The inspector a VoiceServer runs: on with `true` or options, off with `false`; by default on
 * when voxstate creates the HTTP server itself on a loopback host (127.0.0.1 — VoiceServer's
 * default — ::1, localhost), off on any other host and when mounted on your own server.
 */
export function inspectorFor(options: { readonly inspect?: InspectOption; readonly host?: string; readonly server?: unknown }, logger?: Logger): Inspector | undefined {
  const option = options.inspect;
  const on = option === undefined ? options.server === undefined && isLoopbackHost(options.host ?? '127.0.0.1') : option !== false;
  if (!on) return undefined;
  return new Inspector(typeof option === 'object' ? option : {}, logger);
}

/** What VoiceServer does with one session: the observer for createActor, the actor once made, the hooks. */
export interface SessionInspection {
  /** For createActor's `inspect` option: only with `forward` (undefined otherwise). */
  readonly observer: Observer<InspectionEvent> | undefined;
  /** The session's actor: the inspector reads its snapshot, and inspects its system while watched. */
  attach(actor: AnyActorRef): void;
  /** The server's hooks, also telling the inspector each turn's start and timings and the stage. */
  hooks(hooks: Hooks): Hooks;
}

// ---------------------------------------------------------------------------------------------- hub

class InspectClient {
  readonly socket: WebSocket;
  watching: string | undefined;
  readonly charts = new Set<string>();
  dropped = 0;

  constructor(socket: WebSocket) {
    this.socket = socket;
  }

  watches(sessionId: string): boolean {
    return this.watching === WATCH_ALL || this.watching === sessionId;
  }
}

const json = (value: unknown): string => JSON.stringify(value) ?? 'null';

export class Inspector {
  readonly #options: Limits;
  readonly #forward: ((event: InspectionEvent) => void) | undefined;
  readonly #logger: Logger;
  readonly #charts = new ChartRegistry();
  readonly #sessions = new Map<string, SessionRecord>();
  readonly #clients = new Set<InspectClient>();
  readonly #paths = new WeakMap<object, string>();
  #watchAll = 0;
  #flushTimer: NodeJS.Timeout | undefined;
  #listTimer: NodeJS.Timeout | undefined;
  #listSoon: NodeJS.Timeout | undefined;
  #listedAt = 0;
  #closed = false;

  constructor(options: InspectOptions = {}, logger: Logger = silentLogger()) {
    const limit = (name: keyof typeof DEFAULT_INSPECT_OPTIONS): number => {
      const value = options[name] ?? DEFAULT_INSPECT_OPTIONS[name];
      if (!Number.isFinite(value) || value < 1) throw new ConfigError(`inspect.${name}`, `must be a number >= 1, got ${String(value)}`);
      return value;
    };
    this.#options = {
      maxLogEntries: limit('maxLogEntries'),
      maxTurns: limit('maxTurns'),
      listIntervalMs: limit('listIntervalMs'),
      listThrottleMs: limit('listThrottleMs'),
      flushMs: limit('flushMs'),
      keepEndedMs: limit('keepEndedMs'),
      maxBufferedBytes: limit('maxBufferedBytes'),
    };
    if (options.forward !== undefined && typeof options.forward !== 'function') throw new ConfigError('inspect.forward', 'must be a function');
    this.#forward = options.forward;
    this.#logger = logger.child({ component: 'inspector' });
  }

  /** Connected inspector clients. */
  get clients(): number {
    return this.#clients.size;
  }

  /**
   * A new session (or one rebuilt from the store under the same id: it replaces the old record).
   * `secrets` are cut out of every string the inspector sends (the session's resume token).
   */
  session(sessionId: string, options: { readonly secrets?: readonly string[] } = {}): SessionInspection {
    this.#sweep(Date.now());
    const previous = this.#sessions.get(sessionId);
    if (previous !== undefined) this.#forget(previous);
    const record = new SessionRecord(sessionId, options.secrets ?? [], this.#options.maxLogEntries, this.#forward !== undefined);
    if (previous !== undefined) record.watchers = previous.watchers;
    this.#sessions.set(sessionId, record);
    const forwarder = record.forwarder;
    return {
      observer: forwarder === undefined ? undefined : { next: (event) => this.#forwardEvent(forwarder, event) },
      attach: (actor) => {
        record.root = actor;
        actor.subscribe({ error: () => this.#ended(record), complete: () => this.#ended(record) });
        if (this.#clients.size > 0) this.#followList(record);
        if (this.#watched(record)) this.#inspect(record);
      },
      hooks: (hooks) => ({
        ...hooks,
        onTurnStart: (event) => {
          record.turns++;
          return hooks.onTurnStart?.(event);
        },
        onStageEnter: (event) => {
          record.stage = event.stage;
          this.#listChanged();
          return hooks.onStageEnter?.(event);
        },
        onPlaybookComplete: (event) => {
          record.stage = null;
          this.#listChanged();
          return hooks.onPlaybookComplete?.(event);
        },
        onTurnEnd: (metrics) => {
          this.#turnEnded(record, metrics);
          return hooks.onTurnEnd?.(metrics);
        },
      }),
    };
  }

  #watched(record: SessionRecord): boolean {
    return this.#watchAll > 0 || record.watchers > 0;
  }

  #ended(record: SessionRecord): void {
    record.endedAt ??= Date.now();
    this.#listChanged();
    // Listed as closed for keepEndedMs, then forgotten.
    const timer = setTimeout(() => this.#sweep(Date.now()), this.#options.keepEndedMs + 1);
    timer.unref();
  }

  // ------------------------------------------------------------------------------ observation

  /** Starts inspecting a session's actor system (someone watches it): its actors as they are now, then every event. */
  #inspect(record: SessionRecord): void {
    const root = record.root;
    if (root === undefined || record.inspection !== undefined) return;
    record.actors.clear();
    const walk = (ref: AnyActorRef): void => {
      const snapshot = ref.getSnapshot() as Snapshotish;
      this.#actorCreated(record, ref, false);
      const actor = record.actors.get(ref.sessionId);
      if (actor !== undefined) {
        actor.status = snapshot.status;
        if (actor.summary.chart !== undefined) actor.value = snapshot.value;
      }
      for (const child of Object.values(snapshot.children ?? {})) if (child !== undefined) walk(child);
    };
    walk(root);
    record.inspection = root.system.inspect({
      next: (event) => {
        try {
          this.#observe(record, event);
        } catch (error) {
          // The inspector must never break the session it watches.
          this.#logger.warn({ err: error, session: record.id }, 'inspection event not recorded');
        }
      },
    });
  }

  #stopInspecting(record: SessionRecord): void {
    record.inspection?.unsubscribe();
    record.inspection = undefined;
    record.actors.clear();
    record.pending = [];
  }

  #observe(record: SessionRecord, event: InspectionEvent): void {
    const ref = event.actorRef as AnyActorRef;
    switch (event.type) {
      case '@xstate.actor':
        this.#actorCreated(record, ref, true);
        return;
      case '@xstate.event': {
        const source = (event.sourceRef as AnyActorRef | undefined)?.sessionId;
        const payload = scrubbedJson(event.event, LOG_LIMITS, record.secrets);
        this.#log(record, `{"kind":"event","t":${Date.now()},"actor":${record.quoted(ref.sessionId)},"source":${source === undefined ? 'null' : record.quoted(source)},"event":${payload}}`);
        return;
      }
      case '@xstate.microstep': {
        let t: number | undefined;
        for (const transition of event._transitions) {
          const path = this.#pathOf(transition);
          if (path === undefined) continue;
          t ??= Date.now();
          this.#log(record, `{"kind":"transition","t":${t},"actor":${record.quoted(ref.sessionId)},"event":${json(event.event.type)},${path}}`);
        }
        return;
      }
      case '@xstate.snapshot':
        this.#snapshot(record, ref, event.snapshot as Snapshotish);
        return;
      case '@xstate.action': {
        if (event.action.type !== 'xstate.emit' || ref !== record.root) return;
        const emitted = (event.action.params as { event?: { type?: unknown } } | undefined)?.event;
        // Each reply.delta is also the event the session received from its reply: logged once.
        if (typeof emitted !== 'object' || emitted === null || typeof emitted.type !== 'string' || emitted.type === 'reply.delta') return;
        this.#log(record, `{"kind":"emit","t":${Date.now()},"actor":${record.quoted(ref.sessionId)},"event":${scrubbedJson(emitted, LOG_LIMITS, record.secrets)}}`);
        return;
      }
    }
  }

  /** A transition's `"source":…,"targets":[…]` (definitions live as long as their machine); undefined when it has no target. */
  #pathOf(transition: { readonly source: { readonly id: string }; readonly target?: readonly { readonly id: string }[] | undefined }): string | undefined {
    let path = this.#paths.get(transition);
    if (path === undefined) {
      const targets = transition.target ?? [];
      path = targets.length === 0 ? '' : `"source":${json(transition.source.id)},"targets":${json(targets.map((node) => node.id))}`;
      this.#paths.set(transition, path);
    }
    return path === '' ? undefined : path;
  }

  #actorCreated(record: SessionRecord, ref: AnyActorRef, log: boolean): void {
    const logic = (ref as { logic?: unknown }).logic;
    const parent = (ref as { _parent?: AnyActorRef })._parent;
    const machine = isMachine(logic);
    const src = typeof ref.src === 'string' ? ref.src : machine ? String(logic.id) : ref.id;
    const chart = machine ? this.#charts.keyOf(logic) : undefined;
    const summary = { actor: ref.sessionId, id: ref.id, parent: parent?.sessionId ?? null, src, ...(chart === undefined ? {} : { chart }) };
    if (chart !== undefined) record.charts.add(chart);
    record.actors.set(ref.sessionId, { summary, value: undefined, status: 'active' });
    if (log) this.#log(record, json({ kind: 'actor', t: Date.now(), ...summary }));
  }

  #snapshot(record: SessionRecord, ref: AnyActorRef, snapshot: Snapshotish): void {
    const actor = record.actors.get(ref.sessionId);
    if (actor === undefined) return;
    const status = snapshot.status;
    if (actor.summary.chart !== undefined) {
      if (actor.status !== status || !sameValue(actor.value, snapshot.value)) {
        actor.value = snapshot.value;
        actor.status = status;
        // A state value is state names: nothing to scrub.
        this.#log(record, `{"kind":"state","t":${Date.now()},"actor":${record.quoted(ref.sessionId)},"value":${json(snapshot.value)},"status":${json(status)}}`);
      }
    } else if (status !== actor.status) {
      actor.status = status;
      if (status !== 'active') this.#log(record, `{"kind":"stopped","t":${Date.now()},"actor":${record.quoted(ref.sessionId)},"status":${json(status)}}`);
    }
    if (status !== 'active') {
      record.actors.delete(ref.sessionId);
      record.forgetQuoted(ref.sessionId);
    }
  }

  #turnEnded(record: SessionRecord, metrics: TurnMetrics): void {
    const { sessionId: _sessionId, ...timings } = metrics;
    record.turnMetrics.push(timings);
    if (record.turnMetrics.length > this.#options.maxTurns) record.turnMetrics.shift();
    if (record.inspection !== undefined) this.#log(record, json({ kind: 'turn', t: Date.now(), metrics: timings }));
  }

  #log(record: SessionRecord, entry: string): void {
    record.log(entry);
    this.#scheduleFlush();
  }

  #forwardEvent(forwarder: Forwarder, event: InspectionEvent): void {
    try {
      const copy = forwarder.copy(event);
      if (copy !== undefined) this.#forward?.(copy);
    } catch (error) {
      this.#logger.warn({ err: error }, 'inspect.forward threw');
    }
  }

  // -------------------------------------------------------------------------------------- clients

  /** `GET /inspect`: the page, for callers `checkAccess` lets in. */
  async servePage(request: IncomingMessage, response: ServerResponse, auth: AccessCheck | undefined): Promise<void> {
    const verdict = await checkAccess(request, auth);
    if (!verdict.ok) {
      response.writeHead(verdict.status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...(verdict.status === 401 ? { 'www-authenticate': 'Bearer' } : {}) });
      response.end(JSON.stringify({ error: verdict.status === 401 ? 'unauthorized' : 'forbidden' }));
      return;
    }
    response.writeHead(200, INSPECT_PAGE_HEADERS);
    response.end(inspectPageHtml());
  }

  /** An upgrade request for `/inspect/ws`: accepted for callers `checkAccess` lets in, else answered 401/403. */
  async handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer, wss: WebSocketServer, auth: AccessCheck | undefined): Promise<void> {
    const verdict = await checkAccess(request, auth);
    if (this.#closed || !verdict.ok) {
      const status = verdict.ok ? '503 Service Unavailable' : verdict.status === 401 ? '401 Unauthorized' : '403 Forbidden';
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => this.#attach(ws));
  }

  #attach(socket: WebSocket): void {
    const client = new InspectClient(socket);
    this.#clients.add(client);
    if (this.#clients.size === 1) for (const record of this.#sessions.values()) this.#followList(record);
    socket.on('message', (data, isBinary) => {
      const message = isBinary ? undefined : parseInspectClientMessage(String(data));
      if (message === undefined) {
        this.#send(client, { type: 'inspect.error', message: 'expected {"type":"watch","sessionId":"<id>|*"} or {"type":"unwatch"}' });
        return;
      }
      this.#unwatch(client);
      if (message.type === 'watch') this.#watch(client, message.sessionId);
    });
    socket.on('close', () => {
      this.#unwatch(client);
      this.#clients.delete(client);
      if (this.#clients.size > 0) return;
      if (this.#listTimer !== undefined) clearInterval(this.#listTimer);
      this.#listTimer = undefined;
      for (const record of this.#sessions.values()) {
        record.listing?.unsubscribe();
        record.listing = undefined;
      }
    });
    socket.on('error', (error) => this.#logger.debug({ err: error }, 'inspector client socket error'));
    this.#send(client, this.#list());
    this.#listTimer ??= setInterval(() => this.#broadcastList(), this.#options.listIntervalMs);
    this.#listTimer.unref();
  }

  /** While a client is connected: the list goes out soon after the session's state changes. */
  #followList(record: SessionRecord): void {
    const root = record.root;
    if (root === undefined || record.listing !== undefined) return;
    let last = (root.getSnapshot() as Snapshotish).value;
    record.listing = root.subscribe((snapshot: Snapshotish) => {
      if (sameValue(last, snapshot.value)) return;
      last = snapshot.value;
      this.#listChanged();
    });
  }

  #watch(client: InspectClient, sessionId: string): void {
    // Entries logged but not sent yet are in the catch-up: they go to the other clients now.
    this.#flush();
    if (sessionId === WATCH_ALL) {
      client.watching = WATCH_ALL;
      this.#watchAll++;
      for (const record of this.#sessions.values()) {
        this.#inspect(record);
        this.#catchUp(client, record);
      }
      return;
    }
    const record = this.#sessions.get(sessionId);
    if (record === undefined) {
      this.#send(client, { type: 'inspect.error', message: `no session ${sessionId}` });
      return;
    }
    client.watching = sessionId;
    record.watchers++;
    this.#inspect(record);
    this.#catchUp(client, record);
  }

  #unwatch(client: InspectClient): void {
    const watching = client.watching;
    client.watching = undefined;
    if (watching === undefined) return;
    if (watching === WATCH_ALL) this.#watchAll--;
    else {
      const record = this.#sessions.get(watching);
      if (record !== undefined) record.watchers = Math.max(0, record.watchers - 1);
    }
    for (const record of this.#sessions.values()) if (record.inspection !== undefined && !this.#watched(record)) this.#stopInspecting(record);
  }

  #catchUp(client: InspectClient, record: SessionRecord): void {
    const actors: ActorSummary[] = [...record.actors.values()].map((actor) => ({ ...actor.summary, ...(actor.value === undefined ? {} : { value: actor.value }), status: actor.status }));
    this.#sendCharts(client, record.charts);
    const history = record.snapshot()?.context?.history ?? [];
    const transcript: TranscriptLine[] = history.flatMap((message): TranscriptLine[] =>
      (message.role === 'user' || message.role === 'assistant') && message.content.length > 0
        ? [{ role: message.role, text: scrub(message.content, LOG_LIMITS, record.secrets) as string, ...(message.role === 'assistant' && message.interrupted === true ? { interrupted: true as const } : {}) }]
        : [],
    );
    const head = json({ type: 'inspect.session', session: record.summary(Date.now()), root: record.root?.sessionId ?? null, actors, transcript, turns: record.turnMetrics });
    this.#sendText(client, `${head.slice(0, -1)},"log":[${record.recent().join(',')}]}`);
  }

  /** Sends the charts the client has not had yet. */
  #sendCharts(client: InspectClient, keys: Iterable<string>): void {
    for (const key of keys) {
      if (client.charts.has(key)) continue;
      const chart = this.#charts.get(key);
      if (chart === undefined) continue;
      client.charts.add(key);
      this.#send(client, { type: 'inspect.chart', key, chart });
    }
  }

  #scheduleFlush(): void {
    if (this.#flushTimer !== undefined || this.#closed) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      this.#flush();
    }, this.#options.flushMs);
    this.#flushTimer.unref();
  }

  /** Every watched session's new entries: one frame per client, with the batches of the sessions it watches. */
  #flush(): void {
    const batches: { record: SessionRecord; text: string }[] = [];
    for (const record of this.#sessions.values()) {
      if (record.pending.length === 0) continue;
      batches.push({ record, text: `{"sessionId":${json(record.id)},"entries":[${record.pending.join(',')}]}` });
      record.pending = [];
    }
    if (batches.length === 0) return;
    for (const client of this.#clients) {
      const mine = batches.filter((batch) => client.watches(batch.record.id));
      if (mine.length === 0) continue;
      if (client.socket.bufferedAmount > this.#options.maxBufferedBytes) {
        client.dropped += mine.length;
        continue;
      }
      for (const batch of mine) this.#sendCharts(client, batch.record.charts);
      const dropped = client.dropped > 0 ? `,"dropped":${client.dropped}` : '';
      client.dropped = 0;
      this.#sendText(client, `{"type":"inspect.log","logs":[${mine.map((batch) => batch.text).join(',')}]${dropped}}`);
    }
  }

  #list(): InspectServerMessage {
    const now = Date.now();
    return { type: 'inspect.sessions', protocol: INSPECT_PROTOCOL_VERSION, at: now, sessions: [...this.#sessions.values()].map((record) => record.summary(now)) };
  }

  #broadcastList(): void {
    this.#listedAt = Date.now();
    this.#sweep(this.#listedAt);
    const list = json(this.#list());
    for (const client of this.#clients) this.#sendText(client, list);
  }

  /** A session's state or stage changed: the list goes out soon (throttled). */
  #listChanged(): void {
    if (this.#clients.size === 0 || this.#listSoon !== undefined || this.#closed) return;
    this.#listSoon = setTimeout(
      () => {
        this.#listSoon = undefined;
        if (this.#clients.size > 0) this.#broadcastList();
      },
      Math.max(0, this.#listedAt + this.#options.listThrottleMs - Date.now()),
    );
    this.#listSoon.unref();
  }

  /** Forgets sessions that ended more than keepEndedMs ago. */
  #sweep(now: number): void {
    for (const record of this.#sessions.values()) {
      if (record.endedAt !== undefined && now - record.endedAt > this.#options.keepEndedMs) this.#forget(record);
    }
  }

  #forget(record: SessionRecord): void {
    this.#stopInspecting(record);
    record.listing?.unsubscribe();
    record.listing = undefined;
    if (this.#sessions.get(record.id) === record) this.#sessions.delete(record.id);
  }

  #send(client: InspectClient, message: InspectServerMessage): void {
    this.#sendText(client, json(message));
  }

  #sendText(client: InspectClient, text: string): void {
    if (client.socket.readyState !== client.socket.OPEN) return;
    client.socket.send(text, (error) => {
      if (error !== undefined && error !== null) this.#logger.debug({ err: error }, 'inspector send failed');
    });
  }

  /** Closes every client, stops every inspection and timer. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const timer of [this.#flushTimer, this.#listSoon]) if (timer !== undefined) clearTimeout(timer);
    if (this.#listTimer !== undefined) clearInterval(this.#listTimer);
    this.#flushTimer = this.#listTimer = this.#listSoon = undefined;
    for (const record of this.#sessions.values()) this.#forget(record);
    for (const client of this.#clients) client.socket.close(1001, 'server stopped');
    this.#clients.clear();
  }
}
