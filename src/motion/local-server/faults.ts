/**
 * Fault injection for the local Motion Server: the plan a test sets with `setFaults` (or the CLI
 * with `--fault`), and how many more times each counted fault applies.
 */
import { ConfigError } from '../../errors.js';

export interface MotionFaults {
  /** Refuse upgrades with this HTTP status (401 expired, 400 invalid, 404 app/avatar, 402 billing, ...). */
  readonly refuseUpgrade?: { readonly status: number; readonly body?: string; readonly times?: number };
  /** Close the socket with `code` as soon as configure arrives, before any confirm or error. */
  readonly closeBeforeConfirm?: { readonly code: number; readonly reason?: string; readonly times?: number };
  /** Close each connection with `code` once it has sent `frames` animation messages (0: right after confirm). */
  readonly closeAfterFrames?: { readonly frames: number; readonly code: number; readonly reason?: string; readonly times?: number };
  /** Close each connection with `code` this long after its confirm. */
  readonly closeAfterMs?: { readonly ms: number; readonly code: number; readonly reason?: string; readonly times?: number };
  /** Destroy the TCP connection, without a close frame, after `frames` animation messages. */
  readonly dropAfterFrames?: { readonly frames: number; readonly times?: number };
  /** Destroy the TCP connection, without a close frame, this long after its confirm. */
  readonly dropAfterMs?: { readonly ms: number; readonly times?: number };
  /** Answer configure with a SERVER_ERROR of this code instead of a confirm. */
  readonly rejectConfigure?: { readonly code: number; readonly message?: string; readonly times?: number };
  /** Confirm with an empty connection_id (a protocol error clients must catch). */
  readonly emptyConnectionId?: boolean;
  /** Hold the confirm this long. */
  readonly confirmDelayMs?: number;
  /** Hold every animation message this long. */
  readonly frameDelayMs?: number;
  /** The token endpoint answers with this status. */
  readonly tokenStatus?: number;
}

/** Faults that apply a limited number of `times`. */
export type CountedFault =
  | 'refuseUpgrade'
  | 'closeBeforeConfirm'
  | 'closeAfterFrames'
  | 'closeAfterMs'
  | 'dropAfterFrames'
  | 'dropAfterMs'
  | 'rejectConfigure';

const COUNTED: readonly CountedFault[] = [
  'refuseUpgrade',
  'closeBeforeConfirm',
  'closeAfterFrames',
  'closeAfterMs',
  'dropAfterFrames',
  'dropAfterMs',
  'rejectConfigure',
];

/** The close code of `close-before-confirm` when none is given: what a hosted ingress sends when its backend is down. */
export const DEFAULT_CLOSE_BEFORE_CONFIRM_CODE = 4503;

/** The current fault plan, shared by the token endpoint, the upgrade check and the sessions. */
export class FaultPlan {
  #faults: MotionFaults = {};
  /** Remaining applications of each counted fault (Infinity when `times` is not given). */
  readonly #remaining = new Map<keyof MotionFaults, number>();

  /** The plan as set (uncounted faults are read from here). */
  get current(): MotionFaults {
    return this.#faults;
  }

  /** Replaces the fault plan (applies to requests and connections from now on). */
  set(faults: MotionFaults): void {
    this.#faults = { ...faults };
    this.#remaining.clear();
    for (const key of COUNTED) {
      const fault = faults[key];
      if (fault !== undefined) this.#remaining.set(key, fault.times ?? Number.POSITIVE_INFINITY);
    }
  }

  /** Consumes one application of a counted fault. */
  take<K extends CountedFault>(key: K): MotionFaults[K] | undefined {
    const fault = this.#faults[key];
    const left = this.#remaining.get(key) ?? 0;
    if (fault === undefined || left <= 0) return undefined;
    this.#remaining.set(key, left - 1);
    return fault;
  }
}

// ---- `--fault` on the command line ------------------------------------------------------------

/** One line per fault for the CLI's usage text (kept here, beside the parser, so the two agree). */
export const FAULT_USAGE = `Faults (--fault <spec>, repeatable). Those marked * are counted: add ",times=<n>" to apply
them to the first n connections only; without it, and for the others, a fault applies to every one.
  * refuse-upgrade=<status>          refuse the WebSocket upgrade with this HTTP status
  * close-before-confirm[=<code>]    close the socket when configure arrives, before any confirm
                                     (default code ${DEFAULT_CLOSE_BEFORE_CONFIRM_CODE})
  * close-after=<n|duration>:<code>  close with <code> after n animation messages, or this long
                                     after the confirm (e.g. 2s, 500ms)
  * drop-after=<n|duration>          destroy the TCP connection (no close frame) after n animation
                                     messages, or this long after the confirm
  * reject-configure=<code>          answer configure with a SERVER_ERROR of this code
    empty-connection-id              confirm with an empty connection_id
    confirm-delay=<duration>         hold the confirm this long
    frame-delay=<duration>           hold every animation message this long
    token-status=<status>            the token endpoint answers with this HTTP status
  A duration is <n>ms or <n>s; for confirm-delay and frame-delay a bare number means ms.`;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function faultError(spec: string, problem: string): ConfigError {
  return new ConfigError('--fault', `${JSON.stringify(spec)}: ${problem}`);
}

function wholeNumber(spec: string, what: string, text: string | undefined, min = 0): number {
  if (text === undefined || !/^\d+$/.test(text)) throw faultError(spec, `${what} must be a whole number, got ${JSON.stringify(text ?? '')}`);
  const value = Number(text);
  if (value < min) throw faultError(spec, `${what} must be at least ${min}`);
  return value;
}

/** `500ms`, `2s`, `1.5s`; a bare number is milliseconds when `bare` is 'ms'. */
function duration(spec: string, text: string | undefined, bare: 'ms' | 'none'): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(text ?? '');
  if (match === null) throw faultError(spec, `expected a duration like 500ms or 2s, got ${JSON.stringify(text ?? '')}`);
  const amount = Number(match[1]);
  const unit = match[2];
  if (unit === undefined) return bare === 'ms' ? Math.round(amount) : undefined;
  return Math.round(unit === 's' ? amount * 1000 : amount);
}

function httpStatus(spec: string, text: string | undefined): number {
  const status = wholeNumber(spec, 'the HTTP status', text);
  if (status < 100 || status > 599) throw faultError(spec, 'the HTTP status must be in 100–599');
  return status;
}

function closeCode(spec: string, text: string | undefined): number {
  const code = wholeNumber(spec, 'the close code', text);
  // 1005/1006/1015 are reserved: they describe a close, they cannot be sent in one.
  if (!((code >= 1000 && code <= 1014 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999))) {
    throw faultError(spec, `close code ${code} cannot be sent (use 1000–1014 or 3000–4999; drop-after simulates 1006)`);
  }
  return code;
}

/**
 * Parses the CLI's `--fault` values into a fault plan. Each value is `name[=argument][,times=<n>]`
 * (see FAULT_USAGE). A name given twice, an unknown name or a bad argument is a ConfigError
 * naming `--fault` and the value.
 */
export function parseFaultFlags(values: readonly string[]): MotionFaults {
  const plan: Mutable<MotionFaults> = {};
  const seen = new Set<string>();
  for (const spec of values) {
    const [head = '', ...options] = spec.split(',');
    const equals = head.indexOf('=');
    const name = (equals < 0 ? head : head.slice(0, equals)).trim();
    const argument = equals < 0 ? undefined : head.slice(equals + 1).trim();
    let times: number | undefined;
    for (const option of options) {
      const [key, value] = option.split('=');
      if (key?.trim() !== 'times') throw faultError(spec, `unknown option ${JSON.stringify(option)} (only times=<n>)`);
      times = wholeNumber(spec, 'times', value?.trim(), 1);
    }
    if (seen.has(name)) throw faultError(spec, `the ${name} fault is given twice`);
    seen.add(name);
    const counted = times === undefined ? {} : { times };
    const needs = (what: string): string => {
      if (argument === undefined || argument === '') throw faultError(spec, `${name} needs ${what}`);
      return argument;
    };
    const uncounted = (): void => {
      if (times !== undefined) throw faultError(spec, `${name} applies to every connection; it takes no times=`);
    };
    switch (name) {
      case 'refuse-upgrade':
        plan.refuseUpgrade = { status: httpStatus(spec, needs('an HTTP status')), ...counted };
        break;
      case 'close-before-confirm':
        plan.closeBeforeConfirm = {
          code: argument === undefined || argument === '' ? DEFAULT_CLOSE_BEFORE_CONFIRM_CODE : closeCode(spec, argument),
          reason: 'fault injection: closed before confirm',
          ...counted,
        };
        break;
      case 'close-after': {
        const [when, code] = needs('<n|duration>:<code>').split(':');
        const ms = duration(spec, when, 'none');
        const fault = { code: closeCode(spec, code), reason: 'fault injection', ...counted };
        if (ms === undefined) plan.closeAfterFrames = { frames: wholeNumber(spec, 'the message count', when), ...fault };
        else plan.closeAfterMs = { ms, ...fault };
        break;
      }
      case 'drop-after': {
        const when = needs('<n|duration>');
        const ms = duration(spec, when, 'none');
        if (ms === undefined) plan.dropAfterFrames = { frames: wholeNumber(spec, 'the message count', when), ...counted };
        else plan.dropAfterMs = { ms, ...counted };
        break;
      }
      case 'reject-configure':
        plan.rejectConfigure = { code: wholeNumber(spec, 'the ServerError code', needs('a ServerError code')), ...counted };
        break;
      case 'empty-connection-id':
        uncounted();
        if (argument !== undefined) throw faultError(spec, 'empty-connection-id takes no argument');
        plan.emptyConnectionId = true;
        break;
      case 'confirm-delay':
        uncounted();
        plan.confirmDelayMs = duration(spec, needs('a duration'), 'ms');
        break;
      case 'frame-delay':
        uncounted();
        plan.frameDelayMs = duration(spec, needs('a duration'), 'ms');
        break;
      case 'token-status':
        uncounted();
        plan.tokenStatus = httpStatus(spec, needs('an HTTP status'));
        break;
      default:
        throw faultError(
          spec,
          `unknown fault ${JSON.stringify(name)}; one of refuse-upgrade, close-before-confirm, close-after, drop-after, reject-configure, empty-connection-id, confirm-delay, frame-delay, token-status`,
        );
    }
  }
  return plan;
}
