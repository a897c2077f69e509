#!/usr/bin/env node
/** `medsyn-shard`: the alias of `medsyn shard`. */
import { runCommand } from './_cli.js';
import { shardCommand } from './_shard_command.js';

process.exitCode = await runCommand(shardCommand, process.argv.slice(2));
