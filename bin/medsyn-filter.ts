#!/usr/bin/env node
/** `medsyn-filter`: the alias of `medsyn filter`. */
import { runCommand } from './_cli.js';
import { filterCommand } from './_filter_command.js';

process.exitCode = await runCommand(filterCommand, process.argv.slice(2));
