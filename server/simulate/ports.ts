/** Free loopback ports for the demo and the bench: the kernel picks one, and it is released at once. */
import { createSocket } from "node:dgram";
import { createServer } from "node:net";

/** A free loopback TCP port (the kernel's pick, released at once). */
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

/** A free loopback UDP port. */
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

/** Loopback settings a throw-away edgejoin needs beyond HTTP and TFTP: the node API's HTTPS port, once the server has one. */
export async function extraLoopbackSettings(): Promise<Record<string, string>> {
  const { settingNames } = await import("../config.js");
  return settingNames.includes("EDGEJOIN_HTTPS_PORT") ? { EDGEJOIN_HTTPS_PORT: String(await freeTcpPort()) } : {};
}
