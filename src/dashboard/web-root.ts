/**
 * Where the built web app is: `dist/web` of this package (beside `dist/mcumgr.mjs` when bundled,
 * two levels up from src/dashboard when run from the sources). In a checkout with web/ sources
 * (a git clone) a missing or older build is rebuilt first with esbuild, so `mcumgr dashboard`
 * never serves a stale page; an installed package ships the build and never builds.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { McuMgrError } from '../core/errors.ts';

/** The package root: the nearest folder up from this module with a package.json named mcumgr. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && statSync(pkg).isFile()) return dir;
    const up = dirname(dir);
    if (up === dir) throw new McuMgrError('NOT_FOUND', 'cannot find the mcumgr package root (no package.json above the dashboard module)');
    dir = up;
  }
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** The sources the web build depends on, in a checkout. */
function sourceDirs(root: string): string[] {
  return ['web', 'src/core', 'src/client', 'src/image', 'src/framing', 'src/transport'].map((d) => join(root, d)).filter((d) => existsSync(d));
}

/** True when the build is missing or older than the web app's sources (checkouts only). */
export function webBuildStale(root = packageRoot()): boolean {
  const index = join(root, 'dist', 'web', 'index.html');
  if (!existsSync(join(root, 'web', 'src'))) return !existsSync(index);
  if (!existsSync(index)) return true;
  const built = statSync(index).mtimeMs;
  return sourceDirs(root).some((d) => newestMtime(d) > built);
}

/** The folder to serve, building it first in a checkout when it is stale. */
export async function ensureWebRoot(log: (line: string) => void = () => {}): Promise<string> {
  const root = packageRoot();
  const out = join(root, 'dist', 'web');
  if (webBuildStale(root)) {
    if (!existsSync(join(root, 'web', 'src'))) throw new McuMgrError('NOT_FOUND', `the dashboard's web app is not built (${out} is missing); reinstall the package`);
    log('building the web app (dist/web) ...');
    const { buildWeb } = await import('./web-build.ts');
    await buildWeb({ outDir: out });
  }
  return out;
}
