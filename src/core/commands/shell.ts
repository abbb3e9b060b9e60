/** Group 9, shell (smp-spec.md §3.6). */
import { array, int, object, optional, text } from '../schema.ts';
import { Group, command } from './command.ts';

export const shell = {
  exec: command({
    group: Group.SHELL, id: 0, op: 'write', name: 'shell.exec', summary: 'Execute a shell command',
    request: object({ argv: array(text()) }),
    // `ret` is the command's return value; legacy firmware (SHELL_LEGACY_RC_RETURN_CODE) sends `rc`.
    response: object({ o: text(), ret: optional(int()), rc: optional(int()) }),
  }),
} as const;
