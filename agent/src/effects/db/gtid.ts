// The GTID helpers are pure and live in the core (the database role decisions use them).
export * from "../../core/gtid.ts";
