/**
 * The race suite's client (./races.test.ts): requests through the gateway as a given user, API key
 * and client address (the gateway trusts X-Forwarded-For from loopback here, so each race counts
 * against an address of its own), every answer judged by ./oracle.ts, and bursts of them sent at once
 * (fetch's default agent opens a connection per request in flight).
 */
import { randomBytes } from "node:crypto";
import { expect } from "vitest";
import { sendJudged, type JudgedAnswer } from "./oracle";

export type Answer = JudgedAnswer;
export interface Ask {
  body?: unknown;
  token?: string;
  key?: string;
  ip?: string;
  headers?: Record<string, string>;
}
export type User = { id: string; email: string; token: string; refreshToken: string };

export const PASSWORD = "correct horse battery staple";
let addresses = randomBytes(2).readUInt16BE(0) % 30_000;
/** A client address no earlier call got (198.18.0.0/15, the benchmarking range), so per-address counters start from nothing. */
export const freshAddress = () => {
  const n = ++addresses;
  return `198.${18 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`;
};

export class RaceClient {
  readonly failures: string[] = [];
  constructor(
    private readonly base: () => string,
    private readonly internalPorts: () => number[] = () => [],
  ) {}

  async send(method: string, path: string, o: Ask = {}, base = this.base()): Promise<Answer> {
    const headers: Record<string, string> = { ...(o.ip ? { "x-forwarded-for": o.ip } : {}), ...o.headers };
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    if (o.key) headers["x-api-key"] = o.key;
    return sendJudged(`${base}${path}`, method, { headers, body: o.body, failures: this.failures, internalPorts: this.internalPorts() });
  }

  /** `n` requests at once, made by `make(i)`. */
  burst(n: number, make: (i: number) => Promise<Answer>): Promise<Answer[]> {
    return Promise.all(Array.from({ length: n }, (_, i) => make(i)));
  }

  async login(email: string, password = PASSWORD): Promise<{ token: string; refreshToken: string }> {
    const r = await this.send("POST", "/api/users/login", { body: { email, password }, ip: freshAddress() });
    expect(r.status, r.text).toBe(200);
    return { token: r.json.accessToken, refreshToken: r.json.refreshToken };
  }

  async user(name: string): Promise<User> {
    const email = `${name}-${randomBytes(4).toString("hex")}@example.com`;
    const r = await this.send("POST", "/api/users/register", { body: { email, password: PASSWORD }, ip: freshAddress() });
    expect(r.status, r.text).toBe(201);
    return { id: r.json.user.id, email, ...(await this.login(email)) };
  }
}

/** Statuses of a burst, sorted, for one readable comparison. */
export const statuses = (answers: Answer[]) => answers.map((a) => a.status).sort((a, b) => a - b);
/** How many answers had this status. */
export const count = (answers: Answer[], status: number) => answers.filter((a) => a.status === status).length;
