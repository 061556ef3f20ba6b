/**
 * Everything a bench run starts is registered here, so that a finished run, a failed run and Ctrl-C all leave
 * no child process and no temp dir behind.
 *
 * - add(): an async release step; run once, in reverse order of registration, by runAll() or by its own handle;
 * - child(): a child process; if this process exits with it still alive it gets SIGKILL (the 'exit' hook);
 * - dir(): a temp dir; removed by the 'exit' hook if nothing removed it before.
 */
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';

interface Task {
  run: () => Promise<void>;
  done: boolean;
}

export class Cleanup {
  private readonly tasks: Task[] = [];
  private readonly children = new Set<ChildProcess>();
  private readonly dirs = new Set<string>();
  private hooked = false;

  /** Register a release step; the returned function runs it now (once). */
  add(run: () => Promise<void>): () => Promise<void> {
    const task: Task = { run, done: false };
    this.tasks.push(task);
    return () => this.runTask(task);
  }

  child(child: ChildProcess): void {
    this.hook();
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
  }

  dir(path: string): () => Promise<void> {
    this.hook();
    this.dirs.add(path);
    return this.add(async () => {
      rmSync(path, { recursive: true, force: true });
      this.dirs.delete(path);
    });
  }

  /** Run every pending step, last registered first; a failing step does not stop the others. */
  async runAll(): Promise<void> {
    for (const task of [...this.tasks].reverse()) await this.runTask(task);
    this.tasks.length = 0;
  }

  /** Ctrl-C / SIGTERM: release everything, then exit 130 / 143. */
  installSignalHandlers(log: (line: string) => void): void {
    const on = (sig: NodeJS.Signals, code: number) => {
      process.once(sig, () => {
        log(`\n${sig}: stopping the driver, simulators and dbus-daemon`);
        const hardStop = setTimeout(() => process.exit(code), 8000);
        void this.runAll().finally(() => {
          clearTimeout(hardStop);
          process.exit(code);
        });
      });
    };
    on('SIGINT', 130);
    on('SIGTERM', 143);
  }

  private async runTask(task: Task): Promise<void> {
    if (task.done) return;
    task.done = true;
    try {
      await task.run();
    } catch {
      // best effort: the exit hook catches what is left
    }
  }

  private hook(): void {
    if (this.hooked) return;
    this.hooked = true;
    process.on('exit', () => {
      for (const c of this.children) {
        try {
          c.kill('SIGKILL');
        } catch {
          // already gone
        }
      }
      for (const d of this.dirs) rmSync(d, { recursive: true, force: true });
    });
  }
}
