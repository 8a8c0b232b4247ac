import { AuthError } from '../../src/errors';
import { changeSecrets, usersBeingChanged, type UserSecrets, type UserSecretsRecord, type UserSecretStore } from '../../src/core/user-secrets';
import { heapAfterGc } from '../helpers/heap';

const NOW = Date.UTC(2030, 0, 1);
const now = () => NOW;

/** One shared document store; each instance is a view of it with a store object of its own, as two servers over one database. */
class Backing {
  readonly docs = new Map<string, UserSecretsRecord>();
  readonly users = new Set<string>(['usr_a']);
  /** Write attempts, and those that landed. */
  writes = 0;
  written = 0;
  reads = 0;
  private version = 0;
  /** Replaces the next answers' behaviour (a failing or conflicting store). */
  failWrites: (() => Promise<'written' | 'conflict' | 'user_gone'>) | undefined;

  instance(): UserSecretStore {
    // Each operation answers on a later turn of the event loop, as a store over a socket does.
    const later = <T>(f: () => T) => new Promise<T>((resolve, reject) => setImmediate(() => { try { resolve(f()); } catch (e) { reject(e as Error); } }));
    return {
      readUserSecrets: (userId) => later(() => (this.reads++, this.docs.get(userId))),
      writeUserSecrets: (userId, ifVersion, data) => {
        if (this.failWrites) return this.failWrites();
        return later(() => {
          this.writes++;
          if (!this.users.has(userId)) return 'user_gone' as const;
          if ((this.docs.get(userId)?.version ?? 0) !== ifVersion) return 'conflict' as const;
          if (data === undefined) this.docs.delete(userId);
          else this.docs.set(userId, { version: ++this.version, data });
          this.written++;
          return 'written' as const;
        });
      },
    };
  }

  step(userId = 'usr_a'): number {
    const data = this.docs.get(userId)?.data;
    return data ? (JSON.parse(data) as UserSecrets).totp!.lastStep : 0;
  }
}

/** A change that counts: reads the step, writes it plus one, answers the step it saw. */
const increment = (doc: UserSecrets) => {
  const step = doc.totp?.lastStep ?? 0;
  return { write: { ...doc, totp: { secret: 'S', confirmedAt: 0, lastStep: step + 1 } }, result: step };
};

describe('changeSecrets: one user\'s changes on one instance go one write at a time', () => {
  test.each([
    ['one instance, 40 changes at once', 1, 40],
    ['two instances, 20 changes at once on each', 2, 20],
    ['four instances, 10 changes at once on each', 4, 10],
  ])('%s: every change lands once, none lost to a race', async (_, instances, each) => {
    const backing = new Backing();
    const stores = Array.from({ length: instances }, () => backing.instance());
    const results = await Promise.all(stores.flatMap((store) => Array.from({ length: each }, () => changeSecrets(store, 'usr_a', now, increment))));
    expect(backing.step()).toBe(instances * each);
    expect([...results].sort((a, b) => a - b)).toEqual(Array.from({ length: instances * each }, (_, i) => i));
    // An instance's first change is written alone and the ones that came meanwhile together after
    // it: two writes land per instance, and the races lost between instances cost fewer attempts than changes.
    expect(backing.written).toBe(2 * instances);
    expect(backing.writes).toBeLessThan(instances * each);
    for (const store of stores) expect(usersBeingChanged(store)).toBe(0);
  });

  test('changes waiting together are decided in the order they came', async () => {
    const backing = new Backing();
    const store = backing.instance();
    const seen = await Promise.all(Array.from({ length: 10 }, () => changeSecrets(store, 'usr_a', now, increment)));
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  test("a change that refuses fails alone: the others beside it are written, and it sees the document they were decided on", async () => {
    const backing = new Backing();
    const store = backing.instance();
    const refuse = (doc: UserSecrets): never => {
      throw new AuthError('invalid_argument', `refused at step ${doc.totp?.lastStep ?? 0}`);
    };
    const outcomes = await Promise.allSettled([changeSecrets(store, 'usr_a', now, increment), changeSecrets(store, 'usr_a', now, increment), changeSecrets(store, 'usr_a', now, refuse), changeSecrets(store, 'usr_a', now, increment)]);
    expect(outcomes.map((o) => (o.status === 'fulfilled' ? o.value : (o.reason as Error).message))).toEqual([0, 1, 'refused at step 2', 2]);
    expect(backing.step()).toBe(3);
  });

  test('changes that keep the document write nothing', async () => {
    const backing = new Backing();
    const store = backing.instance();
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => changeSecrets(store, 'usr_a', now, () => ({ keep: true as const, result: i }))));
    expect(results).toEqual([0, 1, 2, 3, 4]);
    expect(backing.writes).toBe(0);
  });

  test.each([
    ['a store that always loses the race', () => Promise.resolve('conflict' as const), { code: 'conflict' }],
    ['a store that fails', () => Promise.reject(new AuthError('unavailable', 'session store unavailable')), { code: 'unavailable' }],
    ['a user that is gone', () => Promise.resolve('user_gone' as const), { code: 'not_found' }],
  ])('%s: every change waiting on that write gets its answer, and the next change starts afresh', async (_, failWrites, expected) => {
    const backing = new Backing();
    const store = backing.instance();
    backing.failWrites = failWrites;
    const outcomes = await Promise.allSettled(Array.from({ length: 6 }, () => changeSecrets(store, 'usr_a', now, increment)));
    for (const o of outcomes) expect(o).toMatchObject({ status: 'rejected', reason: expected });
    expect(usersBeingChanged(store)).toBe(0);
    backing.failWrites = undefined;
    expect(await changeSecrets(store, 'usr_a', now, increment)).toBe(0);
    expect(backing.step()).toBe(1);
  });

  test.each([
    ['loses every race', () => Promise.resolve('conflict' as const), 'conflict'],
    ['fails', () => Promise.reject(new AuthError('unavailable', 'session store unavailable')), 'unavailable'],
  ])('changes decided before the first that writes are answered on the stored document when the write %s; those after it get its failure', async (_, failWrites, code) => {
    const backing = new Backing();
    const store = backing.instance();
    await changeSecrets(store, 'usr_a', now, increment);
    backing.failWrites = failWrites;
    const keep = (doc: UserSecrets) => ({ keep: true as const, result: `step ${doc.totp?.lastStep ?? 0}` });
    const refuse = (doc: UserSecrets): never => {
      throw new AuthError('invalid_argument', `refused at step ${doc.totp?.lastStep ?? 0}`);
    };
    // Made in one go, they are decided together on one read.
    const outcomes = await Promise.allSettled([changeSecrets(store, 'usr_a', now, keep), changeSecrets(store, 'usr_a', now, refuse), changeSecrets(store, 'usr_a', now, increment), changeSecrets(store, 'usr_a', now, keep), changeSecrets(store, 'usr_a', now, refuse)]);
    const shown = outcomes.map((o) => (o.status === 'fulfilled' ? o.value : `${(o.reason as AuthError).code}: ${(o.reason as Error).message}`));
    expect(shown.slice(0, 2)).toEqual(['step 1', 'invalid_argument: refused at step 1']);
    for (const later of shown.slice(2)) expect(later).toMatch(new RegExp(`^${code}: `));
    expect(backing.step()).toBe(1);
  });

  test('a change that loses eight races in a row gives up with conflict, having read each time', async () => {
    const backing = new Backing();
    const store = backing.instance();
    backing.failWrites = () => Promise.resolve('conflict');
    await expect(changeSecrets(store, 'usr_a', now, increment)).rejects.toMatchObject({ code: 'conflict', message: 'the account changed meanwhile; retry' });
    expect(backing.reads).toBe(8);
  });

  /**
   * Bound: an entry a user while one of their changes is written or waits, so at most one per call
   * in progress. 5 rounds of 20,000 changes over 5,000 users at once: after each, no entry is left
   * and the heap (after a forced GC) and RSS stay flat.
   */
  test('the changes in progress leave nothing behind: 5 rounds of 20,000 changes over 5,000 users', async () => {
    const backing = new Backing();
    for (let u = 0; u < 5_000; u++) backing.users.add(`usr_${u}`);
    const store = backing.instance();
    const heap: number[] = [];
    const rss: number[] = [];
    for (let round = 0; round < 5; round++) {
      backing.docs.clear();
      const pending = Array.from({ length: 20_000 }, (_, i) => changeSecrets(store, `usr_${i % 5_000}`, now, increment));
      expect(usersBeingChanged(store)).toBe(5_000);
      await Promise.all(pending);
      expect(usersBeingChanged(store)).toBe(0);
      expect(backing.step('usr_4999')).toBe(4);
      heap.push(heapAfterGc());
      rss.push(process.memoryUsage().rss);
    }
    const mb = (xs: number[]) => xs.map((x) => Math.round(x / 1e6));
    // The first round's allocations settle; after it nothing grows round over round (20,000
    // changes a round: 1 MB would be 50 bytes a change left behind).
    expect(Math.max(...heap.slice(2))).toBeLessThanOrEqual(heap[1]! + 1e6);
    expect(Math.max(...rss.slice(2))).toBeLessThanOrEqual(Math.max(...rss.slice(0, 2)) + 10e6);
    console.log(`changes in progress: heap after GC ${mb(heap).join(', ')} MB; RSS ${mb(rss).join(', ')} MB`);
  });
});
