/**
 * A custom provider: anything that implements the streaming, AbortSignal-aware contracts of
 * src/providers/types.ts plugs in. Here an LLM that answers from a FAQ, streamed word by word, and
 * the whole session run in virtual time with the simulation harness to check how it behaves when
 * the user interrupts it — the way you would unit-test your own agent.
 *
 *   npx tsx examples/custom-provider.ts
 */
// In your app: import type { LlmProvider, ... } from 'voxstate'; import { Simulation } from 'voxstate/testing';
import type { LlmEvent, LlmProvider, LlmRequest } from '../src/providers/types.js';
import { Simulation } from '../src/testing/index.js';

const FAQ: [RegExp, string][] = [
  [/open|hours/i, 'We are open from noon to eleven, every day except Monday.'],
  [/park/i, 'There is free parking behind the building, and the entrance is on the left side.'],
];

class FaqLlm implements LlmProvider {
  readonly name = 'faq';

  async *stream(request: LlmRequest): AsyncIterable<LlmEvent> {
    const question = [...request.messages].reverse().find((m) => m.role === 'user')?.content ?? '';
    const answer = FAQ.find(([pattern]) => pattern.test(question))?.[1] ?? 'Sorry, I only know our hours and parking.';
    for (const word of answer.split(' ')) {
      // Stop generating the moment the reply is cancelled (barge-in): no wasted work.
      if (request.signal.aborted) return;
      yield { type: 'text', text: `${word} ` };
    }
  }
}

// Our LLM with the simulation's fake STT and TTS (200 ms of speech per word), in virtual time.
const sim = new Simulation({ providers: { llm: new FaqLlm() }, session: { minInterruptionMs: 300 } }).start();
sim.type('When are you open?');
await sim.advance(10_000);
sim.type('Where can I park?');
await sim.advance(1_200); // the answer is being spoken…
await sim.say('thanks, got it', 600); // …and the user talks over it
await sim.advance(10_000);
for (const message of sim.history) console.log(`${message.role.padEnd(9)} ${message.content}${'interrupted' in message && message.interrupted ? '  [cut off]' : ''}`);
