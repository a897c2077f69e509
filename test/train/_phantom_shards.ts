/** Phantom shards for the trainer's tests (shared with bench/train.ts). */
export { makePhantomShards, phantomReports } from '../../bench/_phantom_pairs.js';
