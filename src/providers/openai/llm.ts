import type OpenAI from 'openai';
import type {
  ChatCompletionChunk,
  ChatCompletionCreateParamsStreaming,
  ChatCompletionMessageParam,
  ChatCompletionTool,
} from 'openai/resources/chat/completions';
import { ProviderError } from '../../errors.js';
import type { ChatMessage, LlmEvent, LlmProvider, LlmRequest, ToolCall, ToolSpec } from '../types.js';
import { linkedController, throwIfAborted } from '../local/streams.js';
import { createOpenAiClient, isOfficialOpenAi, mapOpenAiError, type OpenAiClientOptions } from './client.js';

export interface OpenAiLlmOptions extends OpenAiClientOptions {
  /** Default `gpt-4o-mini` (for Ollama and the like: the local model's name). */
  readonly model?: string;
  readonly temperature?: number;
  /** Sent as `max_completion_tokens` to OpenAI and `max_tokens` to compatible servers. */
  readonly maxTokens?: number;
  /** Let the model call several tools in one turn. Default: the server's default. */
  readonly parallelToolCalls?: boolean;
  /** Ask for a usage chunk (`stream_options.include_usage`). Default true; some old servers reject it. */
  readonly includeUsage?: boolean;
  /** Reported as the provider's `name`. Default `openai:<model>`. */
  readonly name?: string;
}

/** Chat completions over SSE: text deltas, complete tool calls, then usage. */
export class OpenAiLlm implements LlmProvider {
  readonly name: string;
  readonly model: string;
  readonly #client: OpenAI;
  readonly #options: OpenAiLlmOptions;

  constructor(options: OpenAiLlmOptions = {}) {
    this.#client = createOpenAiClient(options);
    this.#options = options;
    this.model = options.model ?? 'gpt-4o-mini';
    this.name = options.name ?? `openai:${this.model}`;
  }

  stream(request: LlmRequest): AsyncIterable<LlmEvent> {
    return this.#stream(request);
  }

  async *#stream(request: LlmRequest): AsyncGenerator<LlmEvent> {
    throwIfAborted(request.signal, 'llm');
    const { controller, dispose } = linkedController(request.signal);
    const params = this.#params(request);
    const toolCalls = new ToolCallAccumulator();
    try {
      const stream = await this.#client.chat.completions.create(params, { signal: controller.signal });
      for await (const chunk of stream) {
        if (!isChunk(chunk)) throw new ProviderError('provider_bad_response', 'llm', 'malformed chat completion chunk (no choices array)');
        for (const choice of chunk.choices) {
          const delta = choice.delta as ChatCompletionChunk.Choice.Delta | undefined;
          if (delta?.content) yield { type: 'text', text: delta.content };
          for (const part of delta?.tool_calls ?? []) toolCalls.add(part);
          if (choice.finish_reason) for (const call of toolCalls.flush()) yield { type: 'tool_call', call };
        }
        if (chunk.usage)
          yield {
            type: 'usage',
            usage: { inputTokens: chunk.usage.prompt_tokens ?? 0, outputTokens: chunk.usage.completion_tokens ?? 0 },
          };
      }
      // The SDK ends its iterator quietly when the request is aborted: say so instead.
      throwIfAborted(request.signal, 'llm');
      // Some compatible servers end the stream without a finish_reason.
      for (const call of toolCalls.flush()) yield { type: 'tool_call', call };
    } catch (error) {
      throw mapOpenAiError(error, 'llm', request.signal);
    } finally {
      controller.abort(); // closes the HTTP response if the caller stopped early
      dispose();
    }
  }

  #params(request: LlmRequest): ChatCompletionCreateParamsStreaming {
    const o = this.#options;
    const official = isOfficialOpenAi(this.#client);
    const tools = request.tools?.length ? request.tools.map(toOpenAiTool) : undefined;
    const temperature = request.temperature ?? o.temperature;
    const maxTokens = request.maxTokens ?? o.maxTokens;
    const choice = request.toolChoice;
    return {
      model: request.model ?? this.model,
      messages: request.messages.map(toOpenAiMessage),
      stream: true,
      ...(o.includeUsage === false ? {} : { stream_options: { include_usage: true } }),
      ...(tools ? { tools } : {}),
      ...(tools && o.parallelToolCalls !== undefined ? { parallel_tool_calls: o.parallelToolCalls } : {}),
      ...(tools && choice !== undefined ? { tool_choice: typeof choice === 'string' ? choice : { type: 'function' as const, function: { name: choice.name } } } : {}),
      ...(temperature === undefined ? {} : { temperature }),
      ...(maxTokens === undefined ? {} : official ? { max_completion_tokens: maxTokens } : { max_tokens: maxTokens }),
    };
  }
}

function isChunk(value: unknown): value is ChatCompletionChunk {
  return typeof value === 'object' && value !== null && Array.isArray((value as { choices?: unknown }).choices);
}

/** Provider-neutral message → the chat completions shape. */
export function toOpenAiMessage(message: ChatMessage): ChatCompletionMessageParam {
  switch (message.role) {
    case 'system':
      return { role: 'system', content: message.content };
    case 'user':
      return { role: 'user', content: message.content };
    case 'assistant':
      if (message.toolCalls?.length)
        return {
          role: 'assistant',
          content: message.content === '' ? null : message.content,
          tool_calls: message.toolCalls.map((call) => ({
            id: call.id,
            type: 'function' as const,
            function: { name: call.name, arguments: call.arguments },
          })),
        };
      return { role: 'assistant', content: message.content };
    case 'tool':
      return { role: 'tool', tool_call_id: message.toolCallId, content: message.content };
  }
}

export function toOpenAiTool(tool: ToolSpec): ChatCompletionTool {
  return {
    type: 'function',
    function: { name: tool.name, description: tool.description, parameters: { ...tool.parameters } },
  };
}

type ToolCallDelta = NonNullable<ChatCompletionChunk.Choice.Delta['tool_calls']>[number];

/**
 * Tool calls arrive as deltas keyed by `index`: the first carries id and name, later ones append
 * to the arguments string. Parallel calls interleave. `flush()` hands them out complete, in order.
 */
class ToolCallAccumulator {
  readonly #calls = new Map<number, { id: string; name: string; arguments: string }>();

  add(delta: ToolCallDelta): void {
    // Servers that send whole calls sometimes omit `index`: each such delta is a new call.
    const index = typeof delta.index === 'number' ? delta.index : 1_000_000 + this.#calls.size;
    let call = this.#calls.get(index);
    if (!call) {
      call = { id: '', name: '', arguments: '' };
      this.#calls.set(index, call);
    }
    if (delta.id) call.id = delta.id;
    // OpenAI sends the name once; some compatible servers repeat it in every delta.
    const name = delta.function?.name;
    if (name && name !== call.name) call.name += name;
    if (delta.function?.arguments) call.arguments += delta.function.arguments;
  }

  flush(): ToolCall[] {
    const calls = [...this.#calls.entries()].sort(([a], [b]) => a - b);
    this.#calls.clear();
    return calls.map(([index, call]) => {
      if (call.name === '')
        throw new ProviderError('provider_bad_response', 'llm', `tool call #${index} arrived without a function name`);
      return { id: call.id || `call_${index}`, name: call.name, arguments: call.arguments === '' ? '{}' : call.arguments };
    });
  }
}
