/**
 * A table booking as a playbook: greet → party (how many) → when (day and time) → confirm → done.
 * Each stage has its own prompt and tools; a stage is left when its tool has been called (the
 * arguments were understood), on a keyword, after too many turns or too long a silence.
 *
 *   npx voxstate playbook graph examples/playbook-restaurant/playbook.ts
 *   npx voxstate serve --playbook examples/playbook-restaurant/playbook.ts
 *
 * With no LLM configured, `offlineLlm` (./agent.ts) plays the model, so it runs offline from typed
 * input (script.txt walks every stage).
 */
import { definePlaybook, defineTool } from 'voxstate';
import { z } from 'zod';
import { RestaurantAgent } from './agent.js';

const DAYS = ['today', 'tomorrow', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'] as const;
const TIME = /^([01]\d|2[0-3]):[0-5]\d$/;

// Tools with zod parameters (defineTool): the model sees the JSON Schema made from them, and a call
// whose arguments break it never runs — the model gets `tool_invalid_arguments` with the issues and
// can try again. The stateless tools echo what they understood; the booking is assembled by the
// model from the conversation and sent whole to confirm_booking.

const Day = z.enum(DAYS);
const Time = z.string().regex(TIME, '24-hour time, e.g. 19:30');

const setPartySize = defineTool({
  name: 'set_party_size',
  description: 'Record how many people the table is for.',
  parameters: z.object({ people: z.number().int().min(1).max(20).describe('Number of guests') }).strict(),
  execute: async ({ people }) => ({ people, message: `A table for ${people}.` }),
});

const setDateTime = defineTool({
  name: 'set_date_time',
  description: 'Record the day (a weekday, today or tomorrow) and the time (24-hour HH:MM) of the booking.',
  parameters: z.object({ day: Day, time: Time.describe('24-hour time, e.g. 19:30') }).strict(),
  execute: async ({ day, time }) => {
    const when = `${dayPhrase(day)} at ${time}`;
    return { day, time, message: `${when.charAt(0).toUpperCase()}${when.slice(1)}. Shall I book it?` };
  },
});

const confirmBooking = defineTool({
  name: 'confirm_booking',
  description: 'Book the table once the caller has agreed to the summary.',
  parameters: z.object({ people: z.number().int().min(1).max(20), day: Day, time: Time }).strict(),
  execute: async ({ people, day, time }) => {
    // A real system would write to the reservations book; the code is derived from the booking.
    const code = `TV-${people}${day.slice(0, 3).toUpperCase()}${time.replace(':', '')}`;
    return { confirmation: code, message: `Booked: a table for ${people} ${dayPhrase(day)} at ${time}. Your confirmation code is ${code}.` };
  },
});

/** "today", "tomorrow", "on Saturday". */
function dayPhrase(day: string): string {
  return day === 'today' || day === 'tomorrow' ? day : `on ${day.charAt(0).toUpperCase()}${day.slice(1)}`;
}

export default definePlaybook({
  id: 'restaurant',
  initialStage: 'greet',
  // What callers say here, for the offline recognizer's language model (with the keywords below).
  phrases: [
    "hello i'd like to book a table please",
    'there will be four of us',
    'a table for two people',
    'on saturday',
    'half past seven',
    'at seven thirty in the evening',
    'yes please confirm',
    'can we change the time',
    'thanks bye',
  ],
  globalSystemPrompt:
    'You take table bookings on the phone for Trattoria Voxstate. Speak in one or two short sentences. Never invent details the caller did not give.',
  stages: {
    greet: {
      systemPrompt: 'Greet the caller and find out whether they would like to book a table. If they do, say "Lovely, let\'s find you a table."',
      greeting: 'Trattoria Voxstate, good evening! Would you like to book a table?',
    },
    party: {
      systemPrompt: 'Ask how many people the table is for. As soon as the caller says a number, call set_party_size.',
      tools: [setPartySize],
      greeting: 'For how many people?',
      maxTurns: 3,
    },
    when: {
      systemPrompt: 'Ask for the day and the time. When you know both, call set_date_time with the time in 24-hour form (seven in the evening is 19:00).',
      tools: [setDateTime],
      greeting: 'What day and time would you like?',
    },
    confirm: {
      systemPrompt: 'Read the booking back in one sentence and ask the caller to confirm. When they agree, call confirm_booking with the party size, day and time.',
      tools: [confirmBooking],
    },
    done: {
      systemPrompt: 'The call is over: the booking is made, or was cancelled. Say "Thank you for calling Trattoria Voxstate. Goodbye!"',
      timeoutMs: 20_000,
    },
  },
  transitions: [
    { from: 'greet', to: 'party', condition: { type: 'keyword', keywords: ['book', 'table', 'reservation', 'reserve'] } },
    { from: 'party', to: 'when', condition: { type: 'toolCall', tool: 'set_party_size' } },
    // Three turns without a party size: stop asking and wrap up.
    { from: 'party', to: 'done', condition: { type: 'maxTurns' } },
    { from: 'when', to: 'confirm', condition: { type: 'toolCall', tool: 'set_date_time' } },
    { from: 'confirm', to: 'done', condition: { type: 'toolCall', tool: 'confirm_booking' } },
    { from: 'confirm', to: 'when', condition: { type: 'keyword', keywords: ['change', 'different'] } },
    // "Cancel" wins over anything else that fires in the same turn.
    { from: '*', to: 'done', condition: { type: 'keyword', keywords: ['cancel', 'never mind'] }, priority: 10 },
    { from: 'done', to: 'end', condition: { type: 'keyword', keywords: ['bye', 'goodbye'] } },
    // Hang up when the caller stays silent after the goodbye.
    { from: 'done', to: 'end', condition: { type: 'timeout' } },
  ],
});

/** Plays the LLM when none is configured (see ./agent.ts). */
export const offlineLlm = new RestaurantAgent();
