#!/usr/bin/env node
/** `medsyn-train`: the alias of `medsyn train`. */
import { runCommand } from './_cli.js';
import { trainCommand } from './_train_command.js';

process.exitCode = await runCommand(trainCommand, process.argv.slice(2));
