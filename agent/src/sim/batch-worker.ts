// Worker-thread entry for runBatch(): runs one slice of seeds and posts the summary back.
import { parentPort, workerData } from 'node:worker_threads';
import { runSlice, type BatchSpec } from './batch.ts';

const { spec, from, to } = workerData as { spec: BatchSpec; from: number; to: number };
parentPort?.postMessage(runSlice(spec, from, to));
