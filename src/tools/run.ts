/**
 * One tool call from the model's text to the result the model is told: parse the JSON arguments,
 * validate them (tools with `validate`), execute with the tool's time limit and cancellation rule.
 * Every outcome is a ToolResult; nothing is thrown, so a bad call can never fail the session.
 * The tools actor (src/session/actors.ts) runs one round of calls with this.
 */
import type { ToolResult } from '../../machines/reply.js';
import type { Clock } from '../clock.js';
import type { ErrorCode } from '../errors.js';
import type { Tool, ToolCall, ToolIssue, ToolStageContext } from '../providers/types.js';

/** The codes a failed call's result carries (a subset of the wire's error codes). */
export type ToolErrorCode = Extract<ErrorCode, `tool_${string}`>;

/** The content (as JSON) of a failed call's result: what the model and `tool.end.error` see. */
export interface ToolErrorContent {
  readonly error: string;
  readonly code: ToolErrorCode;
  /** `tool_invalid_arguments`: every problem found, each with its path in the arguments. */
  readonly issues?: readonly ToolIssue[];
  /** `tool_failed` because the call ran past its `timeoutMs` ('timeout') or the reply was cancelled ('cancelled'). */
  readonly reason?: 'timeout' | 'cancelled';
}

/** The two timer methods a time limit needs (our Clock and XState's both have them). */
export type TimerClock = Pick<Clock, 'setTimeout' | 'clearTimeout'>;

export interface RunToolCallOptions {
  /** Aborts when the call's reply is cancelled (the tools actor stops). */
  readonly signal: AbortSignal;
  readonly clock: TimerClock;
  /** The limit for a tool without its own `timeoutMs`. Default: none. */
  readonly timeoutMs?: number;
  /** The playbook stage the call runs in (`ToolContext.stage`). */
  readonly stage?: ToolStageContext;
}

/** The result text: strings as they are, anything else as JSON. */
export function serializeResult(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? 'null';
  } catch {
    return String(value);
  }
}

/** `people: Too small…; items[0].name: Required` — the issues in one line for the `error` text. */
export function formatIssues(issues: readonly ToolIssue[]): string {
  return issues
    .map(({ path, message }) => {
      const where = path.reduce<string>((text, key) => (typeof key === 'number' ? `${text}[${key}]` : text === '' ? key : `${text}.${key}`), '');
      return where === '' ? message : `${where}: ${message}`;
    })
    .join('; ');
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function failure(call: ToolCall, content: ToolErrorContent): ToolResult {
  return { callId: call.id, name: call.name, ok: false, content: serializeResult(content) };
}

type Parsed = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly message: string };

function parseArguments(text: string): Parsed {
  // Some models send '' for a tool without parameters.
  if (text.trim() === '') return { ok: true, value: {} };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (error) {
    return { ok: false, message: messageOf(error) };
  }
}

export async function runToolCall(tool: Tool | undefined, call: ToolCall, options: RunToolCallOptions): Promise<ToolResult> {
  if (tool === undefined) return failure(call, { error: `unknown tool '${call.name}'`, code: 'tool_unknown' });
  const parsed = parseArguments(call.arguments);
  if (!parsed.ok) {
    return failure(call, { error: 'arguments are not valid JSON', code: 'tool_invalid_arguments', issues: [{ path: [], message: parsed.message }] });
  }
  let args = parsed.value;
  if (tool.validate !== undefined) {
    try {
      const verdict = await tool.validate(args);
      if (!verdict.ok) {
        const issues = verdict.issues.map(({ path, message }) => ({ path: [...path], message }));
        return failure(call, { error: `invalid arguments for '${call.name}': ${formatIssues(issues)}`, code: 'tool_invalid_arguments', issues });
      }
      args = verdict.value;
    } catch (error) {
      return failure(call, { error: messageOf(error), code: 'tool_failed' });
    }
  }
  // A reply cancelled meanwhile runs nothing, not even a tool that would not be cancelled once started.
  if (options.signal.aborted) return failure(call, { error: 'the call was cancelled', code: 'tool_failed', reason: 'cancelled' });
  return execute(tool, call, args, options);
}

type Outcome = { readonly kind: 'value'; readonly value: unknown } | { readonly kind: 'error'; readonly error: unknown } | { readonly kind: 'timeout' } | { readonly kind: 'cancelled' };

async function execute(tool: Tool, call: ToolCall, args: unknown, options: RunToolCallOptions): Promise<ToolResult> {
  const controller = new AbortController();
  const cancellable = tool.cancelOnInterrupt !== false;
  const timeoutMs = tool.timeoutMs ?? options.timeoutMs;
  let settle: (outcome: Outcome) => void = () => undefined;
  const ended = new Promise<Outcome>((resolve) => (settle = resolve));
  const onCancel = (): void => {
    controller.abort(options.signal.reason);
    settle({ kind: 'cancelled' });
  };
  if (cancellable) options.signal.addEventListener('abort', onCancel, { once: true });
  const timer =
    timeoutMs === undefined
      ? undefined
      : options.clock.setTimeout(() => {
          controller.abort(Object.assign(new Error(`'${call.name}' did not finish within ${timeoutMs} ms`), { name: 'TimeoutError' }));
          settle({ kind: 'timeout' });
        }, timeoutMs);
  // A tool that ignores its signal keeps running after a timeout or a cancel: its outcome is dropped.
  void Promise.resolve()
    .then(() => tool.execute(args, { signal: controller.signal, ...(options.stage === undefined ? {} : { stage: options.stage }) }))
    .then(
      (value) => settle({ kind: 'value', value }),
      (error: unknown) => settle({ kind: 'error', error }),
    );
  const outcome = await ended;
  if (timer !== undefined) options.clock.clearTimeout(timer);
  options.signal.removeEventListener('abort', onCancel);
  switch (outcome.kind) {
    case 'value':
      return { callId: call.id, name: call.name, ok: true, content: serializeResult(outcome.value) };
    case 'error':
      return failure(call, { error: messageOf(outcome.error), code: 'tool_failed' });
    case 'timeout':
      return failure(call, { error: `'${call.name}' did not finish within ${timeoutMs} ms`, code: 'tool_failed', reason: 'timeout' });
    case 'cancelled':
      return failure(call, { error: 'the call was cancelled', code: 'tool_failed', reason: 'cancelled' });
  }
}
