/**
 * The emulated device's real-time clock for OS date-time (0/4): kept as an offset from the host
 * clock in `<dataDir>/os/rtc.json`, so a set time keeps running across restarts. Until it is
 * set, reading answers RTC_NOT_SET as a device with a fresh RTC does.
 *
 * Parsing follows Zephyr's os_mgmt_datetime_write (read from the source): the string is 19..25
 * characters; six integers (strtol base 10: optional leading spaces and sign) each followed by
 * one delimiter of any kind; ranges year 1900–11899, month 1–12, day 1–31, hour 0–23, minute
 * 0–59, second 0–59, any miss → rc 3. With milliseconds enabled (as here), a `.` after the
 * seconds introduces a fraction (up to 3 digits, `.5` = 500 ms; newer Zephyr). Trailing text
 * (a `Z`, a zone) is ignored. A date the calendar does not have (Feb 30) fails at the RTC:
 * RTC_COMMAND_FAILED. The time is kept without a zone, like an RTC.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from './storage.ts';

export const DATETIME_MIN_LENGTH = 19;
/** RTC_DATETIME_MAX_STRING_SIZE: strings must be shorter. */
export const DATETIME_MAX_LENGTH_EXCLUSIVE = 26;

export type DatetimeParse = { ok: true; ms: number } | { ok: false; reason: 'invalid' | 'calendar' };

/** strtol(pos, &end, 10): returns [value, end] or undefined when no digits were converted. */
function strtol(s: string, pos: number): [number, number] | undefined {
  let i = pos;
  while (i < s.length && /[ \t\n\v\f\r]/.test(s[i]!)) i++;
  let sign = 1;
  if (s[i] === '+' || s[i] === '-') {
    if (s[i] === '-') sign = -1;
    i++;
  }
  const start = i;
  let v = 0;
  while (i < s.length && s[i]! >= '0' && s[i]! <= '9') {
    v = v * 10 + (s.charCodeAt(i) - 48);
    if (v > 2 ** 40) v = 2 ** 40; // saturate like LONG_MAX; range checks reject it
    i++;
  }
  return i === start ? undefined : [sign * v, i];
}

/** Parses a date-time string the way Zephyr does; the result is milliseconds since the epoch (as UTC). */
export function parseDeviceDatetime(text: string): DatetimeParse {
  if (text.length < DATETIME_MIN_LENGTH || text.length >= DATETIME_MAX_LENGTH_EXCLUSIVE) return { ok: false, reason: 'invalid' };
  const ranges: Array<[number, number]> = [
    [1900, 11899],
    [1, 12],
    [1, 31],
    [0, 23],
    [0, 59],
    [0, 59],
  ];
  const values: number[] = [];
  let pos = 0;
  for (const [min, max] of ranges) {
    if (pos >= text.length) return { ok: false, reason: 'invalid' };
    const r = strtol(text, pos);
    if (!r) return { ok: false, reason: 'invalid' };
    const [v, end] = r;
    if (v < min || v > max) return { ok: false, reason: 'invalid' };
    values.push(v);
    pos = end + 1;
  }
  let ms = 0;
  if (text[pos - 1] === '.' && pos < text.length) {
    const m = /^\d{1,3}/.exec(text.slice(pos));
    if (!m) return { ok: false, reason: 'invalid' };
    ms = Number(m[0].padEnd(3, '0'));
  }
  const [y, mo, d, h, mi, s] = values as [number, number, number, number, number, number];
  const t = new Date(0);
  t.setUTCFullYear(y, mo - 1, d);
  t.setUTCHours(h, mi, s, ms);
  if (t.getUTCFullYear() !== y || t.getUTCMonth() !== mo - 1 || t.getUTCDate() !== d) return { ok: false, reason: 'calendar' };
  return { ok: true, ms: t.getTime() };
}

/** Formats as Zephyr does with milliseconds enabled: `YYYY-MM-DDTHH:MM:SS.mmm` (no zone). */
export function formatDeviceDatetime(ms: number): string {
  const t = new Date(ms);
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${String(t.getUTCFullYear()).padStart(4, ' ')}-${p(t.getUTCMonth() + 1)}-${p(t.getUTCDate())}T${p(t.getUTCHours())}:${p(t.getUTCMinutes())}:${p(t.getUTCSeconds())}.${p(t.getUTCMilliseconds(), 3)}`;
}

/** The RTC: an offset from the host clock, persisted. */
export class DeviceClock {
  readonly path: string;
  private offsetMs: number | undefined;
  private loaded = false;

  constructor(dataDir: string) {
    this.path = join(dataDir, 'os', 'rtc.json');
  }

  private async load(): Promise<void> {
    if (this.loaded) return;
    try {
      const j = JSON.parse(await readFile(this.path, 'utf8')) as { offsetMs?: unknown };
      this.offsetMs = typeof j.offsetMs === 'number' && Number.isFinite(j.offsetMs) ? j.offsetMs : undefined;
    } catch {
      this.offsetMs = undefined;
    }
    this.loaded = true;
  }

  /** The device time in ms since the epoch, or undefined while the RTC was never set. */
  async now(): Promise<number | undefined> {
    await this.load();
    return this.offsetMs === undefined ? undefined : Date.now() + this.offsetMs;
  }

  /** Sets the device time (ms since the epoch, read as UTC) and persists the offset atomically. */
  async set(deviceMs: number): Promise<void> {
    const offsetMs = deviceMs - Date.now();
    await writeFileAtomic(this.path, JSON.stringify({ offsetMs }) + '\n');
    this.offsetMs = offsetMs;
    this.loaded = true;
  }
}
