/**
 * Fault injection on loopback: a VoiceServer with the given providers (fakes, or fakes made to
 * misbehave at the provider boundary), a raw client, and the leak check every fault ends with.
 *
 * A leak check counts, before the client connects and after its session has ended (with a short
 * settle): the process's open handles of the kinds a session can leak (`process.getActiveResourcesInfo()`:
 * TCP sockets and servers, UDP sockets, timers, immediates), the server's live sessions, and the
 * session's actors — every actor its system created (seen through the inspector's `forward`
 * option) that is still active. The table of faults is printed at the end of each file.
 */
import { VoiceServer, type VoiceServerOptions } from '../../src/server/index.js';
import { delay, handleCounts, RawClient } from '../server/helpers.js';

export interface FaultRow {
  readonly fault: string;
  readonly state: string;
  readonly leaked: string;
}

interface ActorView {
  readonly id: string;
  getSnapshot(): unknown;
}

export interface FaultServer {
  readonly server: VoiceServer;
  readonly url: string;
  /** Every actor any session of this server created (views, read-only). */
  readonly actors: ActorView[];
  client(): RawClient;
  /** Actors still active, by id. */
  activeActors(): string[];
}

const statusOf = (actor: ActorView): unknown => (actor.getSnapshot() as { status?: unknown } | undefined)?.status;

export async function startServer(options: Omit<VoiceServerOptions, 'port' | 'inspect'>): Promise<FaultServer & { stop(): Promise<void> }> {
  const actors: ActorView[] = [];
  const server = new VoiceServer({
    port: 0,
    session: { ttlMs: 300 },
    ...options,
    inspect: {
      forward: (event) => {
        if (event.type === '@xstate.actor') actors.push(event.actorRef as unknown as ActorView);
      },
    },
  });
  const { url } = await server.start();
  const clients: RawClient[] = [];
  return {
    server,
    url,
    actors,
    client: () => {
      const c = new RawClient(url);
      clients.push(c);
      return c;
    },
    activeActors: () => actors.filter((a) => statusOf(a) === 'active').map((a) => a.id),
    stop: async () => {
      await Promise.all(clients.map((c) => c.close()));
      await server.stop();
    },
  };
}

export async function until(check: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > end) throw new Error(`${what} not reached within ${timeoutMs} ms`);
    await delay(10);
  }
}

export type Counts = Record<string, number>;

/** Handles now, for a later {@link leaksSince}. */
export function baseline(): Counts {
  return handleCounts();
}

/**
 * What is open now and was not at `before`, once the session has ended: waits (up to 2 s) for the
 * server's sessions and the session's actors to reach zero and the handle counts to come back.
 */
export async function leaksSince(before: Counts, setup: FaultServer): Promise<{ handles: Counts; sessions: number; actors: string[] }> {
  const diff = (): Counts => {
    const now = handleCounts();
    const extra: Counts = {};
    for (const [kind, n] of Object.entries(now)) if (n > (before[kind] ?? 0)) extra[kind] = n - (before[kind] ?? 0);
    return extra;
  };
  const end = performance.now() + 2000;
  while (performance.now() < end) {
    if (setup.server.sessions === 0 && setup.activeActors().length === 0 && Object.keys(diff()).length === 0) break;
    await delay(25);
  }
  return { handles: diff(), sessions: setup.server.sessions, actors: setup.activeActors() };
}

export function describeLeaks(leaks: { handles: Counts; sessions: number; actors: string[] }): string {
  const parts = Object.entries(leaks.handles).map(([kind, n]) => `${n} ${kind}`);
  if (leaks.sessions > 0) parts.push(`${leaks.sessions} sessions`);
  if (leaks.actors.length > 0) parts.push(`actors ${leaks.actors.join(',')}`);
  return parts.length === 0 ? 'none' : parts.join(', ');
}

/** Prints the rows as a table (so it can be quoted). */
export function printTable(title: string, rows: readonly FaultRow[]): void {
  const width = (key: keyof FaultRow, head: string): number => Math.max(head.length, ...rows.map((r) => r[key].length));
  const w = [width('fault', 'fault'), width('state', 'state reached'), width('leaked', 'handles leaked')];
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(w[i] ?? 0)).join(' | ')} |`;
  console.log(
    [`${title}`, line(['fault', 'state reached', 'handles leaked']), `|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`, ...rows.map((r) => line([r.fault, r.state, r.leaked]))].join('\n'),
  );
}

/** The session state messages a client saw, in order (turn state only). */
export function states(c: RawClient): string[] {
  return c.of('session.state').map((m) => String(m['state']));
}
