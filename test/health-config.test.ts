// The keepalived.conf reader (host/health/lexer.ts, config.ts) against files written from
// keepalived.conf(5): every LVS keyword wasmvs takes, its defaults as keepalived's
// check_parser.c / check_data.c set them, includes and groups, and each error with its file
// and line. Files are written to a fresh temporary directory per test.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadKeepalived, type HttpCheckConfig, type MiscCheckConfig, type UdpCheckConfig, type DnsCheckConfig, type TcpCheckConfig } from '../host/health/config.js';
import { WasmvsError } from '../host/errors.js';

let dir: string;
test.before.each(() => { dir = mkdtempSync(join(tmpdir(), 'wasmvs-ka-')); });
test.after.each(() => { rmSync(dir, { recursive: true, force: true }); });

function write(name: string, text: string): string {
  const p = join(dir, name);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, text);
  return p;
}

/** Loads `text` as keepalived.conf and expects a refusal with `code` at `line` matching `re`. */
function refuses(text: string, line: number, re: RegExp, code = 'WASMVS_KEEPALIVED_CONFIG'): void {
  const file = write('keepalived.conf', text);
  try {
    loadKeepalived(file);
  } catch (err) {
    assert.instance(err, WasmvsError);
    assert.is((err as WasmvsError).code, code, (err as Error).message);
    assert.ok((err as Error).message.startsWith(`${file}:${line}: `), `expected ${file}:${line}: in ${(err as Error).message}`);
    assert.match((err as Error).message, re);
    return;
  }
  assert.unreachable(`accepted:\n${text}`);
}

const FULL = `! Configuration File for keepalived (keepalived.conf(5) examples, LVS part)
global_defs {
   notification_email { admin@example.com }
   router_id LVS_DEVEL
}
vrrp_instance VI_1 {
    state MASTER
    virtual_router_id 51
}
virtual_server 198.18.100.10 80 {
    delay_loop 6
    lb_algo wrr
    lb_kind NAT
    persistence_timeout
    persistence_granularity 255.255.255.0
    protocol TCP
    connect_timeout 3
    retry 2
    delay_before_retry 0.5
    warmup 2
    quorum 2
    hysteresis 1
    quorum_up "/usr/local/bin/up.sh arg"
    quorum_down /usr/local/bin/down.sh
    alpha
    omega
    inhibit_on_failure
    virtualhost www.example.com
    smtp_alert
    ha_suspend
    sorry_server 198.18.1.9 8080
    sorry_server_inhibit
    real_server 198.18.1.2 80 {
        weight 3
        uthreshold 100
        lthreshold 10
        notify_up "/usr/local/bin/rs.sh up"
        notify_down "/usr/local/bin/rs.sh down"
        HTTP_GET {
            url {
              path /health
              digest 9b3a0c85a887a256d6939da88aabd8cd
              status_code 200 300-302
              virtualhost check.example.com
              regex "^ok"
              regex_options caseless
            }
            url { path /two }
            connect_timeout 2
            connect_port 8080
            bindto 198.18.1.1
            bind_port 40000
            http_protocol 1.1
            log_all_failures
        }
    }
    real_server 198.18.1.3 {
        alpha off
        inhibit_on_failure no
        TCP_CHECK {
            retry 4
            delay_loop 2
        }
        MISC_CHECK {
            misc_path "/bin/sh -c 'exit 0'"
            misc_timeout 7
            misc_dynamic
            user root
        }
    }
}
virtual_server 198.18.100.10 53 {
    lvs_sched rr
    lvs_method NAT
    protocol UDP
    ops
    real_server 198.18.1.2 53 {
        UDP_CHECK {
            payload 00 01 02
            require_reply 0001
            min_reply_length 2
            max_reply_length 64
        }
        DNS_CHECK {
            type A
            name www.example.com
        }
    }
}
`;

test('every LVS keyword of keepalived.conf(5); skipped blocks and ignored keywords are noted once', () => {
  const cfg = loadKeepalived(write('keepalived.conf', FULL));
  assert.is(cfg.virtualServers.length, 2);
  const [web, dns] = cfg.virtualServers;
  assert.is(web.name, '[198.18.100.10]:tcp:80');
  assert.equal(web.services, [{ protocol: 'tcp', vaddr: '198.18.100.10', vport: 80, scheduler: 'wrr', persistence: 360, netmask: '255.255.255.0' }]);
  assert.is(web.delayLoop, 6000);
  assert.is(web.quorum, 2);
  assert.is(web.hysteresis, 1);
  assert.equal(web.quorumUp, ['/usr/local/bin/up.sh', 'arg']);
  assert.equal(web.quorumDown, ['/usr/local/bin/down.sh']);
  assert.is(web.omega, true);
  assert.equal(web.sorry, { daddr: '198.18.1.9', dport: 8080, inhibit: true });
  const [rs1, rs2] = web.realServers;
  assert.equal([rs1.daddr, rs1.dport, rs1.weight, rs1.inhibit, rs1.alpha, rs1.upperThreshold, rs1.lowerThreshold], ['198.18.1.2', 80, 3, true, true, 100, 10]);
  assert.equal(rs1.notifyUp, ['/usr/local/bin/rs.sh', 'up']);
  const http = rs1.checkers[0] as HttpCheckConfig;
  assert.is(http.type, 'HTTP_GET');
  assert.equal(http.target, { ip: '198.18.1.2', port: 8080, bindto: '198.18.1.1', bindPort: 40000 });
  assert.equal([http.connectTimeout, http.retry, http.delayBeforeRetry, http.delayLoop, http.warmup, http.alpha, http.protocol, http.logAllFailures], [2000, 2, 500, 6000, 2000, true, '1.1', true]);
  assert.is(http.virtualhost, 'www.example.com'); // the virtual server's, inherited
  assert.equal(http.urls[0], { path: '/health', statusCodes: [[200, 200], [300, 302]], digest: '9b3a0c85a887a256d6939da88aabd8cd', virtualhost: 'check.example.com', regex: { source: '^ok', flags: 'i' } });
  assert.equal(http.urls[1], { path: '/two', statusCodes: [[200, 299]] });
  // A real server without a port takes the virtual server's; alpha/inhibit with a BOOL.
  assert.equal([rs2.dport, rs2.weight, rs2.alpha, rs2.inhibit], [0, 1, false, false]);
  const tcp = rs2.checkers[0] as TcpCheckConfig;
  assert.equal([tcp.target.port, tcp.retry, tcp.delayLoop, tcp.warmup, tcp.delayBeforeRetry, tcp.connectTimeout], [80, 4, 2000, 2000, 500, 3000]);
  const misc = rs2.checkers[1] as MiscCheckConfig;
  assert.equal(misc.command, ['/bin/sh', '-c', 'exit 0']);
  assert.equal([misc.timeout, misc.dynamic, misc.user?.uid, misc.retry], [7000, true, 0, 2]);
  assert.equal(dns.services[0], { protocol: 'udp', vaddr: '198.18.100.10', vport: 53, scheduler: 'rr', onePacket: true });
  const udp = dns.realServers[0].checkers[0] as UdpCheckConfig;
  assert.equal([udp.payload, udp.requireReply, udp.reply, udp.minReplyLength, udp.maxReplyLength], ['000102', true, '0001', 2, 64]);
  const d = dns.realServers[0].checkers[1] as DnsCheckConfig;
  assert.equal([d.qtype, d.name, d.retry, d.delayBeforeRetry], [1, 'www.example.com', 3, 60000]);
  const notes = cfg.notes.join('\n');
  assert.match(notes, /global_defs skipped/);
  assert.match(notes, /vrrp_instance skipped/);
  assert.match(notes, /smtp_alert ignored/);
  assert.match(notes, /ha_suspend ignored/);
});

test("defaults are keepalived's: delay_loop 60, connect_timeout 5, weight 1, retry 1 (DNS 3, MISC 0), delay_before_retry 1 (HTTP 3), warmup = delay_loop, quorum 1; no protocol is UDP", () => {
  const cfg = loadKeepalived(write('k.conf', `virtual_server 198.18.100.10 80 {
  real_server 198.18.1.2 80 {
    TCP_CHECK { }
    HTTP_GET { url { path / } }
    SSL_GET { url { path / } }
    DNS_CHECK { }
    MISC_CHECK { misc_path /bin/true }
    UDP_CHECK { }
  }
}`));
  const vs = cfg.virtualServers[0];
  assert.is(vs.services[0].protocol, 'udp');
  assert.match(cfg.notes.join('\n'), /no protocol set - defaulting to UDP/);
  assert.match(cfg.notes.join('\n'), /no scheduler set, setting default 'wlc'/);
  assert.is(vs.services[0].scheduler, 'wlc');
  assert.equal([vs.delayLoop, vs.quorum, vs.hysteresis], [60000, 1, 0]);
  assert.is(vs.realServers[0].weight, 1);
  const byType = Object.fromEntries(vs.realServers[0].checkers.map((c) => [c.type, c]));
  const tcp = byType.TCP_CHECK as TcpCheckConfig;
  assert.equal([tcp.retry, tcp.delayBeforeRetry, tcp.warmup, tcp.delayLoop, tcp.connectTimeout, tcp.alpha], [1, 1000, 60000, 60000, 5000, false]);
  assert.equal([byType.HTTP_GET.retry, byType.HTTP_GET.delayBeforeRetry], [1, 3000]);
  assert.equal([byType.SSL_GET.retry, byType.SSL_GET.delayBeforeRetry], [1, 3000]);
  assert.equal([byType.DNS_CHECK.retry, byType.DNS_CHECK.delayBeforeRetry, (byType.DNS_CHECK as DnsCheckConfig).qtype, (byType.DNS_CHECK as DnsCheckConfig).name], [3, 60000, 6, '']);
  assert.equal([byType.MISC_CHECK.retry, (byType.MISC_CHECK as MiscCheckConfig).timeout], [0, 60000]);
  assert.equal([(byType.UDP_CHECK as UdpCheckConfig).minReplyLength, (byType.UDP_CHECK as UdpCheckConfig).maxReplyLength], [0, 255]);
});

test('include: relative to the including file, wildcards in glob order, nested; a group with a range', () => {
  write('conf.d/20-rs.conf', 'real_server 198.18.1.3 80 {\n TCP_CHECK { }\n}\n');
  write('conf.d/10-rs.conf', 'real_server 198.18.1.2 80 {\n include ../checks/tcp.conf\n}\n');
  write('checks/tcp.conf', 'TCP_CHECK {\n connect_timeout 1\n}\n');
  write('groups.conf', 'virtual_server_group WEB {\n 198.18.100.10-12 80\n 198.18.100.20 8080\n}\n');
  const main = write('keepalived.conf', `include groups.conf
virtual_server group WEB {
  protocol TCP
  include conf.d/*.conf
}
include none/*.conf
`);
  const cfg = loadKeepalived(main);
  const vs = cfg.virtualServers[0];
  assert.is(vs.name, 'WEB');
  assert.equal(vs.services.map((s) => `${s.vaddr}:${s.vport}`), ['198.18.100.10:80', '198.18.100.11:80', '198.18.100.12:80', '198.18.100.20:8080']);
  assert.equal(vs.realServers.map((r) => r.daddr), ['198.18.1.2', '198.18.1.3']);
  assert.is((vs.realServers[0].checkers[0] as TcpCheckConfig).connectTimeout, 1000);
  assert.is(cfg.files.length, 5);
  assert.match(cfg.notes.join('\n'), /include none\/\*\.conf matches no file/);
});

test('errors name the file and line: syntax, unknown keywords (a typo), bad values, include problems', () => {
  refuses('virtual_server 198.18.100.10 80 {\n  protocol TCP\n  real_server 198.18.1.2 80 {\n    wieght 3\n  }\n}\n', 4, /unknown keyword "wieght" in real_server/);
  refuses('virtual_server 198.18.100.10 80 {\n  protocol TCP\n', 1, /'\{' is never closed/);
  refuses('}\n', 1, /'\}' closes no block/);
  refuses('frobnicate yes\n', 1, /unknown keyword "frobnicate"/);
  refuses('virtual_server 198.18.100.10 80 {\n protocol TCP\n delay_loop soon\n real_server 198.18.1.2 80 { }\n}\n', 3, /delay_loop takes a time in seconds/);
  refuses('virtual_server 198.18.100.10 80 {\n protocol TCP\n real_server 198.18.1.2 80 {\n  HTTP_GET {\n   url {\n    status_code 700\n   }\n  }\n }\n}\n', 6, /Invalid HTTP_GET status code '700'/);
  refuses('virtual_server 198.18.100.10 80 {\n protocol TCP\n real_server 198.18.1.2 80 {\n  HTTP_GET {\n   connect_timeout 1\n  }\n }\n}\n', 4, /no urls specified/);
  refuses('virtual_server 198.18.100.10 80 {\n protocol TCP\n}\n', 1, /has no real servers/);
  refuses('virtual_server 198.18.100.10 80 {\n protocol TCP\n real_server 198.18.1.2 80 {\n  MISC_CHECK {\n   misc_timeout 3\n  }\n }\n}\n', 4, /MISC_CHECK needs misc_path/);
  refuses('virtual_server 198.18.100.10 80 {\n protocol TCP\n real_server 198.18.1.2 80 { weight 70000 }\n}\n', 3, /weight takes a whole number from 0 to 65535/);
  refuses('virtual_server group NOPE {\n protocol TCP\n}\n', 1, /virtual_server_group NOPE is not defined/);
  refuses('include missing.conf\n', 1, /cannot read included file/);
  refuses('virtual_server 198.18.100.10 80 {\n protocol TCP\n real_server 198.18.1.2 80 { }\n real_server 198.18.1.2 80 { }\n}\n', 4, /already defined at/);
  refuses('virtual_server 198.18.100.10 80 {\n notify_up "unterminated\n}\n', 2, /unterminated " quote/);
  refuses('virtual_server 198.18.100.10 80 {\n protocol TCP\n real_server 198.18.1.2 80 {\n  DNS_CHECK { name a..b }\n }\n}\n', 4, /empty label/);
  refuses('virtual_server 198.18.100.10 80 {\n protocol TCP\n real_server 198.18.1.2 80 {\n  UDP_CHECK { payload zz }\n }\n}\n', 4, /hex bytes/);
  refuses('virtual_server 198.18.100.10 80 {\n protocol TCP\n real_server 198.18.1.2 80 { }\n}\nvirtual_server 198.18.100.10 80 {\n protocol TCP\n real_server 198.18.1.3 80 { }\n}\n', 5, /defined twice/);
  // The include that closes the loop is the one named.
  const loop = write('loop.conf', 'include keepalived.conf\n');
  const main = write('keepalived.conf', 'include loop.conf\n');
  assert.throws(() => loadKeepalived(main), (e: Error) => e.message.startsWith(`${loop}:1: include loop: ${main} includes itself`));
});

test('refused by name: DR/TUN forwarding, fwmark, IPv6, PING_CHECK, FILE_CHECK, SMTP_CHECK, bind_if', () => {
  const vs = (body: string, rs = ''): string => `virtual_server 198.18.100.10 80 {\n protocol TCP\n${body}\n real_server 198.18.1.2 80 {\n${rs}\n }\n}\n`;
  refuses(vs(' lb_kind DR'), 3, /DR forwarding/, 'WASMVS_UNSUPPORTED');
  refuses(vs('', ' lvs_method TUN'), 5, /TUN forwarding/, 'WASMVS_UNSUPPORTED');
  refuses('virtual_server fwmark 1 {\n}\n', 1, /firewall-mark/, 'WASMVS_UNSUPPORTED');
  refuses(vs(' ip_family inet6'), 3, /IPv6/, 'WASMVS_UNSUPPORTED');
  refuses(vs('', '  PING_CHECK { }'), 5, /PING_CHECK is not supported.*raw socket/, 'WASMVS_UNSUPPORTED');
  refuses(vs('', '  FILE_CHECK { track_file f }'), 5, /FILE_CHECK is not supported/, 'WASMVS_UNSUPPORTED');
  refuses(vs('', '  SMTP_CHECK { }'), 5, /SMTP_CHECK is not supported/, 'WASMVS_UNSUPPORTED');
  refuses(vs('', '  TCP_CHECK {\n   bind_if eth0\n  }'), 6, /bind_if is not supported/, 'WASMVS_UNSUPPORTED');
  refuses(vs(' protocol SCTP'), 3, /SCTP/, 'WASMVS_UNSUPPORTED');
  refuses(vs(' lb_algo nosuch'), 3, /nosuch/, 'WASMVS_UNKNOWN_SCHEDULER');
});

test('SSL block: global wherever written, its files must exist; SSL_GET sni from enable_sni or sni_name', () => {
  const ca = write('ca.pem', 'x');
  const cfg = loadKeepalived(write('k.conf', `virtual_server 198.18.100.10 443 {
  protocol TCP
  real_server 198.18.1.2 443 {
    SSL_GET {
      url { path / }
      enable_sni
      virtualhost www.example.com
    }
    SSL_GET {
      url { path / }
      sni_name api.example.com
    }
  }
}
SSL {
  ca ${ca}
  password secret
}
`));
  const [a, b] = cfg.virtualServers[0].realServers[0].checkers as HttpCheckConfig[];
  assert.equal([a.type, a.sni, a.tls], ['SSL_GET', 'www.example.com', { ca, password: 'secret' }]);
  assert.is(b.sni, 'api.example.com');
  refuses('SSL {\n certificate /nonexistent/cert.pem\n}\nvirtual_server 198.18.100.10 80 {\n protocol TCP\n real_server 198.18.1.2 80 { }\n}\n', 1, /SSL file \/nonexistent\/cert\.pem/);
});

test("keepalived's own corrections: quorum above the total weight, hysteresis >= quorum, a zero port makes it persistent", () => {
  const cfg = loadKeepalived(write('k.conf', `virtual_server 198.18.100.10 0 {
  protocol TCP
  quorum 10
  hysteresis 20
  real_server 198.18.1.2 80 { weight 2 }
  real_server 198.18.1.3 80 { weight 3 }
}`));
  const vs = cfg.virtualServers[0];
  assert.equal([vs.quorum, vs.hysteresis, vs.services[0].persistence], [5, 4, 360]);
  const notes = cfg.notes.join('\n');
  assert.match(notes, /quorum 10 for .* exceeds total weight of real servers 5, reducing quorum to 5/);
  assert.match(notes, /hysteresis 20 >= quorum 5; setting hysteresis to 4/);
  assert.match(notes, /zero port only valid for persistent services/);
});

test.run();
