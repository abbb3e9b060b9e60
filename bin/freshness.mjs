// Whether the built CLI (dist/cli/main.js) is older than what it is built from: the TypeScript
// sources (files and directories, so that a deleted or renamed file counts) and package.json.
// bin/mcumgr runs the sources through tsx when it is; the tests rebuild the CLI first
// (scripts/build-cli.mjs). An installed package has no sources: never stale.
import { existsSync, statSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

function newestIn(dir) {
  let newest = statSync(dir).mtimeMs;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    const t = entry.isDirectory() ? newestIn(path) : statSync(path).mtimeMs;
    if (t > newest) newest = t;
  }
  return newest;
}

/** The CLI entry the build writes, under the package root. */
export const builtCli = (root) => join(root, 'dist', 'cli', 'main.js');

/** True when the package has sources and the built CLI is missing or older than any of them. */
export function cliBuildIsStale(root) {
  if (!existsSync(join(root, 'src', 'cli', 'main.ts'))) return false;
  try {
    return statSync(builtCli(root)).mtimeMs < Math.max(newestIn(join(root, 'src')), statSync(join(root, 'package.json')).mtimeMs);
  } catch {
    return true;
  }
}
