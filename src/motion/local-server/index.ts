export {
  LocalMotionServer,
  CONSOLE_PATH,
  INGRESS_PATH,
  type LocalMotionServerInfo,
  type LocalMotionServerOptions,
  type LocalMotionServerRetained,
  type LocalMotionServerStats,
  type MotionFaults,
} from './server.js';
export { MotionAnimator, MOTION_FPS, type AnimatorOptions } from './animator.js';
export { runMotionServer, MOTION_SERVER_USAGE, type RunMotionServerOptions, type RunningMotionServer } from './run.js';
export { parseFaultFlags, FAULT_USAGE } from './faults.js';
