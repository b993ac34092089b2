// Runs inside a lab node: polls a URL and prints a JSON line whenever the answer changes, with the
// time. Used by tests and benchmarks to see when the panel moved (the root namespace has no route).
//   node --import tsx lab/src/http-watch.ts http://172.31.224.100:1500/api/health [intervalMs]
const [url, every] = process.argv.slice(2);
if (!url) {
  console.error("usage: http-watch URL [intervalMs]");
  process.exit(2);
}
const intervalMs = Number(every ?? 50);
let last = "";
async function poll() {
  let state: string;
  try {
    const res = await fetch(url!, { signal: AbortSignal.timeout(Math.max(200, intervalMs * 4)) });
    state = `${res.status} ${await res.text()}`;
  } catch (err) {
    state = `down ${(err as Error).name}`;
  }
  if (state !== last) {
    last = state;
    process.stdout.write(JSON.stringify({ type: "http", t: Date.now(), state }) + "\n");
  }
  setTimeout(poll, intervalMs);
}
void poll();
process.stdin.on("end", () => process.exit(0)).resume();
