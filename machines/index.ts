export * from './session.js';
export * from './reply.js';
export * from './segments.js';
