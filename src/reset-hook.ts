import { createHmac } from 'node:crypto';
import type { Clock } from './clock.js';
import type { EventLog } from './core/events.js';
import type { ResetDelivery, ResetNotice } from './core/password-reset.js';
import type { Random } from './random.js';

export interface WebhookOptions {
  readonly url: string;
  /** "whsec_" and the base64 of the key (Standard Webhooks), at least 24 bytes. */
  readonly secret: string;
  readonly clock: Clock;
  readonly random: Random;
  readonly log: EventLog;
  /** Notices waiting or being sent, at most; past it new ones are dropped (audited). */
  readonly maxQueue?: number;
  /** Tries per notice, the first included. */
  readonly attempts?: number;
  /** Wait before the first retry; doubles each time. */
  readonly baseDelayMs?: number;
  /** Bound on one POST. */
  readonly timeoutMs?: number;
  /** Notices sent at once. */
  readonly concurrency?: number;
  /** For tests: fetch of your own. */
  readonly fetch?: typeof fetch;
}

interface Job {
  readonly id: string;
  readonly body: string;
  readonly userId: string;
  tries: number;
}

/** Standard Webhooks' key: the bytes after "whsec_". Throws for a secret of another shape (config checks it first). */
export function webhookKey(secret: string): Buffer {
  if (!secret.startsWith('whsec_')) throw new Error('the hook secret must start with "whsec_"');
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  if (key.length < 24) throw new Error('the hook secret must hold at least 24 bytes (base64 after "whsec_")');
  return key;
}

/** The Standard Webhooks signature of a message: "v1," and base64 HMAC-SHA256 of "id.timestamp.body". */
export function webhookSignature(key: Buffer, id: string, timestampSeconds: number, body: string): string {
  return `v1,${createHmac('sha256', key).update(`${id}.${timestampSeconds}.${body}`).digest('base64')}`;
}

/**
 * Delivers password-reset notices to AUTH_PASSWORD_RESET_HOOK_URL as Standard Webhooks
 * (standardwebhooks.com): a JSON POST with webhook-id, webhook-timestamp and webhook-signature
 * headers, so the receiver verifies it with any Standard Webhooks library and the shared secret.
 * A 2xx answer delivers it; anything else is retried with doubling back-off, up to `attempts`
 * tries, on the injected clock. The queue is bounded; the code is in the body only, never in a
 * log line. A retried notice keeps its webhook-id, so the receiver can drop duplicates.
 */
export class WebhookDelivery implements ResetDelivery {
  private readonly key: Buffer;
  private readonly queue: Job[] = [];
  private active = 0;
  /** Jobs waiting for a retry timer. */
  private waiting = 0;
  private readonly o: Required<Omit<WebhookOptions, 'fetch'>> & { fetch: typeof fetch };

  constructor(options: WebhookOptions) {
    this.key = webhookKey(options.secret);
    this.o = { maxQueue: 1000, attempts: 6, baseDelayMs: 5000, timeoutMs: 5000, concurrency: 4, fetch: globalThis.fetch, ...options };
  }

  /** Notices held (queued, in flight or waiting to retry). */
  get held(): number {
    return this.queue.length + this.active + this.waiting;
  }

  send(notice: ResetNotice): void {
    if (this.held >= this.o.maxQueue) {
      this.o.log.warn({ event: 'password_reset_hook_dropped', userId: notice.userId, why: 'queue_full' }, 'password reset notice dropped: the hook queue is full');
      return;
    }
    const body = JSON.stringify({ user_id: notice.userId, username: notice.username, code: notice.code, expires_at: new Date(notice.expiresAt).toISOString() });
    this.queue.push({ id: `msg_${this.o.random.bytes(16).toString('base64url')}`, body, userId: notice.userId, tries: 0 });
    this.pump();
  }

  private pump(): void {
    while (this.active < this.o.concurrency && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.active++;
      void this.post(job).then((ok) => {
        this.active--;
        this.settle(job, ok);
        this.pump();
      });
    }
  }

  private settle(job: Job, ok: boolean): void {
    if (ok) {
      this.o.log.info({ event: 'password_reset_hook_delivered', userId: job.userId, tries: job.tries }, 'password reset notice delivered');
      return;
    }
    if (job.tries >= this.o.attempts) {
      this.o.log.error({ event: 'password_reset_hook_failed', userId: job.userId, tries: job.tries }, 'password reset notice not delivered: gave up');
      return;
    }
    this.waiting++;
    this.o.clock.setTimer(this.o.baseDelayMs * 2 ** (job.tries - 1), () => {
      this.waiting--;
      this.queue.push(job);
      this.pump();
    });
  }

  private async post(job: Job): Promise<boolean> {
    job.tries++;
    const timestamp = Math.floor(this.o.clock.now() / 1000);
    try {
      const response = await this.o.fetch(this.o.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'webhook-id': job.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': webhookSignature(this.key, job.id, timestamp, job.body),
        },
        body: job.body,
        redirect: 'error',
        signal: AbortSignal.timeout(this.o.timeoutMs),
      });
      await response.body?.cancel().catch(() => {});
      return response.status >= 200 && response.status < 300;
    } catch {
      return false;
    }
  }
}
