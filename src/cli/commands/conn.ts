/**
 * `conn add|show|delete`: connection profiles in the Go mcumgr CLI's file and format (see
 * profiles.ts), used by `-c NAME` on any command.
 */
import type { Command } from 'commander';
import { UsageError } from '../../core/errors.ts';
import type { CliContext } from '../context.ts';
import { profileFromArgs, profilesPath, readProfiles, writeProfiles } from '../profiles.ts';

export function registerConnCommands(program: Command, ctx: CliContext): void {
  const conn = program.command('conn').description(`connection profiles (Go mcumgr's, in ${profilesPath()}); use one with -c NAME`);

  conn
    .command('add')
    .description('add or replace a profile: conn add NAME type=udp connstring=127.0.0.1:1337')
    .argument('<name>', 'profile name')
    .argument('<vars...>', 'type=TYPE and connstring=STRING (Go mcumgr keys)')
    .action((name: string, vars: string[]) =>
      ctx.run(async (out) => {
        const profile = profileFromArgs(name, vars);
        const others = (await readProfiles()).filter((p) => p.name !== profile.name);
        await writeProfiles([...others, profile]);
        out.result({ added: profile }, () => `Connection profile ${profile.name} successfully added`);
      }),
    );

  conn
    .command('show')
    .description('show one profile or all of them')
    .argument('[name]', 'profile name')
    .action((name: string | undefined) =>
      ctx.run(async (out) => {
        const profiles = (await readProfiles()).filter((p) => name === undefined || p.name === name).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
        out.result({ profiles }, () =>
          profiles.length === 0
            ? name === undefined
              ? 'No connection profiles found!'
              : `No connection profiles found matching ${name}`
            : ['Connection profiles: ', ...profiles.map((p) => `  ${p.name}: type=${p.type}, connstring='${p.connstring}'`)].join('\n'),
        );
      }),
    );

  conn
    .command('delete')
    .description('delete a profile')
    .argument('<name>', 'profile name')
    .action((name: string) =>
      ctx.run(async (out) => {
        const profiles = await readProfiles();
        if (!profiles.some((p) => p.name === name)) throw new UsageError(`connection profile "${name}" doesn't exist`);
        await writeProfiles(profiles.filter((p) => p.name !== name));
        out.result({ deleted: name }, () => `Connection profile ${name} successfully deleted.`);
      }),
    );
}
