/**
 * A private PostgreSQL (15 on Debian 12) for one test file: initdb into a temp dir, trust auth, listening on
 * 127.0.0.1 at a free port with its socket in the temp dir, fsync off. As root, the server runs as the
 * `postgres` user (runuser), since PostgreSQL refuses to run as root.
 *
 *   const db = await startPostgres();       // beforeAll
 *   ... db.url('mydb') ...
 *   await db.stop(); await db.start();      // a database restart on the same port and data
 *   await db.close();                       // afterAll: stopped, temp dir removed (idempotent)
 */
import { execFile } from 'node:child_process';
import { chownSync, existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './net.js';

const run = promisify(execFile);

export interface Postgres {
  readonly host: string;
  readonly port: number;
  /** `postgresql://postgres@127.0.0.1:<port>/<database>` */
  url(database?: string): string;
  /** Run SQL as the superuser in `database` (default postgres). */
  query<T extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params?: unknown[],
    database?: string,
  ): Promise<pg.QueryResult<T>>;
  createDatabase(name: string): Promise<string>;
  readonly running: boolean;
  start(): Promise<void>;
  /** Fast shutdown (clients are disconnected) and wait for it. */
  stop(): Promise<void>;
  close(): Promise<void>;
}

export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : undefined;
}

export async function startPostgres(): Promise<Postgres> {
  const bin = postgresBinDir();
  if (!bin)
    throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql; apt-get install postgresql');
  const asRoot = process.getuid?.() === 0;
  const owner = asRoot ? 'postgres' : undefined;
  const dir = await mkdtemp(join(tmpdir(), 'batterybank-pg-'));
  const data = join(dir, 'data');
  const sock = join(dir, 'sock');
  await mkdir(sock);
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: g } = await run('id', ['-g', 'postgres']);
    for (const p of [dir, sock]) chownSync(p, Number(stdout.trim()), Number(g.trim()));
  }
  const as = (cmd: string, args: string[]) =>
    owner ? run('runuser', ['-u', owner, '--', cmd, ...args]) : run(cmd, args);
  await as(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C']);
  const port = await freePort();
  const host = '127.0.0.1';
  const opts = `-p ${port} -k ${sock} -c listen_addresses=${host} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c timezone=UTC`;
  let running = false;
  let closed = false;

  const start = async () => {
    await as(join(bin, 'pg_ctl'), ['-D', data, '-o', opts, '-l', join(dir, 'server.log'), '-w', '-t', '30', 'start']);
    running = true;
  };
  const stop = async () => {
    if (!running) return;
    await as(join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop']).catch(() => undefined);
    running = false;
  };
  const url = (database = 'postgres') => `postgresql://postgres@${host}:${port}/${database}`;
  const query = async <T extends pg.QueryResultRow>(sql: string, params: unknown[] = [], database = 'postgres') => {
    const c = new pg.Client({ connectionString: url(database) });
    await c.connect();
    try {
      return await c.query<T>(sql, params);
    } finally {
      await c.end();
    }
  };
  await start();
  return {
    host,
    port,
    url,
    query,
    createDatabase: async (name: string) => {
      await query(`CREATE DATABASE ${name}`);
      return url(name);
    },
    get running() {
      return running;
    },
    start,
    stop,
    close: async () => {
      if (closed) return;
      closed = true;
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
