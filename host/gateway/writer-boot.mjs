// Starts the writer thread from TypeScript sources (tests and the benchmark run under tsx):
// Node 20 cannot start a worker from a .ts file, even when the main thread runs under tsx, so
// this worker registers tsx's loader for itself and imports the real body. From the build,
// writer.ts starts writer-worker.js directly and this file is not used.
import { register } from 'tsx/esm/api';

register();
await import('./writer-worker.ts');
