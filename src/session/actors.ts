/**
 * The actors that connect the machines to real providers. Each one turns a provider's streaming
 * contract into the events the machines expect, and aborts the provider call when stopped.
 */
import { fromCallback, fromPromise } from 'xstate';
import type { LlmActorEvent, LlmActorInput, PlayoutCommand, ToolResult, TtsActorEvent, TtsActorInput } from '../../machines/reply.js';
import { isAbortError, isVoxError, ProviderError } from '../errors.js';
import type { LlmProvider, Tool, ToolCall, TtsProvider, WordTiming } from '../providers/types.js';

export interface ErrorInfo {
  readonly code: string;
  readonly message: string;
}

export function describeError(error: unknown, fallback = 'provider_failed'): ErrorInfo {
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
      try {
        const request = input.tools.length > 0 ? { messages: input.messages, tools: input.tools, signal } : { messages: input.messages, signal };
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
        if (!signal.aborted && !isAbortError(error)) sendBack({ type: 'llm.error', error: describeError(error) });
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
          sendBack({ type: 'tts.error', segment: input.segment, error: describeError(error) });
        }
      }
    })();
    return () => controller.abort();
  });
}

function serialize(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? 'null';
  } catch {
    return String(value);
  }
}

/** Runs one round of tool calls in parallel. A failing tool becomes an error result the model sees. */
export function createToolsActor(tools: readonly Tool[]) {
  const byName = new Map(tools.map((tool) => [tool.name, tool]));
  return fromPromise<ToolResult[], { calls: readonly ToolCall[] }>(async ({ input, signal }) =>
    Promise.all(
      input.calls.map(async (call): Promise<ToolResult> => {
        const tool = byName.get(call.name);
        if (tool === undefined) {
          return { callId: call.id, name: call.name, ok: false, content: serialize({ error: `unknown tool '${call.name}'`, code: 'tool_unknown' }) };
        }
        let args: unknown;
        try {
          args = call.arguments.trim() === '' ? {} : JSON.parse(call.arguments);
        } catch {
          return { callId: call.id, name: call.name, ok: false, content: serialize({ error: 'arguments are not valid JSON', code: 'tool_invalid_arguments' }) };
        }
        try {
          const result = await tool.execute(args, { signal });
          return { callId: call.id, name: call.name, ok: true, content: serialize(result) };
        } catch (error) {
          if (signal.aborted) throw error;
          return { callId: call.id, name: call.name, ok: false, content: serialize({ error: describeError(error, 'tool_failed').message, code: 'tool_failed' }) };
        }
      }),
    ),
  );
}
