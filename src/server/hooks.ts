/**
 * Application hooks. Each may be async; none is awaited on the audio path. A hook that throws (or
 * rejects) is logged and reported through the server's `error` event — never swallowed silently,
 * never allowed to break the session.
 */
import type { StageChangeReason } from '../playbook/types.js';
import type { Guard } from '../session/actors.js';

export interface TurnMetrics {
  readonly sessionId: string;
  readonly turnId: string;
  readonly source: 'voice' | 'text' | 'idle' | 'stage';
  /** What the user waits: the end of their last voiced window (audio edge) → first agent audio frame on the transport. Voice turns. */
  readonly userStoppedToFirstAudioMs?: number;
  /** Audio edge → the end-of-turn decision (the silence the decision waited). Voice turns. */
  readonly endpointingMs?: number;
  /** End-of-turn decision → first agent audio frame on the transport. Voice turns. */
  readonly speechEndToFirstAudioMs?: number;
  /** Audio edge → the final transcript. Voice turns. */
  readonly sttFinalLagMs?: number;
  /** turn.start → first reply text. */
  readonly llmFirstTokenMs?: number;
  /** First reply text → first agent audio frame. */
  readonly ttsFirstAudioMs?: number;
  /** Whether a speculative reply was committed (`used`), thrown away (`discarded`) or not made (`off`). Voice turns. */
  readonly preemptive?: 'used' | 'discarded' | 'off';
  readonly interrupted: boolean;
}

export interface ConnectionInfo {
  readonly sessionId: string;
  readonly remoteAddress: string | undefined;
  readonly resumed: boolean;
  readonly metadata: Readonly<Record<string, string | number | boolean>> | undefined;
}

export interface DisconnectTiming {
  readonly sessionId: string;
  /** How long this connection lasted. */
  readonly connectedMs: number;
  readonly code: number;
  readonly reason: string;
}

export interface Hooks {
  onConnection?(info: ConnectionInfo): void | Promise<void>;
  onDisconnect?(timing: DisconnectTiming): void | Promise<void>;
  onSpeechStart?(event: { sessionId: string; atMs: number }): void | Promise<void>;
  /** The user stopped speaking: `durationMs` from the onset to the end of the last voiced window (audio time), `voicedMs` the voiced part of it (during a reply too). */
  onSpeechEnd?(event: { sessionId: string; durationMs: number; voicedMs: number }): void | Promise<void>;
  onTranscript?(event: { sessionId: string; text: string; final: boolean }): void | Promise<void>;
  onTurnStart?(event: { sessionId: string; turnId: string; source: 'voice' | 'text' | 'idle' | 'stage' }): void | Promise<void>;
  /** The user was silent for userIdleTimeoutMs while the agent listened (`prompts`: idle prompts made so far). */
  onIdle?(event: { sessionId: string; prompts: number }): void | Promise<void>;
  onTurnEnd?(metrics: TurnMetrics): void | Promise<void>;
  onReply?(event: { sessionId: string; turnId: string; text: string; interrupted: boolean }): void | Promise<void>;
  onError?(event: { sessionId: string | undefined; code: string; message: string }): void | Promise<void>;
  /** Playbooks: a stage was left, a stage was entered, a transition was taken (with its reason), the playbook completed. */
  onStageExit?(event: { sessionId: string; stage: string }): void | Promise<void>;
  onStageEnter?(event: { sessionId: string; stage: string; data: unknown }): void | Promise<void>;
  onTransition?(event: { sessionId: string; from: string | null; to: string | null; reason: StageChangeReason }): void | Promise<void>;
  onPlaybookComplete?(event: { sessionId: string; from: string | null; reason: StageChangeReason }): void | Promise<void>;
  /** Vetoes or rewrites a user turn (transcribed or typed) and each reply segment before it is spoken. */
  guard?: Guard;
}

export type HookName = Exclude<keyof Hooks, 'guard'>;

/** Calls a hook without letting it stall or break the caller. */
export function callHook<K extends HookName>(
  hooks: Hooks,
  name: K,
  argument: Parameters<NonNullable<Hooks[K]>>[0],
  onFailure: (name: K, error: unknown) => void,
): void {
  const hook = hooks[name] as ((arg: typeof argument) => void | Promise<void>) | undefined;
  if (hook === undefined) return;
  try {
    const result = hook.call(hooks, argument);
    if (result !== undefined && typeof (result as Promise<void>).then === 'function') {
      (result as Promise<void>).then(undefined, (error: unknown) => onFailure(name, error));
    }
  } catch (error) {
    onFailure(name, error);
  }
}
