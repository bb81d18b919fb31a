/**
 * Prometheus metrics: one registry per app (no module-level global, so tests and apps do not
 * share counters). Gauges over machines and clusters are computed at scrape time from a reader
 * the app hands in, so they are always what the database says.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { SyslogStats } from "../syslog/server.js";

/** How a TFTP transfer ended, as the TFTP adapter reports it. */
export type TftpResult = "done" | "aborted" | "failed" | "refused" | "not_found" | "size_probe";

/** What the machine and cluster gauges are read from at scrape time. */
export type FleetSnapshot = {
  machines: { state: string; cluster: string; count: number }[];
  serversReady: { cluster: string; ready: number }[];
};

/** The app's metrics: the registry `/metrics` serves and the instruments handlers and adapters feed. */
export type Metrics = {
  registry: Registry;
  httpRequests: Counter<"route" | "status" | "method">;
  httpDuration: Histogram<"route" | "method">;
  tftpTransfers: Counter<"result">;
  tftpBytes: Counter;
  enrollments: Counter<"result">;
  /** Set once by createApp: where the fleet gauges read from. */
  setFleetReader(read: () => FleetSnapshot): void;
  /** Set by main when the syslog receiver runs: its counters, read at scrape time. */
  setSyslogReader(read: () => SyslogStats): void;
  /** A TFTP transfer ended (main wires this into the TFTP adapter's callback). */
  tftpTransfer(result: TftpResult, bytes: number): void;
  proxyDhcpPackets: Counter<"port" | "type" | "result" | "reason">;
  /** A ProxyDHCP packet was answered, ignored, dropped as malformed or failed (main wires this into the listener). */
  proxyDhcpPacket(outcome: { port: string; type: string; result: string; reason: string }): void;
};

/** A fresh registry with edgejoin's metrics and Node's default process metrics. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  let readFleet: (() => FleetSnapshot) | undefined;
  // Each gauge reads its own snapshot: a scrape costs two small GROUP BY queries.
  new Gauge({
    name: "edgejoin_machines",
    help: "Machines by lifecycle state and cluster (cluster name, or none)",
    labelNames: ["state", "cluster"],
    registers: [registry],
    collect() {
      this.reset();
      for (const m of readFleet?.().machines ?? []) this.set({ state: m.state, cluster: m.cluster }, m.count);
    },
  });
  new Gauge({
    name: "edgejoin_cluster_servers_ready",
    help: "Servers (init and joining) of a cluster that reported ready and hold their seat",
    labelNames: ["cluster"],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of readFleet?.().serversReady ?? []) this.set({ cluster: s.cluster }, s.ready);
    },
  });
  let readSyslog: (() => SyslogStats) | undefined;
  // The receiver counts in plain numbers (no prom-client on its hot path); each scrape copies them.
  new Counter({
    name: "edgejoin_syslog_messages_received_total",
    help: "Syslog datagrams received",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(readSyslog?.().received ?? 0);
    },
  });
  new Counter({
    name: "edgejoin_syslog_messages_filed_total",
    help: "Syslog messages filed under a machine",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(readSyslog?.().filed ?? 0);
    },
  });
  new Counter({
    name: "edgejoin_syslog_messages_dropped_total",
    help: "Syslog datagrams dropped: malformed, unknown_source (no machine seen at that address), rate_limited (over a source's lines per second), store_failed",
    labelNames: ["reason"] as const,
    registers: [registry],
    collect() {
      this.reset();
      const s = readSyslog?.();
      if (!s) return;
      this.inc({ reason: "malformed" }, s.malformed);
      this.inc({ reason: "unknown_source" }, s.unmatched);
      this.inc({ reason: "rate_limited" }, s.limited);
      this.inc({ reason: "store_failed" }, s.failed);
    },
  });
  const tftpTransfers = new Counter({
    name: "edgejoin_tftp_transfers_total",
    help: "TFTP read requests by how they ended",
    labelNames: ["result"] as const,
    registers: [registry],
  });
  const tftpBytes = new Counter({ name: "edgejoin_tftp_bytes_total", help: "Bytes sent by completed TFTP transfers", registers: [registry] });
  // Every label is from a closed set (ports, message types, the decision's reasons): no client text.
  const proxyDhcpPackets = new Counter({
    name: "edgejoin_proxy_dhcp_packets_total",
    help: "ProxyDHCP packets by port (dhcp = 67, pxe = 4011), DHCP message type, result (answered, ignored, malformed, failed) and why",
    labelNames: ["port", "type", "result", "reason"] as const,
    registers: [registry],
  });
  return {
    registry,
    httpRequests: new Counter({
      name: "edgejoin_http_requests_total",
      help: "HTTP requests by route pattern and status",
      labelNames: ["route", "status", "method"] as const,
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: "edgejoin_http_request_duration_seconds",
      help: "HTTP request duration by route pattern",
      labelNames: ["route", "method"] as const,
      // Boot files and config answers take milliseconds; artifact downloads can take many seconds.
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    tftpTransfers,
    tftpBytes,
    enrollments: new Counter({
      name: "edgejoin_enrollments_total",
      help: "POST /api/v1/enroll answers: enrolled, or the error code it was refused with",
      labelNames: ["result"] as const,
      registers: [registry],
    }),
    setFleetReader(read) {
      readFleet = read;
    },
    setSyslogReader(read) {
      readSyslog = read;
    },
    proxyDhcpPackets,
    proxyDhcpPacket({ port, type, result, reason }) {
      proxyDhcpPackets.inc({ port, type, result, reason });
    },
    tftpTransfer(result, bytes) {
      tftpTransfers.inc({ result });
      if (result === "done" && bytes > 0) tftpBytes.inc(bytes);
    },
  };
}
