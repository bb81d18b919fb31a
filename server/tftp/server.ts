// placeholder replaced by the TFTP adapter
export type TftpServer = { port: number; close(): Promise<void> };
export function describeBootFiles(_bootDir: string, _ipxeDir: string): { name: string; path?: string }[] {
  throw new Error("not yet written");
}
export async function startTftpServer(_opts: unknown): Promise<TftpServer> {
  throw new Error("not yet written");
}
