// The panel's TLS certificate: the admin's own (PANEL_TLS_CERT + PANEL_TLS_KEY), or, with
// PANEL_TLS=auto, a self-signed one made once with the `openssl` CLI (Debian's openssl package; no
// npm crypto library needed) and reused on later starts.
//  - Stored in PANEL_TLS_DIR (cert.pem 0644, key.pem 0600; the directory 0700). Put that directory
//    in the replicated file set so every node presents the same certificate after a failover
//    (otherwise a browser sees a new certificate warning after each failover).
//  - Its subjectAltName covers the cluster IP (PANEL_HOST), the node's name and PANEL_TLS_SAN; a
//    stored certificate that does not cover them (the cluster IP changed) is replaced.
//  - Made before the standby panel waits for activation, so it never delays a failover.
import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export type TlsMaterial = { cert: Buffer; key: Buffer; source: "provided" | "self-signed"; certPath: string; keyPath: string };

/** Pure: the names a self-signed certificate must cover, in openssl's subjectAltName syntax. */
export function wantedSans(host: string, extra: string[]): string[] {
  const names = [host, ...extra].map((n) => n.trim()).filter((n) => n !== "" && n !== "0.0.0.0" && n !== "::");
  const sans = names.map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`));
  return [...new Set(sans)];
}

/** Pure: does `certSan` (X509Certificate.subjectAltName, e.g. "IP Address:10.0.0.1, DNS:n1") cover every wanted entry? */
export function sansCovered(certSan: string | undefined, wanted: string[]): boolean {
  const have = new Set((certSan ?? "").split(",").map((s) => s.trim().replace(/^IP Address:/, "IP:")));
  return wanted.every((w) => have.has(w));
}

/** The self-signed certificate in `dir`, made (or remade, if it misses a name) when needed. */
export async function ensureSelfSigned(dir: string, sans: string[], commonName: string): Promise<{ certPath: string; keyPath: string; generated: boolean }> {
  const certPath = join(dir, "cert.pem");
  const keyPath = join(dir, "key.pem");
  if (existsSync(certPath) && existsSync(keyPath)) {
    try {
      const cert = new X509Certificate(readFileSync(certPath));
      const fresh = Date.parse(cert.validTo) > Date.now() + 30 * 86400_000;
      if (fresh && sansCovered(cert.subjectAltName, sans)) return { certPath, keyPath, generated: false };
    } catch {
      // unreadable or not a certificate: made again below
    }
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmpCert = `${certPath}.${process.pid}.tmp`;
  const tmpKey = `${keyPath}.${process.pid}.tmp`;
  try {
    const args = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "3650",
      "-subj", `/O=corolistener panel/CN=${commonName.replace(/[/=]/g, "_")}`, "-keyout", tmpKey, "-out", tmpCert];
    if (sans.length) args.push("-addext", `subjectAltName=${sans.join(",")}`);
    await run("openssl", args, { timeout: 20_000 }).catch((err: Error & { stderr?: string }) => {
      throw new Error(`cannot make a self-signed certificate with openssl (is the openssl package installed?): ${err.stderr?.trim() || err.message}`);
    });
    chmodSync(tmpKey, 0o600);
    chmodSync(tmpCert, 0o644);
    // Key first: a reader that sees the new certificate also finds its key.
    renameSync(tmpKey, keyPath);
    renameSync(tmpCert, certPath);
  } finally {
    rmSync(tmpCert, { force: true });
    rmSync(tmpKey, { force: true });
  }
  return { certPath, keyPath, generated: true };
}

export type TlsSettings = {
  PANEL_TLS: "off" | "auto";
  PANEL_TLS_CERT?: string;
  PANEL_TLS_KEY?: string;
  PANEL_TLS_DIR: string;
  PANEL_TLS_SAN: string[];
  PANEL_HOST: string;
  PANEL_NODE: string;
};

/** What the panel serves with: null = plain HTTP. */
export async function resolveTls(e: TlsSettings, log: { info: (o: object, m: string) => void }): Promise<TlsMaterial | null> {
  if (e.PANEL_TLS_CERT && e.PANEL_TLS_KEY) {
    return { cert: readFileSync(e.PANEL_TLS_CERT), key: readFileSync(e.PANEL_TLS_KEY), source: "provided", certPath: e.PANEL_TLS_CERT, keyPath: e.PANEL_TLS_KEY };
  }
  if (e.PANEL_TLS === "off") return null;
  const sans = wantedSans(e.PANEL_HOST, [e.PANEL_NODE, ...e.PANEL_TLS_SAN]);
  const r = await ensureSelfSigned(e.PANEL_TLS_DIR, sans, isIP(e.PANEL_HOST) && e.PANEL_HOST !== "0.0.0.0" ? e.PANEL_HOST : e.PANEL_NODE);
  if (r.generated) log.info({ cert: r.certPath, sans }, "made a self-signed TLS certificate for the panel");
  return { cert: readFileSync(r.certPath), key: readFileSync(r.keyPath), source: "self-signed", certPath: r.certPath, keyPath: r.keyPath };
}
