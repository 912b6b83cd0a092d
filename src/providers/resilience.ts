export * from './resilience/index.js';
