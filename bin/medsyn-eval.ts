#!/usr/bin/env node
/** `medsyn-eval`: the alias of `medsyn eval`. */
import { runCommand } from './_cli.js';
import { evalCommand } from './_eval_command.js';

process.exitCode = await runCommand(evalCommand, process.argv.slice(2));
