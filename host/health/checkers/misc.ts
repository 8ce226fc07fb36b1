// MISC_CHECK (keepalived/check/check_misc.c): runs misc_path (a program and its arguments, no
// shell) as `user` when given, in a process group of its own. Exit 0 is up and 1 is down;
// with misc_dynamic 2..255 is up with weight status - 2 (the state machine applies it). Past
// misc_timeout the group gets SIGTERM and, 2 s later if still there, SIGKILL (as
// misc_check_child_thread's SCRIPT_STATE_REQUESTING/FORCING_TERMINATION); that counts as a
// failure ("timed out"). Output is discarded.
import { spawn } from 'node:child_process';
import type { MiscCheckConfig } from '../config.js';
import type { CheckResult } from '../state.js';
import { describeError, seconds } from './tcp.js';

/** Between SIGTERM and SIGKILL (check_misc.c: timeout = 2). */
export const KILL_GRACE_MS = 2000;

/** Signals a whole process group, ignoring one that is already gone. */
function killGroup(pid: number, signal: NodeJS.Signals): void {
  try { process.kill(-pid, signal); } catch { /* gone */ }
}

export function runMiscCheck(cfg: MiscCheckConfig, signal?: AbortSignal): Promise<CheckResult> {
  return new Promise((resolve) => {
    let settled = false;
    let timedOut = false;
    let term: NodeJS.Timeout | undefined;
    let kill: NodeJS.Timeout | undefined;
    const done = (r: CheckResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(term);
      clearTimeout(kill);
      signal?.removeEventListener('abort', onAbort);
      resolve(r);
    };
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(cfg.command[0], cfg.command.slice(1), {
        stdio: 'ignore', detached: true, ...(cfg.user ? { uid: cfg.user.uid, gid: cfg.user.gid } : {}),
      });
    } catch (err) {
      done({ ok: false, detail: `cannot run ${cfg.command[0]}: ${describeError(err)}` });
      return;
    }
    const stopChild = (): void => {
      if (child.pid === undefined) return;
      killGroup(child.pid, 'SIGTERM');
      kill = setTimeout(() => { if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL'); }, KILL_GRACE_MS);
    };
    const onAbort = (): void => { stopChild(); };
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    term = setTimeout(() => { timedOut = true; stopChild(); }, cfg.timeout);
    child.on('error', (err) => done({ ok: false, detail: `cannot run ${cfg.command[0]}: ${describeError(err)}` }));
    child.on('exit', (code, sig) => {
      // A script killed by our SIGTERM may have left children: make sure the group is gone.
      if (child.pid !== undefined && sig !== null) killGroup(child.pid, 'SIGKILL');
      if (timedOut) { done({ ok: false, detail: `timed out after ${seconds(cfg.timeout)}`, timedOut: true }); return; }
      if (code === null) { done({ ok: false, detail: `failed due to signal ${sig}` }); return; }
      const ok = code === 0 || (cfg.dynamic && code >= 2 && code <= 255);
      done({ ok, detail: `exited with status ${code}`, exitCode: code });
    });
  });
}
