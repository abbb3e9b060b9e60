/**
 * The emulated device's settings subsystem, modelled on Zephyr's `settings` API as the settings
 * management group (group 3) drives it:
 *
 * - Handlers own subtrees (`SETTINGS_STATIC_HANDLER_DEFINE(name, get, set, commit, export)`):
 *   a name is routed to the handler with the longest matching subtree (`app` for `app/x/y`).
 * - `runtimeGet` / `runtimeSet` (settings_runtime_get/set) read and change the running value
 *   only; nothing is persisted by a write.
 * - `save` (settings_save) asks every handler to export its values and persists those that
 *   differ from storage; `save(subtree)` only that subtree. `delete` (settings_delete) removes a
 *   name from storage (the running value stays until the next load after a reboot).
 * - `load` (settings_load) feeds every stored value to its handler's `set`, then commits;
 *   `commit` (settings_commit) calls every handler's `commit`.
 *
 * Errors are Zephyr's negative errno values ({@link SettingsErrno}), which the group maps to its
 * error codes: -EINVAL → ROOT_KEY_NOT_FOUND, -ENOENT → KEY_NOT_FOUND, -ENOTSUP → *_NOT_SUPPORTED.
 *
 * Storage: {@link SettingsStore}, an append-only log of CRC-checked batches (settings-log.ts),
 * fsynced on every save, compacted through an atomic rename. A kill -9 at any moment leaves the
 * state of the last completed save.
 */
import { open, readFile, rm, mkdir, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { bytesEqual } from '../core/bytes.ts';
import { decodeSettingsLog, encodeSettingsBatch, replaySettingsLog, SETTINGS_LOG_MAGIC, type SettingsLogEntry } from './settings-log.ts';
import { fsyncDir, writeFileAtomic } from './storage.ts';

/** Zephyr's errno values as settings handlers return them (negated). */
export const SettingsErrno = {
  ENOENT: -2,
  ENOMEM: -12,
  EINVAL: -22,
  ENOSPC: -28,
  ENOTSUP: -134,
} as const;

/** A settings handler for one subtree. Missing functions answer -ENOTSUP. */
export interface SettingsHandler {
  /** Subtree name, e.g. `app` or `bt/dev`. */
  readonly name: string;
  /** Runtime value of `key` (the part after `name/`, '' for the subtree name itself), at most `maxLength` bytes, or a negative errno. */
  get?(key: string, maxLength: number): Uint8Array | number;
  /** Sets the runtime value (from a runtime write or from load); 0 or a negative errno. */
  set?(key: string, value: Uint8Array): number | void;
  /** Applies the values set so far (after load, or on an explicit commit). */
  commit?(): number | void;
  /** Reports every value to persist, with full names (`app/x`). */
  export?(emit: (name: string, value: Uint8Array) => void): void | Promise<void>;
}

const COMPACT_MIN_BYTES = 64 * 1024;

/** The durable store: a settings log file in a directory. */
export class SettingsStore {
  readonly path: string;
  private handle: FileHandle | undefined;
  private state = new Map<string, Uint8Array>();
  private size = 0;
  private opened = false;
  /** What the last open found at the end of the log (a torn batch it truncated), for diagnostics. */
  lastRecovery: string | undefined;

  constructor(readonly dir: string) {
    this.path = join(dir, 'settings.log');
  }

  /** Reads the log, truncating a torn tail, and keeps it open for appends. */
  async open(): Promise<void> {
    if (this.opened) return;
    await mkdir(this.dir, { recursive: true });
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(this.path));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      bytes = new Uint8Array(0);
    }
    const decoded = decodeSettingsLog(bytes);
    this.lastRecovery = decoded.stoppedBecause;
    if (!decoded.formatOk) {
      // Not ours (or the magic itself is damaged): keep the bytes aside, start empty.
      if (bytes.length > 0) await writeFileAtomic(`${this.path}.corrupt-${Date.now()}`, bytes);
      await writeFileAtomic(this.path, SETTINGS_LOG_MAGIC);
      this.state = new Map();
      this.size = SETTINGS_LOG_MAGIC.length;
    } else if (decoded.validLength < SETTINGS_LOG_MAGIC.length) {
      await writeFileAtomic(this.path, SETTINGS_LOG_MAGIC);
      this.state = new Map();
      this.size = SETTINGS_LOG_MAGIC.length;
    } else {
      this.state = replaySettingsLog(decoded.batches);
      this.size = decoded.validLength;
      if (decoded.validLength < bytes.length) {
        const h = await open(this.path, 'r+');
        try {
          await h.truncate(decoded.validLength);
          await h.sync();
        } finally {
          await h.close();
        }
      }
    }
    this.handle = await open(this.path, 'a');
    this.opened = true;
  }

  /** The stored settings, name → value (a copy). */
  entries(): Map<string, Uint8Array> {
    return new Map(this.state);
  }

  get(name: string): Uint8Array | undefined {
    return this.state.get(name);
  }

  /** Appends one batch and fsyncs it: all of it survives a crash, or none of it. */
  async append(entries: readonly SettingsLogEntry[]): Promise<void> {
    if (entries.length === 0) return;
    await this.open();
    const batch = encodeSettingsBatch(entries);
    await this.handle!.write(batch);
    await this.handle!.sync();
    this.size += batch.length;
    this.applyTo(this.state, entries);
    if (this.size > COMPACT_MIN_BYTES && this.size > 4 * this.compactedSize()) await this.compact();
  }

  private applyTo(state: Map<string, Uint8Array>, entries: readonly SettingsLogEntry[]): void {
    for (const e of entries) {
      if (e.op === 'set') state.set(e.name, e.value);
      else state.delete(e.name);
    }
  }

  private compactedSize(): number {
    let n = SETTINGS_LOG_MAGIC.length + 8;
    for (const [k, v] of this.state) n += 7 + k.length * 3 + v.length;
    return n;
  }

  /** Rewrites the log as one batch of the current state, atomically (temp file, fsync, rename). */
  async compact(): Promise<void> {
    await this.open();
    const entries: SettingsLogEntry[] = [...this.state].map(([name, value]) => ({ op: 'set', name, value }));
    const body = entries.length > 0 ? encodeSettingsBatch(entries) : new Uint8Array(0);
    const file = new Uint8Array(SETTINGS_LOG_MAGIC.length + body.length);
    file.set(SETTINGS_LOG_MAGIC);
    file.set(body, SETTINGS_LOG_MAGIC.length);
    await this.handle?.close();
    this.handle = undefined;
    await writeFileAtomic(this.path, file);
    this.size = file.length;
    this.handle = await open(this.path, 'a');
  }

  /** Deletes all stored settings (the storage partition erase). */
  async erase(): Promise<void> {
    await this.handle?.close();
    this.handle = undefined;
    this.opened = false;
    await rm(this.path, { force: true });
    await fsyncDir(this.dir).catch(() => {});
    this.state = new Map();
    this.size = 0;
    await this.open();
  }

  async close(): Promise<void> {
    await this.handle?.close();
    this.handle = undefined;
    this.opened = false;
  }
}

/** Runs async operations one at a time (the settings subsystem has one lock, like Zephyr's). */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const r = this.tail.then(fn, fn);
    this.tail = r.catch(() => {});
    return r;
  }
}

export class SettingsSubsystem {
  readonly store: SettingsStore;
  private readonly handlers: SettingsHandler[] = [];
  private readonly lock = new Mutex();

  constructor(dir: string) {
    this.store = new SettingsStore(dir);
  }

  /** Registers a handler for a subtree (one handler per name). Returns a function that removes it. */
  register(handler: SettingsHandler): () => void {
    if (this.handlers.some((h) => h.name === handler.name)) throw new RangeError(`a settings handler for ${JSON.stringify(handler.name)} is already registered`);
    this.handlers.push(handler);
    return () => {
      const i = this.handlers.indexOf(handler);
      if (i >= 0) this.handlers.splice(i, 1);
    };
  }

  /** The handler for a name and the rest of the name after its subtree (settings_parse_and_lookup). */
  lookup(name: string): { handler: SettingsHandler; key: string } | undefined {
    let best: SettingsHandler | undefined;
    for (const h of this.handlers) {
      if (name === h.name || name.startsWith(h.name + '/')) {
        if (!best || h.name.length > best.name.length) best = h;
      }
    }
    if (!best) return undefined;
    return { handler: best, key: name === best.name ? '' : name.slice(best.name.length + 1) };
  }

  /** settings_runtime_get: the running value, at most `maxLength` bytes, or a negative errno. */
  runtimeGet(name: string, maxLength: number): Uint8Array | number {
    const found = this.lookup(name);
    if (!found) return SettingsErrno.EINVAL;
    if (!found.handler.get) return SettingsErrno.ENOTSUP;
    const r = found.handler.get(found.key, maxLength);
    return typeof r === 'number' ? r : r.subarray(0, maxLength);
  }

  /** settings_runtime_set: changes the running value only; 0 or a negative errno. */
  runtimeSet(name: string, value: Uint8Array): number {
    const found = this.lookup(name);
    if (!found) return SettingsErrno.EINVAL;
    if (!found.handler.set) return SettingsErrno.ENOTSUP;
    return found.handler.set(found.key, value) ?? 0;
  }

  /** settings_delete: removes the name from storage. 0 or a negative errno. */
  delete(name: string): Promise<number> {
    return this.lock.run(async () => {
      await this.store.open();
      // Zephyr's backends accept deleting a name that is not stored; nothing to write then.
      if (this.store.get(name) !== undefined) await this.store.append([{ op: 'delete', name }]);
      return 0;
    });
  }

  /** settings_commit: every handler's commit; the first error is returned. */
  commit(subtree?: string): number {
    let rc = 0;
    for (const h of this.handlers) {
      if (subtree !== undefined && !(h.name === subtree || h.name.startsWith(subtree + '/') || subtree.startsWith(h.name + '/'))) continue;
      const r = h.commit?.() ?? 0;
      if (r !== 0 && rc === 0) rc = r;
    }
    return rc;
  }

  /** settings_load: feeds every stored value to its handler, then commits. */
  load(): Promise<number> {
    return this.lock.run(async () => {
      await this.store.open();
      for (const [name, value] of this.store.entries()) {
        const found = this.lookup(name);
        found?.handler.set?.(found.key, value);
      }
      return this.commit();
    });
  }

  /**
   * settings_save / settings_save_subtree: exports the handlers' values and persists those that
   * differ from storage, as one atomic batch.
   */
  save(subtree?: string): Promise<number> {
    return this.lock.run(async () => {
      await this.store.open();
      const changed: SettingsLogEntry[] = [];
      const inSubtree = (n: string): boolean => subtree === undefined || subtree === '' || n === subtree || n.startsWith(subtree + '/');
      for (const h of this.handlers) {
        if (!h.export) continue;
        if (subtree && !(inSubtree(h.name) || subtree.startsWith(h.name + '/'))) continue;
        await h.export((name, value) => {
          if (!inSubtree(name)) return;
          const stored = this.store.get(name);
          if (!stored || !bytesEqual(stored, value)) changed.push({ op: 'set', name, value: value.slice() });
        });
      }
      await this.store.append(changed);
      return 0;
    });
  }

  /** Persists one value directly (settings_save_one). */
  saveOne(name: string, value: Uint8Array): Promise<void> {
    return this.lock.run(() => this.store.append([{ op: 'set', name, value: value.slice() }]));
  }

  /** The stored names and values, sorted by name (for `settings list`). */
  async stored(): Promise<Array<[string, Uint8Array]>> {
    await this.store.open();
    return [...this.store.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** Wipes the storage (storage partition erase); running values stay until the next reboot. */
  erase(): Promise<void> {
    return this.lock.run(() => this.store.erase());
  }

  close(): Promise<void> {
    return this.lock.run(() => this.store.close());
  }
}

/** Default cap on the runtime keys of the free-form subtrees together (see {@link KeyBudget}). */
export const DEFAULT_SETTINGS_MAX_KEYS = 256;

/**
 * How many keys the free-form settings handlers of a device may hold together: a device's
 * settings live in a small flash partition (NVS/ZMS), not without end. A new key past the cap
 * fails with -ENOSPC, what a full settings backend returns, which the settings group answers as
 * Zephyr's settings_mgmt does for any other errno: SETTINGS_MGMT_ERR_UNKNOWN (err 3/1).
 * Overwriting an existing key always works.
 */
export class KeyBudget {
  used = 0;
  constructor(readonly max: number = DEFAULT_SETTINGS_MAX_KEYS) {
    if (!Number.isInteger(max) || max < 0) throw new RangeError(`settings key cap must be a non-negative integer, got ${max}`);
  }
}

export interface KeyValueHandlerOptions {
  /** Largest value a write accepts (default 256 bytes); longer ones fail with -ENOMEM (err 3/1). */
  maxValueLength?: number;
  /** The key cap this handler counts against (shared by a device's handlers); default its own of {@link DEFAULT_SETTINGS_MAX_KEYS}. */
  keys?: KeyBudget;
  /** Called on commit with the running values. */
  onCommit?: (values: ReadonlyMap<string, Uint8Array>) => void;
}

/** A handler that keeps any key under its subtree, as an application's free-form store would. */
export interface KeyValueSettingsHandler extends SettingsHandler {
  readonly values: ReadonlyMap<string, Uint8Array>;
  /** Forgets every running value (a reboot). */
  reset(): void;
}

export function createKeyValueSettingsHandler(name: string, options: KeyValueHandlerOptions = {}): KeyValueSettingsHandler {
  const values = new Map<string, Uint8Array>();
  const maxValueLength = options.maxValueLength ?? 256;
  const keys = options.keys ?? new KeyBudget();
  return {
    name,
    values,
    get(key, maxLength) {
      const v = values.get(key);
      return v === undefined ? SettingsErrno.ENOENT : v.subarray(0, maxLength);
    },
    set(key, value) {
      if (key === '') return SettingsErrno.ENOENT;
      if (value.length > maxValueLength) return SettingsErrno.ENOMEM;
      if (!values.has(key)) {
        if (keys.used >= keys.max) return SettingsErrno.ENOSPC;
        keys.used++;
      }
      values.set(key, value.slice());
      return 0;
    },
    commit() {
      options.onCommit?.(values);
      return 0;
    },
    export(emit) {
      for (const [k, v] of values) emit(`${name}/${k}`, v);
    },
    reset() {
      keys.used -= values.size;
      values.clear();
    },
  };
}
