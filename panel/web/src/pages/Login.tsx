import { useEffect, useState, type FormEvent } from "react";
import { ApiError, get, post, type Me } from "../api.ts";

/** While the cluster database is away (503, e.g. being promoted after a failover), retry this many times. */
const DB_RETRIES = 15;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function LoginPage({ onLogin }: { onLogin: (me: Me) => void }) {
  const [setup, setSetup] = useState(false);
  const [error, setError] = useState<{ msg: string; field?: string } | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    document.title = "Log in · corolistener";
    get<{ needed: boolean }>("/api/setup").then((s) => setSetup(s.needed), () => undefined);
  }, []);
  const submit = async (ev: FormEvent<HTMLFormElement>) => {
    ev.preventDefault();
    const f = new FormData(ev.currentTarget);
    const body: Record<string, string> = { username: String(f.get("username") ?? ""), password: String(f.get("password") ?? "") };
    if (setup) body.token = String(f.get("token") ?? "");
    setBusy(true);
    setError(null);
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          return onLogin(await post<Me>(setup ? "/api/setup" : "/api/login", body));
        } catch (e) {
          if (!(e instanceof ApiError && e.status === 503 && attempt < DB_RETRIES)) throw e;
          setError({ msg: `Database unavailable, retrying… (${e.message})` });
          await sleep((e.retryAfterS ?? 2) * 1000);
        }
      }
    } catch (e) {
      setError(e instanceof ApiError ? { msg: e.message, field: e.field } : { msg: String(e) });
    } finally {
      setBusy(false);
    }
  };
  return (
    <main className="login" id="main">
      <h1>corolistener</h1>
      <form onSubmit={submit} aria-describedby={error ? "login-error" : undefined}>
        <h2>{setup ? "Create the admin account" : "Log in"}</h2>
        {setup && (
          <>
            <p className="hint">No users exist yet. The one-time setup token is printed in the panel's log on the master.</p>
            <label>
              Setup token
              <input name="token" autoComplete="off" required aria-invalid={error?.field === "token"} />
            </label>
          </>
        )}
        <label>
          Username
          <input name="username" autoComplete="username" required autoFocus aria-invalid={error?.field === "username"} />
        </label>
        <label>
          Password
          <input name="password" type="password" autoComplete={setup ? "new-password" : "current-password"} required minLength={setup ? 12 : 1} aria-invalid={error?.field === "password"} />
        </label>
        {error && (
          <p className="error" id="login-error" role="alert">
            {error.msg}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {setup ? "Create admin" : "Log in"}
        </button>
      </form>
    </main>
  );
}
