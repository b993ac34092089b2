// drizzle-kit generate: turns src/schema.ts into SQL migrations. Works offline (no DB needed).
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "mysql",
  schema: "./src/schema.ts",
  out: "./migrations",
  // One breakpoint per statement: the runner applies (and accounts for) one statement at a time.
  breakpoints: true,
});
