/**
 * Inspection events as the `inspect.forward` option hands them on (to `@statelyai/inspect`'s
 * inspector, or your own tool): the same events with every payload scrubbed (./scrub.ts) and each
 * actor reference replaced by a read-only view whose `getSnapshot()` is scrubbed too.
 */
import type { AnyActorRef, InspectionEvent } from 'xstate';
import { FORWARD_LIMITS, scrub } from './scrub.js';

/** What a forwarded event's `actorRef` is: enough of an ActorRef for inspection tools, read-only. */
export interface ActorRefView {
  readonly id: string;
  readonly sessionId: string;
  readonly systemId: string | undefined;
  readonly src: unknown;
  /** The logic itself (a machine's `config` is what Stately's inspector draws). */
  readonly logic: unknown;
  readonly _parent: ActorRefView | undefined;
  getSnapshot(): unknown;
  /** A view takes no events: forwarded tools watch, they do not drive. */
  send(event: unknown): void;
}

/** A snapshot's JSON-safe, scrubbed copy: status, value, context, output, error, children (by id), tags. */
export function scrubSnapshot(snapshot: unknown, secrets: readonly string[]): unknown {
  if (typeof snapshot !== 'object' || snapshot === null) return snapshot;
  const s = snapshot as { status?: unknown; value?: unknown; context?: unknown; output?: unknown; error?: unknown; children?: Record<string, unknown>; tags?: Iterable<string> };
  return {
    status: s.status,
    ...('value' in s ? { value: scrub(s.value, FORWARD_LIMITS, secrets) } : {}),
    ...('context' in s ? { context: scrub(s.context, FORWARD_LIMITS, secrets) } : {}),
    ...(s.output === undefined ? {} : { output: scrub(s.output, FORWARD_LIMITS, secrets) }),
    ...(s.error === undefined ? {} : { error: scrub(s.error, FORWARD_LIMITS, secrets) }),
    ...(s.children === undefined ? {} : { children: Object.fromEntries(Object.keys(s.children).map((id) => [id, { id }])) }),
    ...(s.tags === undefined ? {} : { tags: [...s.tags] }),
  };
}

/** Makes the scrubbed copies of one session's events; views are made once per actor. */
export class Forwarder {
  readonly #secrets: readonly string[];
  readonly #views = new WeakMap<AnyActorRef, ActorRefView>();

  constructor(secrets: readonly string[]) {
    this.#secrets = secrets;
  }

  copy(event: InspectionEvent): InspectionEvent | undefined {
    const clean = (value: unknown): unknown => scrub(value, FORWARD_LIMITS, this.#secrets);
    const view = (ref: AnyActorRef): ActorRefView => this.#view(ref);
    switch (event.type) {
      case '@xstate.actor':
        return { ...event, actorRef: view(event.actorRef as AnyActorRef) };
      case '@xstate.event':
        return {
          ...event,
          event: clean(event.event) as typeof event.event,
          actorRef: view(event.actorRef as AnyActorRef),
          sourceRef: event.sourceRef === undefined ? undefined : view(event.sourceRef as AnyActorRef),
        };
      case '@xstate.snapshot':
      case '@xstate.microstep':
        return { ...event, event: clean(event.event) as typeof event.event, snapshot: scrubSnapshot(event.snapshot, this.#secrets) as typeof event.snapshot, actorRef: view(event.actorRef as AnyActorRef) };
      case '@xstate.action':
        return { ...event, action: { type: event.action.type, params: clean(event.action.params) }, actorRef: view(event.actorRef as AnyActorRef) };
      default:
        return undefined;
    }
  }

  #view(ref: AnyActorRef): ActorRefView {
    let view = this.#views.get(ref);
    if (view === undefined) {
      const parent = (ref as { _parent?: AnyActorRef })._parent;
      const secrets = this.#secrets;
      view = {
        id: ref.id,
        sessionId: ref.sessionId,
        systemId: (ref as { systemId?: string }).systemId,
        src: ref.src,
        logic: (ref as { logic?: unknown }).logic,
        _parent: parent === undefined ? undefined : this.#view(parent),
        getSnapshot: () => scrubSnapshot(ref.getSnapshot(), secrets),
        send: () => undefined,
      };
      this.#views.set(ref, view);
    }
    return view;
  }
}
