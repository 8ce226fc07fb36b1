// The gateway's log lines: one per event, text for people and JSON for machines, debug only
// with --verbose.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLogger } from '../host/gateway/log.js';

const T0 = Date.UTC(2026, 11, 4, 17, 0, 0, 123);

function capture(options: Parameters<typeof createLogger>[0] = {}) {
  const lines: string[] = [];
  const log = createLogger({ ...options, write: (l) => lines.push(l), now: () => T0 });
  return { log, lines };
}

test('text: one line per event, timestamp, pid, level only when it is not info', () => {
  const { log, lines } = capture();
  log.info('ready', 'forwarding on wvs0');
  log.warn('table-full', 'connection table full');
  log.error('reload', 'refused');
  log.debug('batch', 'hidden without --verbose');
  assert.equal(lines, [
    `2026-12-04T17:00:00.123Z wasmvs[${process.pid}]: ready: forwarding on wvs0\n`,
    `2026-12-04T17:00:00.123Z wasmvs[${process.pid}]: WARN table-full: connection table full\n`,
    `2026-12-04T17:00:00.123Z wasmvs[${process.pid}]: ERROR reload: refused\n`,
  ]);
});

test('json: one object per line with time, level, event, msg and fields; verbose shows debug', () => {
  const { log, lines } = capture({ format: 'json', verbose: true });
  log.info('host', 'ip route add 198.18.100.10/32 dev wvs0 proto 87', { tun: 'wvs0' });
  log.debug('batch', 'detail');
  assert.is(lines.length, 2);
  for (const l of lines) assert.ok(l.endsWith('\n') && !l.slice(0, -1).includes('\n'));
  assert.equal(JSON.parse(lines[0]), { time: '2026-12-04T17:00:00.123Z', level: 'info', event: 'host', msg: 'ip route add 198.18.100.10/32 dev wvs0 proto 87', tun: 'wvs0' });
  assert.is(JSON.parse(lines[1]).level, 'debug');
});

test.run();
