export * from './session.js';
export * from './reply.js';
export * from './segments.js';
export * from './history.js';
export * from './words.js';
