/**
 * Provider contracts. Every call is streaming where the underlying service allows it and takes an
 * AbortSignal: aborting must stop the network work (barge-in must not keep paying for tokens).
 * Providers know nothing of sessions; they turn audio into text, text into text, text into audio.
 */

/** Mono Float32 PCM in [-1, 1]. STT input is always 16 kHz mono (what the VAD produces). */
export interface PcmFloat {
  readonly samples: Float32Array;
  readonly sampleRate: number;
}

export interface ToolCall {
  /** Provider-assigned id that links the call to its result. */
  readonly id: string;
  readonly name: string;
  /** The arguments as the model produced them: a JSON string. */
  readonly arguments: string;
}

/** Conversation messages in a provider-neutral shape (OpenAI-like). */
export type ChatMessage =
  | { readonly role: 'system'; readonly content: string }
  | { readonly role: 'user'; readonly content: string }
  | {
      readonly role: 'assistant';
      readonly content: string;
      readonly toolCalls?: readonly ToolCall[];
      /** True when the user cut the reply off; `content` is what was actually played. */
      readonly interrupted?: boolean;
    }
  | { readonly role: 'tool'; readonly toolCallId: string; readonly name: string; readonly content: string };

/** What the model sees of a tool. `parameters` is a JSON Schema object. */
export interface ToolSpec {
  readonly name: string;
  readonly description: string;
  readonly parameters: Readonly<Record<string, unknown>>;
}

export interface ToolContext {
  /** Aborts when the call is cancelled (a barge-in, for tools with `cancelOnInterrupt`) or times out. */
  readonly signal: AbortSignal;
  /** In a playbook session: the stage the call runs in. */
  readonly stage?: ToolStageContext;
}

/** The playbook stage a tool call runs in (docs/playbooks.md, "Stage data"). */
export interface ToolStageContext {
  readonly id: string;
  /** The stage's data when the round of calls started. */
  readonly data: unknown;
  /**
   * Replaces the stage's data (a structured clone is kept; data that cannot be cloned throws a
   * TypeError here). It goes into the session record: a resume restores it.
   */
  setData(data: unknown): void;
}

/** One reason a tool's arguments were refused: where in the arguments (`[]` for the whole) and why. */
export interface ToolIssue {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/** What a tool's `validate` decides: the arguments to execute with, or why they are refused. */
export type ToolValidation<T = unknown> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly issues: readonly ToolIssue[] };

/**
 * A tool the agent may call. The result is serialized to JSON (strings are passed as they are).
 * Only `execute` is required; the optional fields are honoured by the tools actor (docs/tools.md),
 * and `defineTool` (src/tools/define.ts) fills them from a zod schema.
 */
export interface Tool extends ToolSpec {
  /** Runs the call. With `validate`, `args` is the `value` it returned; otherwise the parsed JSON. */
  execute(args: unknown, context: ToolContext): Promise<unknown>;
  /** Checks the parsed arguments before `execute`; refused arguments go back to the model as a `tool_invalid_arguments` result. */
  validate?(args: unknown): ToolValidation | Promise<ToolValidation>;
  /** How long a call may run before it is aborted and reported as timed out. Default: the tools actor's (none). */
  readonly timeoutMs?: number;
  /**
   * False: cancelling the reply (barge-in, a new turn, the session closing) does not abort a call
   * that has started; it runs to completion (or its timeout) and its result is discarded. Default true.
   */
  readonly cancelOnInterrupt?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Speech to text

export interface SttOptions {
  readonly signal: AbortSignal;
  readonly language?: string;
}

export interface Transcript {
  readonly text: string;
  /** False for interim hypotheses of a streaming recognizer. */
  readonly final: boolean;
  readonly confidence?: number;
}

export interface SttProvider {
  readonly name: string;
  /** Transcribe one finished utterance (16 kHz mono). */
  transcribe(audio: PcmFloat, options: SttOptions): Promise<Transcript>;
  /**
   * Optional streaming recognition of one user turn: audio chunks (16 kHz mono) in, from the onset
   * (with the VAD's prefix padding) until the session decides the turn has ended; results out.
   * Each result is about the segment in progress: interim hypotheses (`final: false`) replace one
   * another, a `final: true` result closes the segment and the next result starts a new one. The
   * session joins the final segments (and the interim tail) into the turn's text. The iterable ends
   * after the last final result once the audio iterable has ended.
   */
  stream?(audio: AsyncIterable<Float32Array>, options: SttStreamOptions): AsyncIterable<Transcript>;
}

export interface SttStreamOptions extends SttOptions {
  /**
   * Registers a listener the session calls at each pause inside the turn (`vad.speechPause`: the
   * user has been silent for `pauseMs`). A recognizer that only finishes a segment on silence it
   * detects itself (pocketsphinx) can finish the segment at once, so the end-of-turn decision has
   * the text sooner. Recognizers that stream words may ignore it.
   */
  readonly onPause?: (listener: () => void) => void;
}

// ---------------------------------------------------------------------------------------------
// Language model

export interface LlmRequest {
  readonly messages: readonly ChatMessage[];
  readonly tools?: readonly ToolSpec[];
  readonly signal: AbortSignal;
  /** Per-request settings (a playbook stage's); the provider's own options where absent. */
  readonly model?: string;
  readonly temperature?: number;
  readonly maxTokens?: number;
  /** Whether (and which) tools the model must call: `auto` (default), `required`, `none`, or one tool by name. */
  readonly toolChoice?: 'auto' | 'required' | 'none' | { readonly name: string };
}

export interface LlmUsage {
  readonly inputTokens: number;
  readonly outputTokens: number;
}

export type LlmEvent =
  | { readonly type: 'text'; readonly text: string }
  | { readonly type: 'tool_call'; readonly call: ToolCall }
  | { readonly type: 'usage'; readonly usage: LlmUsage };

export interface LlmProvider {
  readonly name: string;
  /** Streams one completion. Tool calls are yielded complete (arguments fully accumulated). */
  stream(request: LlmRequest): AsyncIterable<LlmEvent>;
}

// ---------------------------------------------------------------------------------------------
// Text to speech

export interface WordTiming {
  readonly word: string;
  /** Offsets in ms from the start of this synthesize() call's audio. */
  readonly startMs: number;
  readonly endMs: number;
}

export interface TtsChunk {
  /** Mono PCM16 at `sampleRate`, the provider's true rate (never assumed by the caller). */
  readonly pcm: Int16Array;
  readonly sampleRate: number;
  /** Word timings when the provider knows them; otherwise the runtime estimates them. */
  readonly words?: readonly WordTiming[];
}

export interface TtsOptions {
  readonly signal: AbortSignal;
  readonly voice?: string;
}

export interface TtsProvider {
  readonly name: string;
  synthesize(text: string, options: TtsOptions): AsyncIterable<TtsChunk>;
}

export interface Providers {
  readonly stt: SttProvider;
  readonly llm: LlmProvider;
  readonly tts: TtsProvider;
}
