// IPv4 addresses and ports as the host sees them, and their wire-order form for the WASM ABI.
//
// The data plane keeps addresses and ports exactly as they sit in the packet ("wire order"):
// it loads them with little-endian u32/u16 loads, so the bytes 202.103.106.5 read as
// 0x056a67ca. The host speaks numbers in the usual big-endian reading (0xca676a05) and
// converts only at the ABI boundary, with wire32/wire16 below.
import { WasmvsError } from './errors.js';

export type Protocol = 'tcp' | 'udp';

export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

export function protocolNumber(protocol: Protocol): number {
  return protocol === 'tcp' ? IPPROTO_TCP : IPPROTO_UDP;
}

export function parseProtocol(text: string): Protocol {
  if (text === 'tcp' || text === 'udp') return text;
  throw new WasmvsError('WASMVS_BAD_PROTOCOL', `protocol "${text}" is not tcp or udp`);
}

const DOTTED_QUAD = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** "a.b.c.d" -> unsigned 32-bit number, big-endian reading. Rejects anything else. */
export function parseIPv4(text: string): number {
  const m = DOTTED_QUAD.exec(text);
  if (m) {
    const octets = [m[1], m[2], m[3], m[4]].map(Number);
    if (octets.every((o) => o <= 255)) {
      return ((octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]) >>> 0;
    }
  }
  throw new WasmvsError('WASMVS_BAD_ADDRESS', `"${text}" is not an IPv4 address`);
}

export function formatIPv4(addr: number): string {
  return `${addr >>> 24}.${(addr >>> 16) & 0xff}.${(addr >>> 8) & 0xff}.${addr & 0xff}`;
}

/** Validates a port number; `allowZero` for the places ipvsadm accepts port 0. */
export function checkPort(port: number, what = 'port', allowZero = true): number {
  if (!Number.isInteger(port) || port < 0 || port > 65535 || (!allowZero && port === 0)) {
    throw new WasmvsError('WASMVS_BAD_PORT', `${what} ${port} is not ${allowZero ? '' : 'a non-zero '}integer from 0 to 65535`);
  }
  return port;
}

export function parsePort(text: string, what = 'port'): number {
  if (!/^\d{1,5}$/.test(text)) throw new WasmvsError('WASMVS_BAD_PORT', `${what} "${text}" is not a number from 0 to 65535`);
  return checkPort(Number(text), what);
}

/** "a.b.c.d:port" -> [addr, port]. */
export function parseEndpoint(text: string): [number, number] {
  if (text.startsWith('[')) throw new WasmvsError('WASMVS_UNSUPPORTED', `"${text}": IPv6 services are not supported`);
  const colon = text.lastIndexOf(':');
  if (colon < 0) throw new WasmvsError('WASMVS_BAD_PORT', `"${text}" has no ":port"`);
  return [parseIPv4(text.slice(0, colon)), parsePort(text.slice(colon + 1))];
}

export function formatEndpoint(addr: number, port: number): string {
  return `${formatIPv4(addr)}:${port}`;
}

/** Big-endian-read address -> the u32 a little-endian load of its wire bytes yields. */
export function wire32(addr: number): number {
  return (((addr & 0xff) << 24) | ((addr & 0xff00) << 8) | ((addr >>> 8) & 0xff00) | (addr >>> 24)) >>> 0;
}

/** Port -> the u16 a little-endian load of its wire bytes yields (and back: it is an involution). */
export function wire16(port: number): number {
  return ((port & 0xff) << 8) | ((port >>> 8) & 0xff);
}
