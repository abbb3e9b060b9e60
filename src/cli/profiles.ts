/**
 * Connection profiles in the Go mcumgr CLI's file and format, so that profiles made by either
 * tool work in the other (`mcumgr conn add NAME type=udp connstring=HOST:PORT`, `conn show`,
 * `conn delete NAME`, `-c NAME` on any command).
 *
 * Verified in apache/mynewt-mcumgr-cli (mcumgr/mcumgr.go: `CfgFilename: ".mcumgr.cp.json"`) and
 * the newtmgr code it runs (newtmgr/config/connprofile.go, newtmgr/cli/connprofile.go):
 * - the file is `$HOME/.mcumgr.cp.json` (go-homedir: `$HOME`), written with mode 0644;
 * - it holds a JSON array of `{"MyName": NAME, "MyType": TYPE, "MyConnString": CONNSTRING}`,
 *   sorted by name, indented with four spaces (Go's `json.MarshalIndent(list, "", "    ")`);
 * - TYPE is one of Go's names (serial, oic_serial, ble, oic_ble, bhd, oic_bhd, udp, oic_udp, tcp,
 *   oic_tcp, oic_mtech); Go reads an unknown one as "???";
 * - `conn add NAME k=v...` takes the keys `name`, `type` and `connstring`, and replaces a profile of
 *   the same name;
 * - `conn show [NAME]` prints `Connection profiles: ` then `  NAME: type=TYPE, connstring='CS'`,
 *   or `No connection profiles found!` (`... found matching NAME`).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { UsageError } from '../core/errors.ts';

/** Conntype names the Go tool knows (and writes into the file). */
export const GO_CONNTYPES = ['serial', 'oic_serial', 'ble', 'oic_ble', 'bhd', 'oic_bhd', 'udp', 'oic_udp', 'tcp', 'oic_tcp', 'oic_mtech'] as const;

export interface ConnProfile {
  name: string;
  type: string;
  connstring: string;
}

interface GoConnProfile {
  MyName: string;
  MyType: string;
  MyConnString: string;
}

/** The profile file, `~/.mcumgr.cp.json`, as Go mcumgr's. */
export function profilesPath(): string {
  return join(homedir(), '.mcumgr.cp.json');
}

export async function readProfiles(path = profilesPath()): Promise<ConnProfile[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new UsageError(`cannot read the connection profiles ${path}: ${(e as Error).message}`, { cause: e });
  }
  let list: unknown;
  try {
    list = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`error reading connection profile config (${path}): ${(e as Error).message}`, { cause: e });
  }
  // Go's json.Unmarshal of `null` into a slice gives an empty list.
  if (list === null) return [];
  if (!Array.isArray(list)) throw new UsageError(`error reading connection profile config (${path}): not a JSON array`);
  return list.map((p: Partial<GoConnProfile>) => ({
    name: String(p.MyName ?? ''),
    type: typeof p.MyType === 'string' && (GO_CONNTYPES as readonly string[]).includes(p.MyType) ? p.MyType : '???',
    connstring: String(p.MyConnString ?? ''),
  }));
}

export async function writeProfiles(profiles: readonly ConnProfile[], path = profilesPath()): Promise<void> {
  const sorted = [...profiles].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const go: GoConnProfile[] = sorted.map((p) => ({ MyName: p.name, MyType: p.type, MyConnString: p.connstring }));
  try {
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.tmp-${process.pid}`;
    await writeFile(tmp, JSON.stringify(go, null, 4), { mode: 0o644 });
    await rename(tmp, path);
  } catch (e) {
    throw new UsageError(`cannot write the connection profiles ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/** The profile `-c NAME` names; a usage error naming the file when there is none. */
export async function findProfile(name: string, path = profilesPath()): Promise<ConnProfile> {
  const profile = (await readProfiles(path)).find((p) => p.name === name);
  if (!profile) throw new UsageError(`connection profile "${name}" doesn't exist (profiles are in ${path}; add one with: mcumgr conn add ${name} type=udp connstring=HOST:PORT)`);
  return profile;
}

/** Parses `conn add` arguments: `NAME k=v...` with Go's keys name, type, connstring. */
export function profileFromArgs(name: string, vars: readonly string[]): ConnProfile {
  const profile: ConnProfile = { name, type: '???', connstring: '' };
  for (const v of vars) {
    const eq = v.indexOf('=');
    const key = eq < 0 ? v : v.slice(0, eq);
    const value = eq < 0 ? '' : v.slice(eq + 1);
    if (key === 'name') profile.name = value;
    else if (key === 'type') {
      if (!(GO_CONNTYPES as readonly string[]).includes(value)) throw new UsageError(`Invalid connection type: ${value}`);
      profile.type = value;
    } else if (key === 'connstring') profile.connstring = value;
    else throw new UsageError(`Unknown variable ${key}`);
  }
  return profile;
}
