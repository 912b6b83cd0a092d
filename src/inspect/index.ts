export { edgeLabel, guardLabel, machineMermaid, statechartMermaid, statechartOf, type Statechart, type StatechartEdge, type StatechartNode, type StatechartNodeType } from './statechart.js';
export { DEFAULT_INSPECT_OPTIONS, INSPECT_PATH, INSPECT_STREAM_PATH, type InspectOption, type InspectOptions } from './inspector.js';
export {
  INSPECT_PROTOCOL_VERSION,
  WATCH_ALL,
  parseInspectClientMessage,
  type ActorSummary,
  type InspectClientMessage,
  type InspectServerMessage,
  type LogEntry,
  type SessionSummary,
  type TranscriptLine,
} from './protocol.js';
