// Tools: zod-checked local tools, MCP tools, and how one call is run (docs/tools.md). Re-exports only.
export { defineTool, toolJsonSchema, type DefinedTool, type ToolDefinition, type ToolParameters } from './define.js';
export { DEFAULT_MCP_TIMEOUT_MS, mcpTools, McpToolset, type McpHttpServer, type McpStdioServer, type McpToolsOptions, type McpToolsSettings } from './mcp.js';
export { checkJsonSchema } from './json-schema.js';
export { runToolCall, type RunToolCallOptions, type TimerClock, type ToolErrorCode, type ToolErrorContent } from './run.js';
