/**
 * Statistics for the statistics management group (group 2), modelled on Zephyr's `stats` API
 * (`STATS_SECT_START` / `STATS_INC` / `stats_register`): named groups of named counters that an
 * application registers and increments, listed and read by SMP `stat list` / `stat show`.
 *
 * Two kinds of group:
 * - {@link CounterGroup}: counters the application owns and increments (`inc`, `set`).
 * - live groups ({@link StatsRegistry.registerLive}): fields read from a function at each request,
 *   e.g. the SMP traffic counters the server keeps per transport.
 *
 * Values are reported as CBOR uint32, as Zephyr's stat_mgmt encodes them (`zcbor_uint32_put`):
 * 64-bit counters are truncated modulo 2^32 on the wire.
 */

/** Zephyr's CONFIG_MCUMGR_GRP_STAT_MAX_NAME_LEN: names are at most 31 bytes (NUL included in 32). */
export const STAT_MAX_NAME_LEN = 32;

/** One statistics group as the SMP handlers see it. */
export interface StatGroupView {
  readonly name: string;
  /** The fields in declaration order, with their current values. */
  fields(): Array<[string, number]>;
}

/** A group of counters owned by the application. */
export class CounterGroup implements StatGroupView {
  readonly name: string;
  private readonly values = new Map<string, number>();

  constructor(name: string, fieldNames: readonly string[]) {
    this.name = name;
    for (const f of fieldNames) {
      if (this.values.has(f)) throw new RangeError(`statistic ${JSON.stringify(f)} declared twice in group ${JSON.stringify(name)}`);
      this.values.set(f, 0);
    }
  }

  /** Adds `by` (default 1) to a counter (STATS_INC / STATS_INCN). */
  inc(field: string, by = 1): void {
    this.values.set(field, this.get(field) + by);
  }

  /** Sets a counter (STATS_SET). */
  set(field: string, value: number): void {
    this.get(field);
    this.values.set(field, value);
  }

  /** Current value of a counter; throws RangeError for an undeclared one. */
  get(field: string): number {
    const v = this.values.get(field);
    if (v === undefined) throw new RangeError(`no statistic ${JSON.stringify(field)} in group ${JSON.stringify(this.name)}`);
    return v;
  }

  /** Sets every counter back to 0 (STATS_CLEAR). */
  clear(): void {
    for (const k of this.values.keys()) this.values.set(k, 0);
  }

  fields(): Array<[string, number]> {
    return [...this.values.entries()];
  }
}

/** The device's statistics groups, in registration order (the order `stat list` reports). */
export class StatsRegistry {
  private readonly groups = new Map<string, StatGroupView>();
  private readonly providers: Array<() => StatGroupView[]> = [];

  /** Registers a group of counters (stats_init_and_reg). Names must be 1..31 bytes and unique. */
  register(name: string, fieldNames: readonly string[]): CounterGroup {
    const g = new CounterGroup(name, fieldNames);
    this.add(g);
    return g;
  }

  /** Registers a group whose fields are read live from `read` at every request. */
  registerLive(name: string, read: () => Record<string, number> | Array<[string, number]>): StatGroupView {
    const g: StatGroupView = { name, fields: () => { const r = read(); return Array.isArray(r) ? r : Object.entries(r); } };
    this.add(g);
    return g;
  }

  /**
   * Adds a source of groups that come and go (one per transport that has carried traffic).
   * Its groups are listed after the registered ones.
   */
  addProvider(provider: () => StatGroupView[]): void {
    this.providers.push(provider);
  }

  unregister(name: string): void {
    this.groups.delete(name);
  }

  find(name: string): StatGroupView | undefined {
    return this.groups.get(name) ?? this.all().find((g) => g.name === name);
  }

  /** All groups: registered ones first, then the providers' (duplicates of a registered name are dropped). */
  all(): StatGroupView[] {
    const out = [...this.groups.values()];
    const seen = new Set(out.map((g) => g.name));
    for (const p of this.providers) {
      for (const g of p()) {
        if (!seen.has(g.name)) {
          seen.add(g.name);
          out.push(g);
        }
      }
    }
    return out;
  }

  list(): string[] {
    return this.all().map((g) => g.name);
  }

  private add(g: StatGroupView): void {
    const len = new TextEncoder().encode(g.name).length;
    if (len === 0 || len >= STAT_MAX_NAME_LEN) throw new RangeError(`statistics group name must be 1..${STAT_MAX_NAME_LEN - 1} bytes: ${JSON.stringify(g.name)}`);
    if (this.groups.has(g.name)) throw new RangeError(`statistics group ${JSON.stringify(g.name)} is already registered`);
    this.groups.set(g.name, g);
  }
}
