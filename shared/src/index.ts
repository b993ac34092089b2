export * from './corosync-conf/index.ts';
export { writeFileAtomic, type AtomicWriteOptions } from './fs/atomic-write.ts';
