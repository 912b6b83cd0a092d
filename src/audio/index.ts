export * from './frame.js';
export * from './resampler.js';
export * from './wav.js';
export * from './opus.js';
export * from './playout-clock.js';
export * from './inbound.js';
