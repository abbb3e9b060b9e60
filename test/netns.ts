/**
 * Network namespaces for tests that need the real kernel (iproute2, root): create, drive with
 * `ip`, and always delete, also when a test fails or the process exits.
 */
import { spawnSync } from 'node:child_process';

const created = new Set<string>();
let seq = 0;

/** Runs `ip ARGS`; throws with its stderr when it fails. */
export function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 5000 });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')} failed: ${r.stderr || r.error}`);
}

/** Deletes every namespace this process created. */
export function cleanupNamespaces(): void {
  for (const ns of created) spawnSync('ip', ['netns', 'del', ns], { timeout: 5000 });
  created.clear();
}
process.on('exit', cleanupNamespaces);

/** A new namespace named after `prefix`, the process id and a counter. */
export function newNamespace(prefix: string): string {
  const ns = `${prefix}-${process.pid}-${seq++}`;
  ip('netns', 'add', ns);
  created.add(ns);
  return ns;
}

/** Why namespaces with a veth pair cannot be used here (or `tools` are missing); undefined when they can. */
export function netnsUnavailable(tools: ReadonlyArray<readonly [string, ...string[]]> = [['ip', '-V']]): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  for (const [cmd, ...args] of tools) {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    if (r.error || r.status !== 0) return `${cmd} (iproute2) is not installed: apt-get install iproute2`;
  }
  try {
    const ns = newNamespace('mcumgr-probe');
    ip('-n', ns, 'link', 'add', 'probe0', 'type', 'veth', 'peer', 'name', 'probe1');
    spawnSync('ip', ['netns', 'del', ns]);
    created.delete(ns);
    return undefined;
  } catch (e) {
    return `cannot create a network namespace with a veth pair here (${(e as Error).message.trim()}); run as root on a kernel with netns and veth`;
  }
}
