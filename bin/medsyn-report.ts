#!/usr/bin/env node
/** `medsyn-report`: the alias of `medsyn report`. */
import { runCommand } from './_cli.js';
import { reportCommand } from './_report_command.js';

process.exitCode = await runCommand(reportCommand, process.argv.slice(2));
