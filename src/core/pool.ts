/**
 * A bounded pool of async work (portable: no Node built-ins). Used where a fixed number of
 * lanes work through a list: emulated devices starting, fleet jobs, the dashboard's discovery.
 */

/**
 * Runs `work` over `items`, at most `limit` at once, in order of the items; stops taking new items
 * after the first failure and, once the work in progress has ended, throws that failure.
 */
export async function pool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (e) {
        failed ??= { error: e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw failed.error;
}
