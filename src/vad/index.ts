export * from './model.js';
export * from './config.js';
export * from './shared-vad.js';
export * from './speech-detector.js';
export * from './vad-stream.js';
export * from './actor.js';
