/** Child processes in tests: start one and wait for its "ready" line; wait for its exit. */
import { type ChildProcess, spawn } from 'node:child_process';

/**
 * Spawn `cmd args` and resolve once a line of its output matches `ready`. `out` collects every line (stderr
 * lines prefixed `stderr: `); rejects with that output when the process exits first or after `timeoutMs`.
 */
export function startUntil(
  cmd: string,
  args: readonly string[],
  opts: { cwd?: string; env: NodeJS.ProcessEnv; timeoutMs?: number },
  ready: RegExp,
): Promise<{ child: ChildProcess; out: string[] }> {
  const child = spawn(cmd, args, {
    ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    env: opts.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${ready} in: ${out.join('\n')}`)), opts.timeoutMs ?? 20_000);
    const lines = (prefix: string) => {
      let buf = '';
      return (d: Buffer) => {
        buf += d.toString();
        const parts = buf.split('\n');
        buf = parts.pop() ?? '';
        for (const l of parts) {
          out.push(prefix + l);
          if (ready.test(l)) {
            clearTimeout(timer);
            resolve({ child, out });
          }
        }
      };
    };
    child.stdout?.on('data', lines(''));
    child.stderr?.on('data', lines('stderr: '));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited ${code} before ready: ${out.join('\n')}`));
    });
  });
}

/** The exit code of `child` (at once when it has already exited). */
export function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}
