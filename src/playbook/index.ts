// Playbooks: multi-stage conversations as data (docs/playbooks.md). Re-exports only.
export type * from './types.js';
export { definePlaybook, validatePlaybook, transitionsFrom, playbookIssuesOf, formatPlaybookIssue, isPlaybookOfThisLibrary, type PlaybookIssue, type PlaybookIssueCode, type StageTransition } from './define.js';
export { playbookGraph, conditionLabel, type PlaybookGraphOptions } from './graph.js';
export { loadPlaybookModule, importPlaybookDefinition, loadOfflineLlm } from './load.js';
