/**
 * A scripted stand-in for a language model, for offline demos and tests: deterministic replies
 * from a few rules (greeting, booking a table, weather, sums, numbers, and an echo fallback),
 * tool calls when a rule has a matching tool, and a stage's opening line from its system prompt.
 * It is never chosen when a real LLM is configured (see detect.ts) and it says what it is.
 */
import type { ChatMessage, LlmEvent, LlmProvider, LlmRequest, ToolSpec } from '../types.js';
import { sleep, throwIfAborted } from './streams.js';

/** What a rule decided: words to say, or a tool to call (with words for when no such tool exists). */
export type ScriptedAction =
  | { readonly say: string }
  | { readonly call: { readonly tool: string; readonly args: Readonly<Record<string, unknown>> } };

export interface ScriptedContext {
  /** The user's last message. */
  readonly text: string;
  /** Lower-cased, punctuation stripped. */
  readonly normalized: string;
  readonly tools: readonly ToolSpec[];
  /** The system prompt(s) of the current stage, joined. */
  readonly system: string;
  readonly messages: readonly ChatMessage[];
}

export interface ScriptedRule {
  readonly name: string;
  /** Returns an action, or undefined to let the next rule try. */
  readonly respond: (context: ScriptedContext) => ScriptedAction | undefined;
}

export interface ScriptedAgentOptions {
  /** Rules tried before the built-in ones. */
  readonly rules?: readonly ScriptedRule[];
  /** Pause between streamed words, to look like a model. Default 0. */
  readonly wordDelayMs?: number;
  readonly name?: string;
}

export class ScriptedAgent implements LlmProvider {
  readonly name: string;
  /** Marks this provider as a stand-in, for logs and for detect.ts. */
  readonly scripted = true;
  readonly #rules: readonly ScriptedRule[];
  readonly #wordDelayMs: number;

  constructor(options: ScriptedAgentOptions = {}) {
    this.name = options.name ?? 'scripted-agent';
    this.#rules = [...(options.rules ?? []), ...BUILT_IN_RULES];
    this.#wordDelayMs = options.wordDelayMs ?? 0;
  }

  stream(request: LlmRequest): AsyncIterable<LlmEvent> {
    return this.#stream(request);
  }

  async *#stream(request: LlmRequest): AsyncGenerator<LlmEvent> {
    throwIfAborted(request.signal, 'llm');
    const action = this.decide(request.messages, request.tools ?? []);
    const inputTokens = Math.ceil(request.messages.reduce((n, m) => n + m.content.length, 0) / 4);
    if ('call' in action) {
      yield {
        type: 'tool_call',
        call: { id: `scripted_call_${request.messages.length}`, name: action.call.tool, arguments: JSON.stringify(action.call.args) },
      };
      yield { type: 'usage', usage: { inputTokens, outputTokens: 1 } };
      return;
    }
    const words = action.say.match(/\S+\s*/g) ?? [];
    for (const word of words) {
      if (this.#wordDelayMs > 0) await sleep(this.#wordDelayMs, request.signal, 'llm');
      throwIfAborted(request.signal, 'llm');
      yield { type: 'text', text: word };
    }
    yield { type: 'usage', usage: { inputTokens, outputTokens: words.length } };
  }

  /** The action for a conversation; exposed so tests and playbook previews can ask directly. */
  decide(messages: readonly ChatMessage[], tools: readonly ToolSpec[]): ScriptedAction {
    const last = messages.at(-1);
    if (last?.role === 'tool') return { say: summarizeToolResults(messages) };
    const system = messages.flatMap((m) => (m.role === 'system' ? [m.content] : [])).join('\n');
    const user = [...messages].reverse().find((m) => m.role === 'user');
    if (!user) return { say: openingLine(system) };
    const normalized = user.content.toLowerCase().replace(/[^\p{L}\p{N}:\s]/gu, ' ').replace(/\s+/g, ' ').trim();
    const context: ScriptedContext = { text: user.content.trim(), normalized, tools, system, messages };
    for (const rule of this.#rules) {
      const action = rule.respond(context);
      if (action) return action;
    }
    return { say: `You said: ${context.text}` };
  }
}

// ---------------------------------------------------------------------------------------------
// Built-in rules

const NUMBER_WORDS: Record<string, number> = {
  zero: 0, one: 1, two: 2, three: 3, four: 4, five: 5, six: 6, seven: 7, eight: 8, nine: 9, ten: 10,
  eleven: 11, twelve: 12, thirteen: 13, fourteen: 14, fifteen: 15, sixteen: 16, seventeen: 17,
  eighteen: 18, nineteen: 19, twenty: 20, thirty: 30, forty: 40, fifty: 50, sixty: 60, seventy: 70,
  eighty: 80, ninety: 90, hundred: 100,
};
const NUMBER = `(\\d+(?:\\.\\d+)?|${Object.keys(NUMBER_WORDS).join('|')})`;

function toNumber(token: string | undefined): number | undefined {
  if (token === undefined) return undefined;
  if (/^\d/.test(token)) return Number(token);
  return NUMBER_WORDS[token];
}

/** Only the arguments a tool declares (when it declares any). */
function argsFor(tool: ToolSpec, args: Record<string, unknown>): Record<string, unknown> {
  const properties = (tool.parameters as { properties?: Record<string, unknown> }).properties;
  const defined = Object.entries(args).filter(([, v]) => v !== undefined);
  if (!properties) return Object.fromEntries(defined);
  return Object.fromEntries(defined.filter(([k]) => k in properties));
}

function findTool(tools: readonly ToolSpec[], pattern: RegExp): ToolSpec | undefined {
  return tools.find((t) => pattern.test(t.name));
}

interface Booking {
  partySize?: number;
  date?: string;
  time?: string;
}

export function parseBooking(normalized: string): Booking {
  const booking: Booking = {};
  const party =
    new RegExp(`\\bfor ${NUMBER}(?: people| persons| guests)?\\b`).exec(normalized) ??
    new RegExp(`\\b${NUMBER} (?:people|persons|guests)\\b`).exec(normalized) ??
    new RegExp(`\\bparty of ${NUMBER}\\b`).exec(normalized);
  const size = toNumber(party?.[1]);
  if (size !== undefined) booking.partySize = size;
  const date = /\b(today|tonight|tomorrow|monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b/.exec(normalized);
  if (date?.[1]) booking.date = date[1] === 'tonight' ? 'today' : date[1];
  const time = new RegExp(`\\bat ${NUMBER}(?::(\\d{2})| (\\d{2}|thirty|fifteen|forty five))?(?: ?(am|pm|o clock))?\\b`).exec(normalized);
  const hour = toNumber(time?.[1]);
  if (time && hour !== undefined && hour >= 1 && hour <= 23) {
    const spoken: Record<string, string> = { thirty: '30', fifteen: '15', 'forty five': '45' };
    const minutes = time[2] ?? (time[3] === undefined ? '00' : (spoken[time[3]] ?? time[3]));
    // A restaurant at "seven" means the evening unless the user said am.
    const h24 = hour < 12 && time[4] !== 'am' && (time[4] === 'pm' || hour < 11) ? hour + 12 : hour;
    booking.time = `${String(h24).padStart(2, '0')}:${minutes}`;
  }
  return booking;
}

function describeBooking(b: Booking): string {
  return [
    b.partySize === undefined ? 'a table' : `a table for ${b.partySize} ${b.partySize === 1 ? 'person' : 'people'}`,
    b.date,
    b.time === undefined ? undefined : `at ${b.time}`,
  ]
    .filter(Boolean)
    .join(' ');
}

const greeting: ScriptedRule = {
  name: 'greeting',
  respond: ({ normalized }) =>
    /^(hi|hello|hey|good (morning|afternoon|evening)|greetings)\b/.test(normalized) && normalized.split(' ').length <= 6
      ? { say: "Hello! I'm the voxstate scripted agent. I can book a table, talk about the weather, or do simple sums." }
      : undefined,
};

const booking: ScriptedRule = {
  name: 'booking',
  respond: ({ normalized, tools }) => {
    if (!/\b(book|reserve|reservation|table)\b/.test(normalized)) return undefined;
    const b = parseBooking(normalized);
    const tool = findTool(tools, /book|reserv/i);
    if (b.partySize === undefined || b.time === undefined)
      return { say: `Happy to book ${describeBooking(b)}. For how many people, and at what time?` };
    if (tool) return { call: { tool: tool.name, args: argsFor(tool, { partySize: b.partySize, date: b.date ?? 'today', time: b.time }) } };
    return { say: `I would book ${describeBooking(b)}, but I am a scripted demo agent without a booking system.` };
  },
};

const weather: ScriptedRule = {
  name: 'weather',
  respond: ({ text, normalized, tools }) => {
    if (!/\b(weather|forecast|rain|sunny|temperature)\b/.test(normalized)) return undefined;
    const place = /\bin ([A-Z][\p{L}-]+(?: [A-Z][\p{L}-]+)*)/u.exec(text)?.[1] ?? /\bin ([\p{L}-]+)\s*\??$/u.exec(normalized)?.[1];
    const tool = findTool(tools, /weather|forecast/i);
    if (tool && place) return { call: { tool: tool.name, args: argsFor(tool, { location: place, city: place }) } };
    return { say: `I'm running offline, so I can't look up the weather${place ? ` in ${place}` : ''}. I hope it's sunny.` };
  },
};

const sums: ScriptedRule = {
  name: 'arithmetic',
  respond: ({ normalized }) => {
    const m = new RegExp(`${NUMBER} (plus|minus|times|multiplied by|divided by|over) ${NUMBER}`).exec(normalized);
    const a = toNumber(m?.[1]);
    const b = toNumber(m?.[3]);
    if (!m || a === undefined || b === undefined) return undefined;
    const op = m[2];
    if ((op === 'divided by' || op === 'over') && b === 0) return { say: "Dividing by zero is something even I won't script." };
    const value = op === 'plus' ? a + b : op === 'minus' ? a - b : op === 'times' || op === 'multiplied by' ? a * b : a / b;
    return { say: `${a} ${op} ${b} is ${Number.isInteger(value) ? value : value.toFixed(2)}.` };
  },
};

const numbers: ScriptedRule = {
  name: 'numbers',
  respond: ({ normalized }) => {
    const found = [...normalized.matchAll(new RegExp(`\\b${NUMBER}\\b`, 'g'))].map((m) => toNumber(m[1])).filter((n) => n !== undefined);
    if (found.length === 0) return undefined;
    const list = found.length === 1 ? `the number ${found[0]}` : `the numbers ${found.slice(0, -1).join(', ')} and ${found.at(-1)}`;
    return { say: `I heard ${list}.` };
  },
};

const BUILT_IN_RULES: readonly ScriptedRule[] = [greeting, booking, weather, sums, numbers];

/** What to say when a stage begins: a quoted line after "say" in its prompt, else a greeting. */
function openingLine(system: string): string {
  const quoted = /\bsay\b[^"“]*["“]([^"”]+)["”]/i.exec(system)?.[1];
  if (quoted) return quoted.trim();
  return "Hello! I'm the voxstate scripted agent. How can I help?";
}

function summarizeToolResults(messages: readonly ChatMessage[]): string {
  const results: string[] = [];
  for (let i = messages.length - 1; i >= 0 && messages[i]?.role === 'tool'; i--) {
    const m = messages[i] as Extract<ChatMessage, { role: 'tool' }>;
    results.unshift(summarizeToolResult(m.name, m.content));
  }
  return `Done. ${results.join(' ')}`.trim();
}

function summarizeToolResult(name: string, content: string): string {
  let value: unknown = content;
  try {
    value = JSON.parse(content);
  } catch {
    // a plain string result
  }
  if (typeof value === 'string') return endSentence(value);
  if (value && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    for (const key of ['message', 'summary', 'confirmation', 'text', 'result'])
      if (typeof record[key] === 'string') return endSentence(record[key]);
    if (typeof record['error'] === 'string') return `The ${name} tool failed: ${endSentence(record['error'])}`;
  }
  return `The ${name} tool answered ${JSON.stringify(value)}.`;
}

function endSentence(text: string): string {
  const t = text.trim();
  return /[.!?]$/.test(t) ? t : `${t}.`;
}
