/** Free loopback ports for the servers a test starts: bound on 127.0.0.1 with port 0, read, released. */
import { createSocket } from "node:dgram";
import { createServer } from "node:net";

/** A free TCP port on 127.0.0.1. */
export function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** A free UDP port on 127.0.0.1 (the tftp package turns port 0 into 69, so TFTP listeners need one). */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket("udp4");
    s.once("error", reject);
    s.bind(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}
