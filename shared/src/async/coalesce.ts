/**
 * Wraps an async job so that it never runs twice at once: a call while it runs schedules one more
 * run after it, and every call until that run starts shares it. So each caller gets a run that
 * started after its call (it sees what happened before it), and a burst of N calls costs two runs.
 */
export function coalesce(job: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | null = null;
  let queued: Promise<void> | null = null;
  const start = (): Promise<void> => {
    const run: Promise<void> = job().finally(() => {
      if (running === run) running = null;
    });
    running = run;
    return run;
  };
  return () => {
    if (queued) return queued;
    if (!running) return start();
    return (queued = running.catch(() => undefined).then(() => {
      queued = null;
      return start();
    }));
  };
}
