// Server-sent events: every logged-in browser gets the live cluster status and "something
// changed" notices. A comment line every 15 s keeps proxies and dead-peer detection honest.
import type { Request, Response } from "express";

type Client = { res: Response; sessionId: string };

export class SseHub {
  private readonly clients = new Set<Client>();
  private readonly ping: NodeJS.Timeout;
  private seq = 0;

  /** `alive(sessionId)`: is the stream's session still valid? Streams of ended sessions are closed at the next ping. */
  constructor(
    pingMs = 15_000,
    private readonly alive: (sessionId: string) => boolean = () => true,
  ) {
    this.ping = setInterval(() => {
      for (const c of [...this.clients]) if (!this.alive(c.sessionId)) (this.clients.delete(c), c.res.end());
      this.write(": ping\n\n");
    }, pingMs);
    this.ping.unref();
  }

  get size() {
    return this.clients.size;
  }

  /** Opens a stream; `initial` events are sent first. */
  open(req: Request, res: Response, sessionId: string, initial: Array<[string, unknown]>) {
    res.status(200).set({
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-cache, no-transform",
      Connection: "keep-alive",
      "X-Accel-Buffering": "no",
    });
    res.flushHeaders();
    res.write("retry: 1000\n\n");
    const client: Client = { res, sessionId };
    this.clients.add(client);
    for (const [event, data] of initial) res.write(this.frame(event, data));
    req.on("close", () => this.clients.delete(client));
  }

  broadcast(event: string, data: unknown) {
    this.write(this.frame(event, data));
  }

  /** Ends the streams of one session (logout) or of all (shutdown). */
  close(sessionId?: string) {
    for (const c of [...this.clients]) {
      if (sessionId !== undefined && c.sessionId !== sessionId) continue;
      this.clients.delete(c);
      c.res.end();
    }
    if (sessionId === undefined) clearInterval(this.ping);
  }

  private frame(event: string, data: unknown) {
    return `id: ${++this.seq}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
  }

  private write(chunk: string) {
    for (const c of this.clients) c.res.write(chunk);
  }
}
