// Failed logins, counted per user and per address in fixed windows: once a key has used up its
// attempts, logins for it are refused with 429 (and Retry-After) until its window ends, before
// any password is checked. An address gets four times a user's attempts (several users behind one
// NAT). Bounded: the least recently failing keys are forgotten first.

import { LRUCache } from "lru-cache";
import type { ThrottleOptions } from "./options.js";

interface Window {
  failures: number;
  endsAt: number;
}

/** The keys a login attempt counts against. */
export interface LoginKeys {
  user: string;
  address: string | undefined;
}

const ADDRESS_FACTOR = 4;
const MAX_KEYS = 10_000;

export class LoginThrottle {
  private readonly windows = new LRUCache<string, Window>({ max: MAX_KEYS });

  constructor(private readonly options: ThrottleOptions) {}

  private entries(keys: LoginKeys): [string, number][] {
    const { attempts } = this.options;
    const entries: [string, number][] = [[`user\0${keys.user}`, attempts]];
    if (keys.address !== undefined) {
      entries.push([`address\0${keys.address}`, attempts * ADDRESS_FACTOR]);
    }
    return entries;
  }

  /** Seconds until a login for `keys` may be tried again; 0 when it may be tried now. */
  retryAfter(keys: LoginKeys, now = Date.now()): number {
    if (this.options.attempts === 0) return 0;
    let wait = 0;
    for (const [key, limit] of this.entries(keys)) {
      const window = this.windows.get(key);
      if (window !== undefined && window.endsAt > now && window.failures >= limit) {
        wait = Math.max(wait, Math.ceil((window.endsAt - now) / 1000));
      }
    }
    return wait;
  }

  /** Counts a failed login. */
  failed(keys: LoginKeys, now = Date.now()): void {
    if (this.options.attempts === 0) return;
    for (const [key] of this.entries(keys)) {
      let window = this.windows.get(key);
      if (window === undefined || window.endsAt <= now) {
        window = { failures: 0, endsAt: now + this.options.windowMs };
        this.windows.set(key, window);
      }
      window.failures++;
    }
  }

  /** A successful login clears its user's failures (not its address's). */
  succeeded(keys: LoginKeys): void {
    this.windows.delete(`user\0${keys.user}`);
  }
}
