/**
 * Password hashing with scrypt from node:crypto.
 *
 * Why scrypt and not argon2: argon2id needs a native addon (node-gyp build or prebuilt binary
 * downloaded by an install script); the platform avoids native modules and install scripts.
 * scrypt is memory-hard too and ships with Node (OpenSSL). Parameters: N=2^15, r=8, p=1 (32 MiB,
 * the OWASP minimum for scrypt), 16-byte random salt per password, 64-byte key. The parameters
 * are stored with the hash (`scrypt$N$r$p$salt$hash`) so they can be raised later; verification
 * uses the stored ones and a constant-time comparison.
 *
 * Each hash holds 32 MiB while it runs on the libuv thread pool; a small semaphore bounds the
 * concurrent hashes so a burst of logins cannot exhaust the container's memory. Its queue is bounded
 * too: a burst beyond it is answered 429 with Retry-After at once, instead of queueing until the
 * gateway's request timeout turns it into a 504 and the pool's connect timeout into 503s.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from "node:crypto";
import { HttpError } from "../../kit";

/**
 * The text a password's hash is made of: its NFKC form, so a password typed composed or decomposed
 * (NFC, NFD) or in full-width forms is one password. Whatever judges a password (its length, whether
 * a new one is the current one) judges this form: the change compared the strings sent, so the
 * current password spelt in NFD was taken as a new one (every session ended, the hash unchanged).
 */
export const hashedForm = (password: string): string => password.normalize("NFKC");

/**
 * A new password whose hashed form is shorter than `minLength` code points, refused as ajv refuses
 * a short one (which counts the code points sent: six accented letters in NFD passed a minimum of
 * 12 as twelve), or undefined.
 */
export function shortPasswordIssue(password: string, minLength: number, field: string): HttpError | undefined {
  if ([...hashedForm(password)].length >= minLength) return undefined;
  return new HttpError(400, "VALIDATION_ERROR", `Invalid body: ${field} must NOT have fewer than ${minLength} characters (counted in its NFKC form, the one hashed)`, field);
}

export const SCRYPT_PARAMS = { N: 2 ** 15, r: 8, p: 1, keyLen: 64, saltLen: 16 } as const;

function scrypt(password: string, salt: Buffer, keyLen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCb(hashedForm(password), salt, keyLen, opts, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

export class HashingBusyError extends HttpError {
  constructor() {
    super(429, "TOO_MANY_REQUESTS", "Too many sign-ins in progress; retry shortly", undefined, { "retry-after": "1" });
  }
}

/** At most `max` hashes at once and `maxWaiting` queued; beyond that `run` throws HashingBusyError. */
export class Semaphore {
  private waiting: Array<() => void> = [];
  private active = 0;
  constructor(
    private readonly max: number,
    private readonly maxWaiting: number,
  ) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active < this.max) this.active++;
    else if (this.waiting.length >= this.maxWaiting) throw new HashingBusyError();
    // A released slot is handed straight to the first waiter, so a newcomer cannot overtake it.
    else await new Promise<void>((r) => this.waiting.push(r));
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}
const limiter = new Semaphore(2, 32);

function opts(N: number, r: number, p: number): ScryptOptions {
  return { N, r, p, maxmem: 128 * N * r * p * 2 + 1024 * 1024 };
}

export async function hashPassword(password: string): Promise<string> {
  const { N, r, p, keyLen, saltLen } = SCRYPT_PARAMS;
  const salt = randomBytes(saltLen);
  const key = await limiter.run(() => scrypt(password, salt, keyLen, opts(N, r, p)));
  return `scrypt$${N}$${r}$${p}$${salt.toString("base64")}$${key.toString("base64")}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split("$");
  if (parts.length !== 6 || parts[0] !== "scrypt") return false;
  const [N, r, p] = parts.slice(1, 4).map(Number);
  if (![N, r, p].every(Number.isSafeInteger) || N > 2 ** 20 || r > 32 || p > 16) return false;
  const salt = Buffer.from(parts[4], "base64");
  const expected = Buffer.from(parts[5], "base64");
  const key = await limiter.run(() => scrypt(password, salt, expected.length, opts(N, r, p)));
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/** A hash of a random password: verifying against it costs the same as a real user (no user enumeration by timing). */
let dummy: Promise<string> | undefined;
export function dummyHash(): Promise<string> {
  dummy ??= hashPassword(randomBytes(16).toString("hex"));
  return dummy;
}
