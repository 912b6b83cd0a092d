export { VirtualClock, drainMicrotasks } from './virtual-clock.js';
export { Simulation, defaultRespond, type SimRecord, type SimulationOptions } from './simulation.js';
