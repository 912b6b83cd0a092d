export * from './detector.js';
export * from './lexical.js';
