// The FTP helper through the gateway's loop over a FakeDevice (no root): a rewritten 227 is
// written at its new length, with and without vnet headers, and many conversations in one
// burst (batches holding resized and unresized packets together); --ftp-ports parsing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseFtpPorts } from '../host/cli/gateway.js';
import { UsageError } from '../host/cli/usage.js';
import { FakeDevice } from '../host/gateway/device.js';
import { Gateway } from '../host/gateway/gateway.js';
import { ftpConversation, reply227 } from './support/ftp-traffic.js';
import { hex } from './support/packets.js';

const VIP = '198.18.100.30';
const RIP = '198.19.0.5';
const RULES = `-A -t ${VIP}:21 -s rr\n-a -t ${VIP}:21 -r ${RIP}:21 -m\n`;

async function written(device: FakeDevice, n: number): Promise<Uint8Array[]> {
  const until = Date.now() + 3000;
  while (device.written.length < n) {
    if (Date.now() > until) throw new Error(`only ${device.written.length} of ${n} packets written`);
    await new Promise((r) => setTimeout(r, 2));
  }
  return device.written.slice(0, n);
}

function conversation(cport: number) {
  return ftpConversation({
    client: '198.18.7.7', cport, vip: VIP, vport: 21, server: RIP, sport: 21,
    steps: [
      { from: 'server', text: '220 hi\r\n' }, { from: 'client', text: 'PASV\r\n' },
      { from: 'server', text: reply227(RIP, 50000 + cport % 1000), seen: reply227(VIP, 50000 + cport % 1000) }, { ack: 'client' },
      { from: 'client', text: 'QUIT\r\n' }, { from: 'server', text: '221 Goodbye.\r\n' },
    ],
  });
}

for (const headerLen of [0, 10]) {
  test(`gateway (vnet header ${headerLen}): 40 FTP sessions in one burst, every packet written at its length, the 227s with the VIP`, async () => {
    const device = new FakeDevice({ headerLen, batchSize: 16 });
    const gw = await Gateway.start({ rules: RULES, device });
    try {
      // Interleaved: batches of 16 hold resized 227s beside packets of other sessions.
      const sessions = Array.from({ length: 40 }, (_, i) => conversation(41000 + i));
      const expected: string[] = [];
      for (let k = 0; k < sessions[0].length; k++) {
        for (const s of sessions) {
          const p = s[k];
          const hdr = new Uint8Array(headerLen); // flags 0: complete checksums
          const frame = new Uint8Array(headerLen + p.received.length);
          frame.set(hdr);
          frame.set(p.received, headerLen);
          device.inject(frame);
          expected.push(hex(p.sent));
        }
      }
      const out = await written(device, expected.length);
      assert.equal(out.map((f) => hex(f.subarray(headerLen))), expected);
      assert.is(gw.engine.counters().ftp.rewritten, 40);
    } finally {
      await gw.stop();
    }
  });
}

test('gateway: --ftp-ports [] (engine option) leaves the 227 alone', async () => {
  const device = new FakeDevice({ batchSize: 16 });
  const gw = await Gateway.start({ rules: RULES, device, engine: { ftpPorts: [] } });
  try {
    const s = conversation(42000);
    for (const p of s) device.inject(p.received);
    const out = await written(device, s.length);
    const text = new TextDecoder().decode(out[5].subarray(40));
    assert.is(text, reply227(RIP, 50000));
  } finally {
    await gw.stop();
  }
});

test('--ftp-ports LIST: ports, comma-separated; empty turns the helper off; bad lists are usage errors naming the problem', () => {
  assert.equal(parseFtpPorts('21'), [21]);
  assert.equal(parseFtpPorts('21,2121, 990'), [21, 2121, 990]);
  assert.equal(parseFtpPorts(''), []);
  for (const [text, message] of [
    ['21,x', '--ftp-ports takes ports from 1 to 65535, comma-separated (got "x")'],
    ['0', '--ftp-ports takes ports from 1 to 65535, comma-separated (got "0")'],
    ['65536', '--ftp-ports takes ports from 1 to 65535, comma-separated (got "65536")'],
    ['21,,22', '--ftp-ports takes ports from 1 to 65535, comma-separated (got "")'],
    ['21,21', '--ftp-ports lists port 21 twice'],
  ] as const) {
    try {
      parseFtpPorts(text);
      assert.unreachable(text);
    } catch (err) {
      assert.instance(err, UsageError);
      assert.is((err as Error).message, message);
    }
  }
});

test.run();
