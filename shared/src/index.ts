export * from './corosync-conf/index.ts';
export { writeFileAtomic, type AtomicWriteOptions } from './fs/atomic-write.ts';
export * from "./proc/run.ts";
export * from "./service-lock.ts";
export * from "./mariadb/node-config.ts";
export { coalesce } from "./async/coalesce.ts";
export { withTimeout } from "./async/with-timeout.ts";
