/**
 * The logger's scrubbing (configured secrets and credential-looking text, in fields, errors and
 * messages) and the client's error messages per code.
 */
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { ProviderError } from '../../src/errors.js';
import { createLogger, scrubbingLogger, SecretScrubber, sessionLogger } from '../../src/observability/logger.js';
import { ERROR_CODES } from '../../src/protocol/error-codes.js';
import { clientErrorMessage, hidesDetail } from '../../src/protocol/error-messages.js';
import { LineCapture } from './capture.js';

const KEY = 'vx-configured-key-0123456789abcdef';

describe('log scrubbing', () => {
  it('createLogger cuts configured secrets and credential-looking text out of every line, message included', () => {
    const capture = new LineCapture();
    const logger = createLogger({ level: 'trace', destination: capture, secrets: [KEY, 'short'] });
    logger.info({ detail: `upstream said ${KEY}`, header: 'Authorization: Bearer abc.def.ghi' }, `message quoting ${KEY}`);
    logger.warn({ url: 'https://user:hunter22@db.internal/x?api_key=123456&page=2', openai: 'sk-proj-ABCDEFGHIJKLMNOP', google: `AIza${'x'.repeat(35)}` }, 'urls');
    logger.child({ component: 'c' }).error({ err: new ProviderError('provider_auth', 'llm', `401 key ${KEY} refused`, { cause: new Error(`cause with ${KEY}`) }) }, 'failed');
    const text = capture.text();
    expect(text).not.toContain(KEY);
    expect(text).not.toContain('abc.def.ghi');
    expect(text).not.toContain('hunter22');
    expect(text).not.toContain('123456');
    expect(text).not.toContain('ABCDEFGHIJKLMNOP');
    expect(text).not.toContain('x'.repeat(35));
    // A configured secret shorter than 8 characters is not cut out of text (it would cut words).
    const [first, second, third] = capture.lines();
    expect(first).toMatchObject({ msg: 'message quoting [redacted]', detail: 'upstream said [redacted]', header: 'Authorization: Bearer [redacted]' });
    expect(second).toMatchObject({ url: 'https://[redacted]@db.internal/x?api_key=[redacted]&page=2', openai: 'sk-[redacted]' });
    expect(third).toMatchObject({ component: 'c', err: { type: 'ProviderError', code: 'provider_auth' } });
    expect(String((third?.['err'] as { message: string }).message)).toContain('401 key [redacted] refused');
  });

  it("scrubbingLogger protects an application's own pino logger: fields, errors and their properties, in session loggers too", () => {
    const capture = new LineCapture();
    const own = pino({ level: 'trace' }, capture);
    const logger = scrubbingLogger(own, new SecretScrubber([KEY]));
    const apiError = Object.assign(new Error('401 Unauthorized'), { error: { message: `Incorrect API key provided: ${KEY}` }, status: 401 });
    logger.warn({ err: apiError, apiKey: 'plain-field-value', nested: { list: [`a ${KEY}`] } }, 'provider failed');
    sessionLogger(logger, 's1', () => ({ turn: 3, state: 'thinking' })).info({ message: `session detail ${KEY}` }, 'session error');
    const text = capture.text();
    expect(text).not.toContain(KEY);
    expect(text).not.toContain('plain-field-value');
    const [first, second] = capture.lines();
    expect(first).toMatchObject({ apiKey: '[redacted]', nested: { list: ['a [redacted]'] }, err: { status: 401, error: { message: 'Incorrect API key provided: [redacted]' } } });
    // The session logger's own formatter (turn, state) and the scrubbing both ran.
    expect(second).toMatchObject({ session: 's1', turn: 3, state: 'thinking', message: 'session detail [redacted]' });
  });
});

describe('client error messages', () => {
  it('provider codes name the kind of provider only; client-input codes keep their message', () => {
    expect(clientErrorMessage('provider_failed', 'Google Cloud: 7 PERMISSION_DENIED for svc@p.iam.gserviceaccount.com', 'stt')).toBe('the speech-to-text provider failed');
    expect(clientErrorMessage('provider_unavailable', 'cannot reach http://10.0.0.3:11434', 'llm')).toBe('the language model provider is unavailable');
    expect(clientErrorMessage('provider_bad_response', 'x', 'tts')).toBe('the text-to-speech provider sent a response that could not be used');
    expect(clientErrorMessage('provider_timeout', 'x')).toBe('a provider did not answer in time');
    expect(clientErrorMessage('internal', 'TypeError: cannot read x of undefined at /srv/app/node_modules/...')).toBe('internal server error');
    expect(clientErrorMessage('protocol_invalid_message', 'type: Required')).toBe('type: Required');
    expect(clientErrorMessage('session_limit', 'at most 3 sessions per address')).toBe('at most 3 sessions per address');
  });

  it('every code on the wire is either generic or written by voxstate about the client', () => {
    const passthrough = ERROR_CODES.filter((code) => !hidesDetail(code));
    for (const code of passthrough) expect(code).toMatch(/^(protocol_|audio_|session_|auth_failed|tool_unknown|tool_invalid_arguments|connection_idle)/);
    for (const code of ERROR_CODES.filter((c) => c.startsWith('provider_'))) expect(hidesDetail(code)).toBe(true);
  });
});
