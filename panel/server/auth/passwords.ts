// argon2id (OWASP's recommended parameters: 19 MiB, 2 passes, 1 lane), PHC strings only.
import { hash, verify, Algorithm } from "@node-rs/argon2";
import { z } from "zod";

const PARAMS = { algorithm: Algorithm.Argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

export const Password = z.string().min(12, "at least 12 characters").max(256, "at most 256 characters");
export const Username = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "1-64 letters, digits, '.', '_' or '-'");

export const hashPassword = (password: string) => hash(password, PARAMS);

/** A hash to verify against when the user does not exist, so timing does not tell. */
let dummy: Promise<string> | null = null;

export async function verifyPassword(phc: string | null, password: string): Promise<boolean> {
  if (phc === null) {
    dummy ??= hashPassword("no such user, no such password");
    await verify(await dummy, password).catch(() => false);
    return false;
  }
  if (!phc.startsWith("$argon2id$")) return false;
  return verify(phc, password).catch(() => false);
}
