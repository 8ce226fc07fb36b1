// virtio_net_hdr accessors and the check the gateway loop runs on every header read from a TUN
// (host/gateway/vnet.ts). Fixtures are byte arrays written out by hand from the layout in
// include/uapi/linux/virtio_net.h (little-endian, as the TUN uses it); the "kernel" ones copy
// the header the kernel wrote for a TCP super-packet in test/tun.test.ts (flags 1, TCPV4,
// gso_size 1460, csum 20/16). Packets behind them are built with the test kit.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  setVnetCsumOffset, setVnetCsumStart, setVnetFlags, setVnetGsoSize, setVnetGsoType, setVnetHdrLen,
  VNET_CSUM_OFFSET, VNET_CSUM_START, VNET_ERR_CSUM, VNET_ERR_FLAGS, VNET_ERR_GSO_NO_CSUM, VNET_ERR_GSO_SIZE,
  VNET_ERR_GSO_TYPE, VNET_ERR_HDR_LEN, VNET_ERR_NOT_IPV4, VNET_ERR_SHORT, VNET_ERROR_NAMES, VNET_F_DATA_VALID,
  VNET_F_NEEDS_CSUM, VNET_FLAGS, VNET_GSO_ECN, VNET_GSO_NONE, VNET_GSO_SIZE, VNET_GSO_TCPV4, VNET_GSO_TCPV6,
  VNET_GSO_TYPE, VNET_GSO_UDP, VNET_GSO_UDP_L4, VNET_HDR_LEN, VNET_HDR_LEN_FIELD, VNET_OK, vnetCsumOffset,
  vnetCsumStart, vnetFlags, vnetGsoSize, vnetGsoType, vnetHdrLen, vnetHeaderCheck, vnetHeaderSupported,
  writeVnetHeaderNone,
} from '../host/gateway/vnet.js';
import { fromHex, hex, icmpPacket, tcpPacket, udpPacket } from './support/packets.js';

const A = '198.18.0.1';
const B = '198.18.0.2';

/** header bytes + packet bytes, at `pad` bytes into a buffer pre-filled with 0xa5. */
function framed(header: string, packet: Uint8Array, pad = 0): { buf: Uint8Array; length: number } {
  const h = fromHex(header);
  const buf = new Uint8Array(pad + h.length + packet.length + 7).fill(0xa5);
  buf.set(h, pad);
  buf.set(packet, pad + h.length);
  return { buf, length: h.length + packet.length };
}

const tcpBulk = tcpPacket({ src: A, dst: B, sport: 40000, dport: 5001, flags: 'A', payload: new Uint8Array(2920) });
const udpBulk = udpPacket({ src: A, dst: B, sport: 40000, dport: 5001, payload: new Uint8Array(2800) });
const ping = icmpPacket({ src: A, dst: B, type: 8, rest: 0x00010001, body: new Uint8Array(56) });

test('layout constants are those of struct virtio_net_hdr', () => {
  assert.is(VNET_HDR_LEN, 10);
  assert.equal([VNET_FLAGS, VNET_GSO_TYPE, VNET_HDR_LEN_FIELD, VNET_GSO_SIZE, VNET_CSUM_START, VNET_CSUM_OFFSET], [0, 1, 2, 4, 6, 8]);
  assert.equal([VNET_F_NEEDS_CSUM, VNET_F_DATA_VALID], [1, 2]);
  assert.equal([VNET_GSO_NONE, VNET_GSO_TCPV4, VNET_GSO_UDP, VNET_GSO_TCPV6, VNET_GSO_UDP_L4, VNET_GSO_ECN], [0, 1, 3, 4, 5, 0x80]);
  assert.is(VNET_ERROR_NAMES.length, VNET_ERR_NOT_IPV4 + 1);
});

test('deconstruct: a kernel TCPV4 header, little-endian fields, at offset 0 and at an odd offset', () => {
  // flags 01, gso 01, hdr_len 0x0042, gso_size 0x05b4 (1460), csum_start 0x0014, csum_offset 0x0010
  for (const pad of [0, 3]) {
    const { buf } = framed('01014200b40514001000', tcpBulk, pad);
    assert.is(vnetFlags(buf, pad), VNET_F_NEEDS_CSUM);
    assert.is(vnetGsoType(buf, pad), VNET_GSO_TCPV4);
    assert.is(vnetHdrLen(buf, pad), 66);
    assert.is(vnetGsoSize(buf, pad), 1460);
    assert.is(vnetCsumStart(buf, pad), 20);
    assert.is(vnetCsumOffset(buf, pad), 16);
  }
  const { buf } = framed('0281ffff0201feff3412', tcpBulk);
  assert.is(vnetFlags(buf), 2);
  assert.is(vnetGsoType(buf), 0x81);
  assert.is(vnetHdrLen(buf), 0xffff);
  assert.is(vnetGsoSize(buf), 0x0102);
  assert.is(vnetCsumStart(buf), 0xfffe);
  assert.is(vnetCsumOffset(buf), 0x1234);
});

test('construct: setters write exactly their bytes, little-endian, and nothing around them', () => {
  const buf = new Uint8Array(16).fill(0xa5);
  setVnetFlags(buf, VNET_F_NEEDS_CSUM, 3);
  setVnetGsoType(buf, VNET_GSO_TCPV4 | VNET_GSO_ECN, 3);
  setVnetHdrLen(buf, 54, 3);
  setVnetGsoSize(buf, 1448, 3);
  setVnetCsumStart(buf, 20, 3);
  setVnetCsumOffset(buf, 16, 3);
  assert.is(hex(buf), 'a5a5a5' + '0181' + '3600' + 'a805' + '1400' + '1000' + 'a5a5a5');
  writeVnetHeaderNone(buf, 3);
  assert.is(hex(buf), 'a5a5a5' + '00'.repeat(10) + 'a5a5a5');
});

test('check: headers the kernel hands a TUN with CSUM|TSO4|USO offload are accepted', () => {
  const cases: Array<[string, string, Uint8Array]> = [
    ['no offload, complete checksums', '00000000000000000000', ping],
    ['DATA_VALID, no segmentation', '02000000000000000000', tcpBulk],
    ['partial checksum on a single TCP segment', '01000000000014001000', tcpBulk],
    ['TCPV4 super-packet', '01014200b40514001000', tcpBulk],
    ['TCPV4 with ECN (CWR on the first segment)', '01814200b40514001000', tcpBulk],
    ['UDP_L4 super-packet', '01051c00b00514000600', udpBulk],
    ['partial UDP checksum, no segmentation', '01000000000014000600', udpBulk],
  ];
  for (const [what, header, pkt] of cases) {
    const { buf, length } = framed(header, pkt);
    assert.is(vnetHeaderCheck(buf, length), VNET_OK, what);
    assert.ok(vnetHeaderSupported(buf, length), what);
  }
  // The same at an offset into a larger buffer (a slot inside shared memory).
  const { buf, length } = framed('01014200b40514001000', tcpBulk, 64);
  assert.is(vnetHeaderCheck(buf, length, 64), VNET_OK);
});

test('check: everything else is refused with its reason, reading nothing past `length`', () => {
  const cases: Array<[string, string, Uint8Array, number, number?]> = [
    ['TCPV6 (the engine is IPv4 only)', '01044200b40514001000', tcpBulk, VNET_ERR_GSO_TYPE],
    ['UFO (IP-fragmenting UDP)', '01031c00b00514000600', udpBulk, VNET_ERR_GSO_TYPE],
    ['unknown gso type', '01074200b40514001000', tcpBulk, VNET_ERR_GSO_TYPE],
    ['ECN without TCP', '01851c00b00514000600', udpBulk, VNET_ERR_GSO_TYPE],
    ['ECN alone', '00800000000000000000', tcpBulk, VNET_ERR_GSO_TYPE],
    ['TCPV4 type on a UDP packet', '01011c00b00514000600', udpBulk, VNET_ERR_GSO_TYPE],
    ['UDP_L4 type on a TCP packet', '01054200b40514001000', tcpBulk, VNET_ERR_GSO_TYPE],
    ['unknown flag bit (RSC_INFO)', '04000000000000000000', tcpBulk, VNET_ERR_FLAGS],
    ['NEEDS_CSUM and DATA_VALID together', '03000000000014001000', tcpBulk, VNET_ERR_FLAGS],
    ['super-packet without NEEDS_CSUM', '00014200b40500000000', tcpBulk, VNET_ERR_GSO_NO_CSUM],
    ['super-packet with gso_size 0', '01014200000014001000', tcpBulk, VNET_ERR_GSO_SIZE],
    ['checksum field past the end', '0100000000000000fe0b', tcpBulk, VNET_ERR_CSUM],
    ['csum_start not after the IPv4 header', '01000000000010001000', tcpBulk, VNET_ERR_CSUM],
    ['csum_offset not TCP\'s field', '01000000000014000600', tcpBulk, VNET_ERR_CSUM],
    ['NEEDS_CSUM on ICMP', '01000000000014000200', ping, VNET_ERR_CSUM],
    ['hdr_len longer than the packet', '0101ffffb40514001000', tcpBulk, VNET_ERR_HDR_LEN],
    ['super-packet that is not IPv4', '01014200b40514001000', Uint8Array.from([0x60, ...tcpBulk.subarray(1)]), VNET_ERR_NOT_IPV4],
    ['header only', '00000000000000000000', new Uint8Array(0), VNET_ERR_SHORT],
  ];
  for (const [what, header, pkt, expected] of cases) {
    const { buf, length } = framed(header, pkt);
    assert.is(vnetHeaderCheck(buf, length), expected, what);
    assert.not.ok(vnetHeaderSupported(buf, length), what);
  }
  // A length that runs past the buffer, or a truncated read of 9 bytes.
  const { buf, length } = framed('00000000000000000000', ping);
  assert.is(vnetHeaderCheck(buf, buf.length + 1), VNET_ERR_SHORT);
  assert.is(vnetHeaderCheck(buf, 9), VNET_ERR_SHORT);
  // The checksum field must fit the bytes read, not the buffer: cut the packet before it.
  const tcp = framed('01000000000014001000', tcpBulk);
  assert.is(vnetHeaderCheck(tcp.buf, VNET_HDR_LEN + 20 + 17), VNET_ERR_CSUM);
  assert.is(vnetHeaderCheck(tcp.buf, VNET_HDR_LEN + 20 + 18), VNET_OK);
  assert.is(vnetHeaderCheck(buf, length), VNET_OK);
});

test.run();
