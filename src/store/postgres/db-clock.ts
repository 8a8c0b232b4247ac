/**
 * The database's clock as this instance estimates it, for the deadlines of writes (auth_on_time):
 * readings taken by the health check's statement, each the midpoint of its round trip, carried
 * forward by this process's monotonic clock, so the instance's own wall clock plays no part.
 */
export class DatabaseClock {
  private reading: { at: number; mono: number; uncertainty: number; readAt: number } | undefined;

  constructor(
    /** How much later than the deadline the caller stops waiting: a reading must be off by less than a quarter of it. */
    private readonly slackMs: number,
    /** How long a reading stays good enough for a looser one not to replace it. */
    private readonly keepMs = 60_000,
  ) {}

  /**
   * Takes a reading (`dbNow` read between `sent` and `received`, monotonic ms): it replaces the
   * last when it is about as tight (at most twice its round trip, plus a little) or the last is
   * older than keepMs; one off by more than a quarter of the slack is not taken at all.
   */
  read(dbNow: number, sent: number, received: number): void {
    const uncertainty = (received - sent) / 2;
    if (uncertainty > this.slackMs / 4) return;
    const last = this.reading;
    if (last && uncertainty > 2 * last.uncertainty + 2 && received - last.readAt < this.keepMs) return;
    this.reading = { at: Number(dbNow), mono: (sent + received) / 2, uncertainty: Math.ceil(uncertainty), readAt: received };
  }

  /**
   * The deadline, on the database's clock, of a statement sent now that the caller waits
   * `waitMs` for: the estimate plus the wait, less how far off the estimate may be, so the
   * deadline always comes before the caller gives up. Null before the first reading.
   */
  deadline(waitMs: number, now = performance.now()): number | null {
    const r = this.reading;
    return r ? Math.floor(r.at + (now - r.mono) + waitMs - r.uncertainty) : null;
  }
}
