/**
 * The emulated device's shell: a registry of commands by word path (`kernel version`,
 * `net iface`), as Zephyr's `SHELL_CMD_REGISTER` / `SHELL_SUBCMD_SET_CREATE` build one. The shell
 * management group (group 9) runs argv through it and returns the output and return code, the
 * way Zephyr's dummy shell backend captures them; a serial console can feed text lines to
 * {@link ShellRegistry.executeLine}.
 *
 * Behaviour follows Zephyr's shell where it is visible on the wire:
 * - an unknown command prints `<word>: command not found` and returns -ENOEXEC (-8);
 * - a word that only groups subcommands (`kernel`) prints its subcommands and returns 1
 *   (SHELL_CMD_HELP_PRINTED);
 * - `help` lists the top-level commands.
 *
 * Host commands: off by default. {@link registerHostCommands} adds `host <program> [args]` for an
 * explicit allowlist of programs, run without a shell (no globbing, no pipes), with a timeout and
 * an output limit.
 */
import { execFile } from 'node:child_process';

/** What a shell command gets. */
export interface ShellCommandContext {
  /** argv from the command word on: for `kernel version x`, `['version', 'x']` (argv[0] is the command's own word). */
  readonly argv: readonly string[];
  /** Appends text to the output (no newline added). */
  print(text: string): void;
  /** Appends a line of text. */
  println(text: string): void;
  /** Bytes of output the caller keeps (the rest is cut), when it says; long listings may shorten themselves to fit. */
  readonly maxOutput?: number;
  /** Aborted when the device stops: a command that waits (a host program) gives up. */
  readonly signal?: AbortSignal;
}

/** Runs a command; returns its return code (0 success, negative errno on failure). */
export type ShellCommandFn = (ctx: ShellCommandContext) => number | void | Promise<number | void>;

export const ENOEXEC = -8;
export const SHELL_CMD_HELP_PRINTED = 1;

interface Node {
  word: string;
  help: string;
  handler: ShellCommandFn | undefined;
  children: Map<string, Node>;
}

export interface ShellResult {
  output: string;
  ret: number;
}

export class ShellRegistry {
  private readonly root: Node = { word: '', help: '', handler: undefined, children: new Map() };

  /**
   * Registers a command at a word path (`'kernel version'` or `['kernel', 'version']`). Parent
   * words are created as needed. Returns a function that removes the command.
   */
  register(path: string | readonly string[], handler: ShellCommandFn, help = ''): () => void {
    const words = typeof path === 'string' ? path.trim().split(/\s+/) : [...path];
    if (words.length === 0 || words.some((w) => w === '' || /\s/.test(w))) throw new RangeError(`bad shell command path ${JSON.stringify(path)}`);
    let node = this.root;
    for (const w of words) {
      let next = node.children.get(w);
      if (!next) {
        next = { word: w, help: '', handler: undefined, children: new Map() };
        node.children.set(w, next);
      }
      node = next;
    }
    if (node.handler) throw new RangeError(`shell command ${JSON.stringify(words.join(' '))} is already registered`);
    node.handler = handler;
    node.help = help;
    const target = node;
    return () => {
      if (target.handler === handler) target.handler = undefined;
    };
  }

  /** Sets the help text of a word that groups subcommands (`kernel`). */
  describe(path: string, help: string): void {
    let node = this.root;
    for (const w of path.trim().split(/\s+/)) {
      const next = node.children.get(w);
      if (!next) throw new RangeError(`no shell command ${JSON.stringify(path)}`);
      node = next;
    }
    node.help = help;
  }

  /** Top-level command words with their help, sorted. */
  list(): Array<{ word: string; help: string }> {
    return [...this.root.children.values()].map((n) => ({ word: n.word, help: n.help })).sort((a, b) => a.word.localeCompare(b.word));
  }

  /**
   * Runs argv (already split) and collects the output, at most `maxOutput` characters of it
   * (the dummy backend's buffer: what does not fit is never kept). Never throws.
   */
  async execute(argv: readonly string[], options: { maxOutput?: number; signal?: AbortSignal } = {}): Promise<ShellResult> {
    let output = '';
    const cap = options.maxOutput ?? Infinity;
    const append = (t: string): void => {
      if (output.length < cap) output += output.length + t.length <= cap ? t : t.slice(0, cap - output.length);
    };
    const ctx = (args: readonly string[]): ShellCommandContext => ({
      argv: args,
      print: append,
      println: (t) => append(t + '\n'),
      ...(options.maxOutput !== undefined ? { maxOutput: options.maxOutput } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    if (argv.length === 0) return { output: '', ret: 0 };
    let node = this.root;
    let i = 0;
    while (i < argv.length) {
      const next = node.children.get(argv[i]!);
      if (!next) break;
      node = next;
      i++;
    }
    if (node === this.root) {
      return { output: `${argv[0]}: command not found\n`, ret: ENOEXEC };
    }
    if (!node.handler) {
      const c = ctx(argv.slice(i - 1));
      if (i < argv.length) {
        c.println(`${argv[i]}: unknown parameter`);
        return { output, ret: ENOEXEC };
      }
      c.println(`${argv.slice(0, i).join(' ')}${node.help ? ` - ${node.help}` : ''}`);
      c.println('Subcommands:');
      for (const child of [...node.children.values()].sort((a, b) => a.word.localeCompare(b.word))) c.println(`  ${child.word.padEnd(12)}: ${child.help}`);
      return { output, ret: SHELL_CMD_HELP_PRINTED };
    }
    try {
      const r = await node.handler(ctx(argv.slice(i - 1)));
      return { output, ret: typeof r === 'number' ? r : 0 };
    } catch (e) {
      output += `${argv.slice(0, i).join(' ')}: ${e instanceof Error ? e.message : String(e)}\n`;
      return { output, ret: ENOEXEC };
    }
  }

  /** Splits a command line as Zephyr's shell does (whitespace, double quotes, backslash escapes) and runs it. */
  executeLine(line: string, options: { maxOutput?: number; signal?: AbortSignal } = {}): Promise<ShellResult> {
    return this.execute(splitShellLine(line), options);
  }
}

/** Splits a line into words: whitespace separates, "double quotes" group, backslash escapes. */
export function splitShellLine(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (ch === '\\' && i + 1 < line.length) {
      cur += line[++i];
      inWord = true;
    } else if (ch === '"') {
      quoted = !quoted;
      inWord = true;
    } else if (!quoted && /\s/.test(ch)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (inWord) out.push(cur);
  return out;
}

export interface HostCommandOptions {
  /** Program names allowed to run (looked up in PATH), e.g. `['uname', 'date']`. Nothing else runs. */
  allow: readonly string[];
  /** Time limit per command (default 5000 ms); the program is killed after it. */
  timeoutMs?: number;
  /** Output limit in bytes (default 64 KiB). */
  maxOutput?: number;
}

/**
 * The names that are no plain program name: empty, absolute or relative paths (any `/` or `\`),
 * `.` and `..`, names with white space or starting with `-`. Only a plain name looked up in PATH
 * is allowed, so that the list says exactly which programs run.
 */
export function badHostProgramNames(names: readonly string[]): string[] {
  return names.filter((p) => p === '' || p === '.' || p === '..' || p.includes('/') || p.includes('\\') || p.startsWith('-') || /\s/.test(p));
}

/**
 * Adds `host <program> [args…]`: runs an allowlisted host program without a shell. Programs
 * not on the list answer `host: <program> is not allowed` with -EPERM (-1).
 */
export function registerHostCommands(shell: ShellRegistry, options: HostCommandOptions): () => void {
  const allow = new Set(options.allow);
  const bad = badHostProgramNames([...allow]);
  if (bad.length > 0) throw new RangeError(`host commands are given by plain program name (looked up in PATH), not ${bad.map((b) => JSON.stringify(b)).join(', ')}`);
  return shell.register(
    'host',
    ({ argv, print, println, maxOutput, signal }) => {
      const program = argv[1];
      if (program === undefined) {
        println(`usage: host <program> [args]; allowed: ${[...allow].join(', ') || '(none)'}`);
        return ENOEXEC;
      }
      if (!allow.has(program)) {
        println(`host: ${program} is not allowed`);
        return -1;
      }
      return new Promise<number>((resolve) => {
        // The program's output is kept only up to what the shell keeps: a program that prints more is stopped.
        const maxBuffer = Math.min(options.maxOutput ?? 65536, maxOutput ?? Infinity);
        execFile(program, argv.slice(2), { timeout: options.timeoutMs ?? 5000, maxBuffer, shell: false, windowsHide: true, ...(signal ? { signal } : {}) }, (err, stdout, stderr) => {
          print(String(stdout) + String(stderr));
          if (!err) return resolve(0);
          const code = (err as { code?: unknown }).code;
          if (typeof code === 'number') return resolve(code);
          println(`host: ${program}: ${err.message}`);
          resolve(ENOEXEC);
        });
      });
    },
    `run an allowed host program (${[...allow].join(', ')})`,
  );
}
