// Writes examples/in.pcap: the seed's flows as a director sees them on Ethernet, for the
// README's replay command (npm run example:pcap re-makes it; test/example.test.ts runs it).
// Three HTTP sessions to VIP:80 (wrr 1:2 sends them to .3:8000, .2:80, .3:8000), an FTP
// login to :21, a SYN to :22 (no service: the director's to refuse) and a ping of the VIP.
import { writeFileSync } from 'node:fs';
import { icmpPacket, tcpPacket } from '../test/support/packets.js';
import { LINKTYPE_ETHERNET, linkFrame, pcapFile, records, tcpSession, type TimedPacket } from '../test/support/traffic.js';

const VIP = '202.103.106.5';
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const packets: TimedPacket[] = [
  ...tcpSession({ client: '202.100.1.2', cport: 3456, vip: VIP, vport: 80, server: '172.16.0.3', sport: 8000, startMs: T0, close: 'client' }),
  ...tcpSession({ client: '202.100.1.7', cport: 51001, vip: VIP, vport: 80, server: '172.16.0.2', sport: 80, startMs: T0 + 200, close: 'server' }),
  ...tcpSession({ client: '202.100.1.9', cport: 51002, vip: VIP, vport: 80, server: '172.16.0.3', sport: 8000, startMs: T0 + 400, close: 'none' }),
  ...tcpSession({ client: '202.100.1.11', cport: 52000, vip: VIP, vport: 21, server: '172.16.0.3', sport: 21, startMs: T0 + 600, close: 'none', messages: [] }),
  { time: T0 + 800, dir: 'in', packet: tcpPacket({ src: '202.100.1.13', dst: VIP, sport: 53000, dport: 22, flags: 'S', seq: 1 }) } as TimedPacket,
  { time: T0 + 900, dir: 'in', packet: icmpPacket({ src: '202.100.1.2', dst: VIP, type: 8, rest: 0x12340001 }) } as TimedPacket,
].sort((a, b) => a.time - b.time);
const out = new URL('../examples/in.pcap', import.meta.url);
writeFileSync(out, pcapFile(records(packets, { linkType: LINKTYPE_ETHERNET, frame: (p) => linkFrame(p, LINKTYPE_ETHERNET) }), { linkType: LINKTYPE_ETHERNET }));
console.log(`${packets.length} packets -> ${out.pathname}`);
