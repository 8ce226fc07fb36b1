// listServices() carries what every ipvsadm listing prints per real server, read straight
// from the tables: thresholds (-x/-y, --thresholds) and the persistence templates naming it
// (--persistent-conn's PersistConn), counted by the data plane (DEST_PERSIST).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Engine } from '../host/engine/engine.js';
import { tcpPacket } from './support/packets.js';

const VIP = '198.18.100.10';
const svc = { protocol: 'tcp' as const, vaddr: VIP, vport: 80 };

test('thresholds and persistence templates per real server', () => {
  const e = new Engine({ connCapacity: 64, slotCount: 4 });
  e.addService({ ...svc, scheduler: 'rr', persistence: 10 });
  e.addDest(svc, { daddr: '198.18.1.2', upperThreshold: 100, lowerThreshold: 10 });
  const dest = () => e.listServices()[0].dests[0];
  assert.equal([dest().upperThreshold, dest().lowerThreshold, dest().persistConns], [100, 10, 0]);
  const T0 = 1000;
  for (const [i, client] of ['198.18.0.2', '198.18.0.3', '198.18.0.3'].entries()) {
    e.processPacket(tcpPacket({ src: client, dst: VIP, sport: 4000 + i, dport: 80, flags: 'S' }), T0 + i);
  }
  assert.is(dest().persistConns, 2, 'one template per client');
  e.editDest(svc, { daddr: '198.18.1.2', upperThreshold: 0 });
  assert.equal([dest().upperThreshold, dest().lowerThreshold], [0, 0], '-e sends the whole server');
  e.expire(T0 + 200_000); // connections (SYN_RECV 60 s) and then their templates (10 s) expire
  assert.is(dest().persistConns, 0);
});

test.run();
