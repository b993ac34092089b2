// Runs inside a lab node: polls a URL and prints a JSON line whenever the answer changes, with the
// time. Used by tests and benchmarks to see when the panel moved (the root namespace has no route).
//   node --import tsx lab/src/http-watch.ts http://172.31.224.100:1500/api/health [intervalMs] [more URLs...]
// With several URLs each line also carries its `url`.
const [first, every, ...more] = process.argv.slice(2);
if (!first) {
  console.error("usage: http-watch URL [intervalMs] [URL...]");
  process.exit(2);
}
const urls = [first, ...more];
const intervalMs = Number(every ?? 50);
const last = new Map<string, string>();
async function poll(url: string) {
  let state: string;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(Math.max(200, intervalMs * 4)) });
    state = `${res.status} ${await res.text()}`;
  } catch (err) {
    state = `down ${(err as Error).name}`;
  }
  if (state !== last.get(url)) {
    last.set(url, state);
    process.stdout.write(JSON.stringify({ type: "http", t: Date.now(), state, ...(urls.length > 1 ? { url } : {}) }) + "\n");
  }
  setTimeout(() => void poll(url), intervalMs);
}
for (const url of urls) void poll(url);
process.stdin.on("end", () => process.exit(0)).resume();
