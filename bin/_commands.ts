/**
 * The commands of `medsyn <command>`. Each is also installed as `medsyn-<name>`.
 *
 * @module
 */
import type { Command } from './_cli.js';
import { cleanCommand } from './_clean_command.js';
import { demoCommand } from './_demo_command.js';
import { filterCommand } from './_filter_command.js';
import { genCommand } from './_gen_command.js';
import { shardCommand } from './_shard_command.js';
import { trainCommand } from './_train_command.js';
import { evalCommand } from './_eval_command.js';
import { reportCommand } from './_report_command.js';

/** Every command, in the order `medsyn --help` lists them. */
export const COMMANDS: readonly Command[] = [cleanCommand, genCommand, filterCommand, shardCommand, trainCommand, evalCommand, reportCommand, demoCommand];
