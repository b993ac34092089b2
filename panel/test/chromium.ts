// Debian's Chromium for the UI tests and benches, driven by playwright-core (no browser download).
import { chromium, type BrowserContext } from "playwright-core";

export const CHROMIUM = process.env.HA_CHROMIUM ?? "/usr/bin/chromium";

/**
 * A headless Chromium with its own profile directory, at the panel's reference size. The flags stop
 * its background connections to Google (refused on a closed network, many at a time).
 */
export function launchChromium(profileDir: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}
