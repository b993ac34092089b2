// Probes the configured test IP: tells "only the control network is gone" from "this node is isolated".
import { run } from "@ha/shared";

export async function testIpReachable(ip: string, timeoutS = 1): Promise<boolean> {
  const r = await run("ping", ["-n", "-q", "-c", "1", "-W", String(timeoutS), ip], { timeoutMs: (timeoutS + 1) * 1000 });
  return r.code === 0;
}
