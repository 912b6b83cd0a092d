/**
 * The restaurant's offline stand-in for an LLM: it reads the stage from the tools it is offered
 * (and its system prompt), the user's last words, and calls the stage's tool with arguments parsed
 * from them — "four of us", "Saturday", "half past seven", "7 pm" — or says a short line. Used by
 * `voxstate serve --playbook examples/playbook-restaurant/playbook.ts` when no LLM is configured
 * (the playbook module exports it as `offlineLlm`). It only knows this one conversation.
 */
import type { ChatMessage, LlmEvent, LlmProvider, LlmRequest, ToolSpec } from 'voxstate';

const GOODBYE = 'Thank you for calling Trattoria Voxstate. Goodbye!';

/** What the agent does with one request: call a tool, or say something. */
export type AgentAction = { readonly call: { readonly tool: string; readonly args: Readonly<Record<string, unknown>> } } | { readonly say: string };

export class RestaurantAgent implements LlmProvider {
  readonly name = 'restaurant-agent';
  /** A stand-in, not a model (the same marker as the built-in scripted agent). */
  readonly scripted = true;

  stream(request: LlmRequest): AsyncIterable<LlmEvent> {
    return this.#stream(request);
  }

  async *#stream(request: LlmRequest): AsyncGenerator<LlmEvent> {
    const action = decide(request.messages, request.tools ?? []);
    if (request.signal.aborted) return;
    if ('call' in action) {
      const call = { id: `call_${request.messages.length}_${action.call.tool}`, name: action.call.tool, arguments: JSON.stringify(action.call.args) };
      yield { type: 'tool_call', call };
      return;
    }
    for (const word of action.say.match(/\S+\s*/g) ?? []) {
      if (request.signal.aborted) return;
      yield { type: 'text', text: word };
    }
  }
}

/** The agent's decision for a conversation; exported so tests can ask it directly. */
export function decide(messages: readonly ChatMessage[], tools: readonly ToolSpec[]): AgentAction {
  const last = messages.at(-1);
  // After a tool phase: say what the tool said.
  if (last?.role === 'tool') return { say: toolMessage(messages) };
  const system = messages.flatMap((m) => (m.role === 'system' ? [m.content] : [])).join('\n');
  const userTexts = messages.flatMap((m) => (m.role === 'user' ? [m.content] : []));
  const text = normalize(userTexts.at(-1) ?? '');
  const has = (name: string): boolean => tools.some((tool) => tool.name === name);

  if (text === '') return { say: quotedLine(system) ?? 'Hello!' };
  if (/\b(cancel|never mind|forget it)\b/.test(text)) return { say: 'No problem, nothing is booked.' };
  // Also after the playbook has ended (no stage prompt any more).
  if (/\b(bye|goodbye)\b/.test(text)) return { say: GOODBYE };

  if (has('confirm_booking')) {
    if (/\b(no|not|change|different|wrong)\b/.test(text)) return { say: 'Of course. What day and time would suit you instead?' };
    if (/\b(yes|yeah|yep|sure|correct|confirm|please do|go ahead|right|ok|okay|perfect)\b/.test(text)) {
      const booking = bookingSoFar(messages);
      if (booking.people !== undefined && booking.day !== undefined && booking.time !== undefined)
        return { call: { tool: 'confirm_booking', args: { people: booking.people, day: booking.day, time: booking.time } } };
      return { say: 'Sorry, I lost track of the details. Could we go through them again?' };
    }
    return { say: 'Shall I confirm the booking? Yes or no?' };
  }

  if (has('set_date_time')) {
    // The day and the time may come in separate turns: read every user turn since the last tool result.
    // A change of only the time keeps the day booked before (and the other way round).
    const since = userTextsSinceLastTool(messages).map(normalize);
    const before = bookingSoFar(messages);
    const newDay = lastDefined(since.map(parseDay));
    const newTime = lastDefined(since.map(parseTime));
    const day = newDay ?? before.day;
    const time = newTime ?? before.time;
    if ((newDay !== undefined || newTime !== undefined) && day !== undefined && time !== undefined)
      return { call: { tool: 'set_date_time', args: { day, time } } };
    if (newDay !== undefined) return { say: `What time on ${capitalize(newDay)}?` };
    if (newTime !== undefined) return { say: `Which day, at ${newTime}?` };
    return { say: 'What day and time would you like?' };
  }

  if (has('set_party_size')) {
    const people = parsePartySize(text);
    if (people !== undefined) return { call: { tool: 'set_party_size', args: { people } } };
    return { say: 'How many people will there be?' };
  }

  return { say: quotedLine(system) ?? 'Sorry, I can only help with table bookings.' };
}

// ---------------------------------------------------------------------------------------------
// Reading the conversation

function toolMessage(messages: readonly ChatMessage[]): string {
  const said: string[] = [];
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m?.role !== 'tool') break;
    said.unshift(messageOf(m.content));
  }
  return said.join(' ');
}

function messageOf(content: string): string {
  try {
    const value = JSON.parse(content) as unknown;
    if (typeof value === 'string') return value;
    if (typeof value === 'object' && value !== null) {
      const record = value as Record<string, unknown>;
      if (typeof record['message'] === 'string') return record['message'];
      if (typeof record['error'] === 'string') return `Sorry, that did not work: ${record['error']}`;
    }
  } catch {
    // a plain-text result
  }
  return content;
}

/** The arguments of the latest set_party_size and set_date_time calls in the history. */
function bookingSoFar(messages: readonly ChatMessage[]): { people?: number; day?: string; time?: string } {
  const booking: { people?: number; day?: string; time?: string } = {};
  for (const m of messages) {
    if (m.role !== 'assistant') continue;
    for (const call of m.toolCalls ?? []) {
      const args = parseArgs(call.arguments);
      if (call.name === 'set_party_size' && typeof args['people'] === 'number') booking.people = args['people'];
      if (call.name === 'set_date_time' && typeof args['day'] === 'string' && typeof args['time'] === 'string') {
        booking.day = args['day'];
        booking.time = args['time'];
      }
    }
  }
  return booking;
}

function parseArgs(json: string): Record<string, unknown> {
  try {
    const value = JSON.parse(json) as unknown;
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function userTextsSinceLastTool(messages: readonly ChatMessage[]): string[] {
  let start = 0;
  messages.forEach((m, i) => {
    if (m.role === 'tool') start = i + 1;
  });
  return messages.slice(start).flatMap((m) => (m.role === 'user' ? [m.content] : []));
}

/** A line the stage's prompt asks to say: `say "…"`. */
function quotedLine(system: string): string | undefined {
  const all = [...system.matchAll(/\bsay\s+["“]([^"”]+)["”]/gi)];
  return all.at(-1)?.[1]?.trim();
}

// ---------------------------------------------------------------------------------------------
// Parsing spoken numbers, days and times

const UNITS: Readonly<Record<string, number>> = {
  zero: 0, one: 1, two: 2, three: 3, four: 4, five: 5, six: 6, seven: 7, eight: 8, nine: 9, ten: 10,
  eleven: 11, twelve: 12, thirteen: 13, fourteen: 14, fifteen: 15, sixteen: 16, seventeen: 17,
  eighteen: 18, nineteen: 19,
};
const TENS: Readonly<Record<string, number>> = { twenty: 20, thirty: 30, forty: 40, fifty: 50 };
const NUMBER_WORD = `(?:(?:${Object.keys(TENS).join('|')})(?: (?:${Object.keys(UNITS).join('|')}))?|${Object.keys(UNITS).join('|')})`;
const NUMBER = `(\\d{1,2}|${NUMBER_WORD})`;

/** Lower case, apostrophes dropped, other punctuation (but `:` in 7:30) as spaces. */
export function normalize(text: string): string {
  return text
    .toLowerCase()
    .replace(/['’]/g, '')
    .replace(/(\d)\s*([ap])\.?\s?m\b\.?/g, '$1 $2m')
    .replace(/[^\p{L}\p{N}:\s]/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** "4", "four", "twenty two" → a number. */
export function toNumber(token: string | undefined): number | undefined {
  if (token === undefined) return undefined;
  if (/^\d+$/.test(token)) return Number(token);
  const [first, second] = token.split(' ');
  if (first !== undefined && first in TENS) return (TENS[first] ?? 0) + (second === undefined ? 0 : (UNITS[second] ?? 0));
  return first === undefined ? undefined : UNITS[first];
}

/** The number of guests in "four of us", "a table for 2", "just me", "a couple". */
export function parsePartySize(text: string): number | undefined {
  if (/\b(just me|only me|myself|alone|on my own)\b/.test(text)) return 1;
  if (/\b(a couple|the two of us|my (wife|husband|partner) and me|me and my (wife|husband|partner))\b/.test(text)) return 2;
  const match = new RegExp(`\\b${NUMBER}\\b`).exec(text);
  const value = toNumber(match?.[1]);
  return value !== undefined && value >= 1 && value <= 30 ? value : undefined;
}

const WEEKDAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'] as const;

/** A weekday, 'today' (also for "tonight") or 'tomorrow'. */
export function parseDay(text: string): string | undefined {
  const match = new RegExp(`\\b(today|tonight|tomorrow|${WEEKDAYS.join('|')})\\b`).exec(text);
  if (!match?.[1]) return undefined;
  return match[1] === 'tonight' ? 'today' : match[1];
}

/**
 * A time as HH:MM from "7 pm", "7:30", "half past seven", "quarter to eight", "seven thirty",
 * "at eight", "noon", or a lone "seven". Without am/pm an hour up to ten means the evening.
 */
export function parseTime(text: string): string | undefined {
  if (/\bnoon\b/.test(text)) return '12:00';
  const MINUTES = '(thirty|fifteen|forty five|o ?clock|\\d{2})';
  const patterns: [RegExp, (m: RegExpExecArray) => [hour: number | undefined, minutes: number, meridiem: string | undefined]][] = [
    [new RegExp(`\\bhalf past ${NUMBER}(?: (am|pm))?\\b`), (m) => [toNumber(m[1]), 30, m[2]]],
    [new RegExp(`\\bquarter past ${NUMBER}(?: (am|pm))?\\b`), (m) => [toNumber(m[1]), 15, m[2]]],
    [new RegExp(`\\bquarter to ${NUMBER}(?: (am|pm))?\\b`), (m) => [(toNumber(m[1]) ?? 0) - 1, 45, m[2]]],
    [/\b(\d{1,2}):(\d{2})(?: (am|pm))?\b/, (m) => [Number(m[1]), Number(m[2]), m[3]]],
    [new RegExp(`\\b${NUMBER} (am|pm)\\b`), (m) => [toNumber(m[1]), 0, m[2]]],
    [new RegExp(`\\b${NUMBER} ${MINUTES}(?: (am|pm))?\\b`), (m) => [toNumber(m[1]), spokenMinutes(m[2]), m[3]]],
    [new RegExp(`\\bat ${NUMBER}\\b`), (m) => [toNumber(m[1]), 0, undefined]],
    [new RegExp(`^(?:(?:about|around|maybe|say|lets say) )?${NUMBER}(?: please)?$`), (m) => [toNumber(m[1]), 0, undefined]],
  ];
  for (const [pattern, read] of patterns) {
    const match = pattern.exec(text);
    if (!match) continue;
    const [hour, minutes, meridiem] = read(match);
    if (hour === undefined || hour < 0 || hour > 23 || minutes > 59) continue;
    const h24 = meridiem === 'pm' && hour < 12 ? hour + 12 : meridiem === 'am' && hour === 12 ? 0 : meridiem === undefined && hour >= 1 && hour <= 10 ? hour + 12 : hour;
    return `${String(h24).padStart(2, '0')}:${String(minutes).padStart(2, '0')}`;
  }
  return undefined;
}

function spokenMinutes(token: string | undefined): number {
  if (token === undefined || /^o ?clock$/.test(token)) return 0;
  if (/^\d+$/.test(token)) return Number(token);
  return toNumber(token) ?? 0;
}

function lastDefined<T>(values: readonly (T | undefined)[]): T | undefined {
  return values.filter((value) => value !== undefined).at(-1);
}

function capitalize(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}
