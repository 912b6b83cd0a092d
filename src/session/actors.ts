/**
 * The actors that connect the machines to real providers. Each one turns a provider's streaming
 * contract into the events the machines expect, and aborts the provider call when stopped.
 */
import { fromCallback, fromPromise } from 'xstate';
import type { LlmActorEvent, LlmActorInput, PlayoutCommand, ToolResult, TtsActorEvent, TtsActorInput } from '../../machines/reply.js';
import { cloneStageData } from '../../machines/playbook.js';
import { ConfigError, isAbortError, isVoxError, ProviderError } from '../errors.js';
import type { LlmProvider, Tool, ToolCall, ToolStageContext, TtsProvider, WordTiming } from '../providers/types.js';
import { runToolCall, type TimerClock } from '../tools/run.js';

export interface ErrorInfo {
  readonly code: string;
  readonly message: string;
  /** Which kind of provider failed: the client's generic message names it (src/protocol/error-messages.ts). */
  readonly provider?: string;
}

export function describeError(error: unknown, fallback = 'provider_failed'): ErrorInfo {
  if (error instanceof ProviderError) return { code: error.code, message: error.message, provider: error.provider };
  if (isVoxError(error)) return { code: error.code, message: error.message };
  if (error instanceof Error) return { code: fallback, message: error.message };
  return { code: fallback, message: String(error) };
}

/** What a guard decides about a user turn or a reply segment before it is used or spoken. */
export type GuardVerdict = { readonly action: 'allow' } | { readonly action: 'rewrite'; readonly text: string } | { readonly action: 'veto'; readonly reason?: string };

export interface GuardInput {
  readonly kind: 'user' | 'reply';
  readonly text: string;
}

export type Guard = (input: GuardInput, signal: AbortSignal) => GuardVerdict | Promise<GuardVerdict>;

/** Applies a guard: the text to use ('' when vetoed). */
export async function applyGuard(guard: Guard | undefined, input: GuardInput, signal: AbortSignal): Promise<string> {
  if (guard === undefined || input.text.length === 0) return input.text;
  const verdict = await guard(input, signal);
  if (verdict.action === 'veto') return '';
  if (verdict.action === 'rewrite') return verdict.text;
  return input.text;
}

export function createLlmActor(llm: LlmProvider) {
  return fromCallback<LlmActorEvent, LlmActorInput>(({ input, sendBack }) => {
    const controller = new AbortController();
    const { signal } = controller;
    void (async () => {
      if (input.say !== undefined) {
        // A fixed text (a playbook greeting): no LLM call.
        if (input.say.length > 0) sendBack({ type: 'llm.text', text: input.say });
        sendBack({ type: 'llm.done' });
        return;
      }
      try {
        const base = input.tools.length > 0 ? { messages: input.messages, tools: input.tools, signal } : { messages: input.messages, signal };
        const request = input.llm === undefined ? base : { ...base, ...input.llm };
        for await (const event of llm.stream(request)) {
          if (signal.aborted) return;
          switch (event.type) {
            case 'text':
              if (event.text.length > 0) sendBack({ type: 'llm.text', text: event.text });
              break;
            case 'tool_call':
              sendBack({ type: 'llm.toolCall', call: event.call });
              break;
            case 'usage':
              sendBack({ type: 'llm.usage', usage: event.usage });
              break;
          }
        }
        if (!signal.aborted) sendBack({ type: 'llm.done' });
      } catch (error) {
        if (!signal.aborted && !isAbortError(error)) sendBack({ type: 'llm.error', error: { provider: 'llm', ...describeError(error) } });
      }
    })();
    return () => controller.abort();
  });
}

export function createTtsActor(tts: TtsProvider, voice?: string, guard?: Guard) {
  return fromCallback<TtsActorEvent, TtsActorInput>(({ input, sendBack }) => {
    const controller = new AbortController();
    const { signal } = controller;
    void (async () => {
      try {
        const text = await applyGuard(guard, { kind: 'reply', text: input.text }, signal);
        if (signal.aborted) return;
        if (text !== input.text) sendBack({ type: 'tts.rewrite', segment: input.segment, text });
        const options = voice === undefined ? { signal } : { signal, voice };
        // Audio goes straight to the playout (and the avatar link), not through the reply machine.
        // The first chunk goes out at once (time to first audio); chunks that arrive together after it
        // (a TTS faster than real time) are merged into one command per event-loop turn.
        let sentFirst = false;
        let pending: { pcm: Int16Array[]; samples: number; sampleRate: number; words: WordTiming[] | undefined } | undefined;
        let scheduled = false;
        const flush = (): void => {
          scheduled = false;
          const batch = pending;
          pending = undefined;
          if (batch === undefined || signal.aborted) return;
          const pcm = batch.pcm.length === 1 ? (batch.pcm[0] as Int16Array) : new Int16Array(batch.samples);
          if (batch.pcm.length > 1) {
            let offset = 0;
            for (const part of batch.pcm) {
              pcm.set(part, offset);
              offset += part.length;
            }
          }
          const command: PlayoutCommand =
            batch.words === undefined
              ? { type: 'playout.enqueue', segment: input.segment, pcm, sampleRate: batch.sampleRate }
              : { type: 'playout.enqueue', segment: input.segment, pcm, sampleRate: batch.sampleRate, words: batch.words };
          input.playout?.send(command);
          input.motion?.send({ type: 'motion.audio', pcm, sampleRate: batch.sampleRate, end: false });
        };
        for await (const chunk of text.length === 0 ? [] : tts.synthesize(text, options)) {
          if (signal.aborted) return;
          if (!(chunk.pcm instanceof Int16Array) || !Number.isInteger(chunk.sampleRate) || chunk.sampleRate < 8000) {
            throw new ProviderError('provider_bad_response', 'tts', `TTS returned unusable audio (sampleRate ${String(chunk.sampleRate)})`);
          }
          if (pending !== undefined && pending.sampleRate !== chunk.sampleRate) flush();
          pending ??= { pcm: [], samples: 0, sampleRate: chunk.sampleRate, words: undefined };
          pending.pcm.push(chunk.pcm);
          pending.samples += chunk.pcm.length;
          if (chunk.words !== undefined) pending.words = [...(pending.words ?? []), ...chunk.words];
          if (!sentFirst) {
            sentFirst = true;
            flush();
          } else if (!scheduled) {
            scheduled = true;
            setImmediate(flush);
          }
        }
        flush();
        if (!signal.aborted) sendBack({ type: 'tts.done', segment: input.segment });
      } catch (error) {
        if (!signal.aborted && !isAbortError(error)) {
          sendBack({ type: 'tts.error', segment: input.segment, error: { provider: 'tts', ...describeError(error) } });
        }
      }
    })();
    return () => controller.abort();
  });
}

export interface ToolsActorOptions {
  /** The time limit of a call whose tool has no `timeoutMs`. Default: none. */
  readonly timeoutMs?: number;
  /** The clock time limits run on. Default: the actor system's clock (the session's, virtual in simulations). */
  readonly clock?: TimerClock;
}

function checkTimeout(field: string, value: number | undefined): void {
  if (value !== undefined && !(Number.isFinite(value) && value > 0)) throw new ConfigError(field, `must be a positive number of milliseconds (got ${String(value)})`);
}

/**
 * Runs one round of tool calls in parallel (src/tools/run.ts): arguments are parsed and validated,
 * and every failure (unknown tool, invalid arguments, a throw, a timeout) becomes an error result
 * the model sees. Stopping the actor (the reply is cancelled) aborts the calls of tools that allow
 * it; a `cancelOnInterrupt: false` call runs on and its result goes nowhere.
 */
export function createToolsActor(tools: readonly Tool[], options: ToolsActorOptions = {}) {
  const byName = new Map<string, Tool>();
  for (const tool of tools) {
    if (byName.has(tool.name)) throw new ConfigError('tools', `two tools are named '${tool.name}'`);
    checkTimeout(`tools.${tool.name}.timeoutMs`, tool.timeoutMs);
    byName.set(tool.name, tool);
  }
  checkTimeout('timeoutMs', options.timeoutMs);
  return fromPromise<ToolResult[], { calls: readonly ToolCall[]; allowed?: readonly string[]; replyId?: number }>(async ({ input, signal, system }) => {
    // The system's clock is the one the session actor was created with (XState keeps it as `_clock`).
    const clock = options.clock ?? (system._clock as TimerClock);
    // Only the tools the reply offered the model run (a playbook stage's), and of those only the ones
    // of the stage the session is in now: a tool of a stage that was left meanwhile is unknown here.
    const session = system.get('session') as
      | { getSnapshot(): { context?: { stage?: { id: string; data: unknown; tools: readonly { name: string }[] } } }; send(event: { type: 'playbook.setData'; stage: string; data: unknown }): void }
      | undefined;
    const stage = session?.getSnapshot().context?.stage;
    const stageContext: ToolStageContext | undefined =
      stage === undefined || session === undefined
        ? undefined
        : { id: stage.id, data: stage.data, setData: (data) => session.send({ type: 'playbook.setData', stage: stage.id, data: cloneStageData(stage.id, data) }) };
    const run = { signal, clock, ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }), ...(stageContext === undefined ? {} : { stage: stageContext }) };
    const live = stage === undefined ? undefined : new Set(stage.tools.map((tool) => tool.name));
    const allowed = input.allowed === undefined ? live : new Set(input.allowed.filter((name) => live === undefined || live.has(name)));
    const lookup = (name: string): Tool | undefined => (allowed === undefined || allowed.has(name) ? byName.get(name) : undefined);
    // Each call's end is told as it happens (the wire's tool.end per call), not with the round.
    const reply = system.get('reply') as { send(event: { type: 'tools.callEnded'; replyId: number; result: ToolResult }): void } | undefined;
    return Promise.all(
      input.calls.map(async (call) => {
        const result = await runToolCall(lookup(call.name), call, run);
        if (!signal.aborted && input.replyId !== undefined) reply?.send({ type: 'tools.callEnded', replyId: input.replyId, result });
        return result;
      }),
    );
  });
}
