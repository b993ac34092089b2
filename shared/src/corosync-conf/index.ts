export { CorosyncConfError } from './errors.ts';
export {
  childSections,
  setKey,
  lastValues,
  positionOf,
  section,
  value,
  type ConfEntry,
  type ConfSection,
  type ConfValue,
  type SourcePos,
} from './tree.ts';
export { parseCorosyncConf } from './parse.ts';
export { writeCorosyncConf } from './write.ts';
export { readClusterConfig, U64_MAX, type ClusterConfig, type ClusterNode, type Transport } from './cluster-config.ts';
export { buildCorosyncConf, type BuildOptions, type NodeSpec } from './build.ts';
export { addNode, bumpConfigVersion, removeNode, setConfigVersion, setNodeAttribute } from './edit.ts';
