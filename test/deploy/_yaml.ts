/**
 * A parser for the subset of YAML that deploy/kubernetes/*.yaml is written in, since no
 * YAML package is a dependency: documents separated by `---`, block mappings and block
 * sequences by indentation (spaces only), plain and quoted scalars, flow sequences of
 * scalars (`[a, "b"]`), literal block scalars (`|`, `|-`, `|+`) and comments. Everything
 * else (anchors, aliases, tags, flow mappings, folded and multi-line plain scalars, the
 * YAML 1.1 booleans yes/no/on/off that parsers disagree on) is refused with the line
 * number, so a manifest that this accepts means the same to kubectl.
 *
 * @module
 */

/** A YAML syntax error or a construct outside the subset, with its 1-based line. */
export class YamlSubsetError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(`line ${line}: ${message}`);
    this.name = 'YamlSubsetError';
  }
}

interface Line {
  /** 1-based. */
  number: number;
  indent: number;
  /** The text after the indentation, comment removed, trailing spaces trimmed. */
  content: string;
}

/**
 * The documents of `source`, as JSON values.
 *
 * @throws {YamlSubsetError} for bad syntax or a construct outside the subset
 * @example
 * ```ts
 * parseYamlDocuments('kind: Job\nspec:\n  completions: 4\n'); // [{ kind: 'Job', spec: { completions: 4 } }]
 * ```
 */
export function parseYamlDocuments(source: string): unknown[] {
  const raw = source.replace(/\r\n/gu, '\n').split('\n');
  const documents: unknown[] = [];
  let start = 0;
  for (let index = 0; index <= raw.length; index += 1) {
    if (index === raw.length || /^---\s*(#.*)?$/u.test(raw[index]!)) {
      const parser = new BlockParser(raw, start, index);
      if (parser.hasContent()) documents.push(parser.parseDocument());
      start = index + 1;
    } else if (/^\.\.\.\s*$/u.test(raw[index]!) || /^%/u.test(raw[index]!)) {
      throw new YamlSubsetError('directives and document end markers are outside the subset', index + 1);
    }
  }
  return documents;
}

class BlockParser {
  private position: number;

  constructor(
    private readonly raw: string[],
    start: number,
    private readonly end: number,
  ) {
    this.position = start;
  }

  hasContent(): boolean {
    return this.peek() !== undefined;
  }

  parseDocument(): unknown {
    const first = this.peek()!;
    if (first.indent !== 0) throw new YamlSubsetError('a document must start at column 1', first.number);
    const value = this.parseNode(0);
    const rest = this.peek();
    if (rest) throw new YamlSubsetError(`unexpected content at indentation ${rest.indent}`, rest.number);
    return value;
  }

  /** The next line with content, without consuming it; `undefined` at the end. */
  private peek(): Line | undefined {
    while (this.position < this.end) {
      const text = this.raw[this.position]!;
      if (/^\s*(#.*)?$/u.test(text)) {
        this.position += 1;
        continue;
      }
      const number = this.position + 1;
      const indentation = /^[ \t]*/u.exec(text)![0];
      if (indentation.includes('\t')) throw new YamlSubsetError('tabs in indentation', number);
      return { number, indent: indentation.length, content: stripComment(text.slice(indentation.length), number) };
    }
    return undefined;
  }

  /** A mapping or a sequence whose lines are indented exactly `indent`. */
  private parseNode(indent: number): unknown {
    const line = this.peek();
    if (!line || line.indent < indent) return null;
    if (isSequenceItem(line.content)) return this.parseSequence(line.indent);
    return this.parseMapping(line.indent);
  }

  private parseSequence(indent: number): unknown[] {
    const items: unknown[] = [];
    for (let line = this.peek(); line && line.indent === indent && isSequenceItem(line.content); line = this.peek()) {
      const rest = line.content.slice(1);
      const inner = rest.trimStart();
      if (inner === '') {
        this.position += 1;
        const next = this.peek();
        items.push(next && next.indent > indent ? this.parseNode(next.indent) : null);
      } else if (isSequenceItem(inner) || mappingKey(inner, line.number) !== undefined) {
        // `- key: value` opens a mapping whose lines continue at the column of `key`: re-read this line from there.
        const column = indent + 1 + (rest.length - inner.length);
        this.raw[this.position] = ' '.repeat(column) + this.raw[this.position]!.slice(column);
        items.push(this.parseNode(column));
      } else {
        this.position += 1;
        items.push(this.inlineValue(inner, line, indent));
      }
    }
    const after = this.peek();
    if (after && after.indent > indent) throw new YamlSubsetError(`bad indentation (${after.indent}) inside a sequence at ${indent}`, after.number);
    return items;
  }

  private parseMapping(indent: number): Record<string, unknown> {
    const mapping: Record<string, unknown> = {};
    for (let line = this.peek(); line && line.indent === indent; line = this.peek()) {
      if (isSequenceItem(line.content)) throw new YamlSubsetError('a sequence item where a mapping key was expected', line.number);
      const entry = mappingKey(line.content, line.number);
      if (entry === undefined) throw new YamlSubsetError(`expected 'key: value', got '${line.content}' (multi-line plain scalars are outside the subset)`, line.number);
      if (Object.hasOwn(mapping, entry.key)) throw new YamlSubsetError(`duplicate key '${entry.key}'`, line.number);
      this.position += 1;
      if (entry.rest === '') {
        const next = this.peek();
        if (next && next.indent > indent) mapping[entry.key] = this.parseNode(next.indent);
        else if (next && next.indent === indent && isSequenceItem(next.content)) mapping[entry.key] = this.parseSequence(indent);
        else mapping[entry.key] = null;
      } else {
        mapping[entry.key] = this.inlineValue(entry.rest, line, indent);
      }
    }
    const after = this.peek();
    if (after && after.indent > indent) throw new YamlSubsetError(`bad indentation (${after.indent}) inside a mapping at ${indent}`, after.number);
    return mapping;
  }

  /** A value on the same line as its key or dash: a block scalar header or a scalar. */
  private inlineValue(text: string, line: Line, parentIndent: number): unknown {
    const header = /^\|([-+]?)$/u.exec(text);
    if (header) return this.blockScalar(header[1] ?? '', parentIndent);
    if (/^[>][-+]?$/u.test(text)) throw new YamlSubsetError('folded block scalars (>) are outside the subset: use |', line.number);
    return parseScalar(text, line.number);
  }

  /** The lines of a literal block scalar, more indented than its parent. */
  private blockScalar(chomping: string, parentIndent: number): string {
    const lines: string[] = [];
    let blockIndent: number | undefined;
    while (this.position < this.end) {
      const text = this.raw[this.position]!;
      if (text.trim() === '') {
        lines.push('');
        this.position += 1;
        continue;
      }
      const indent = /^ */u.exec(text)![0].length;
      if (indent <= parentIndent) break;
      blockIndent ??= indent;
      if (indent < blockIndent) throw new YamlSubsetError(`a block scalar line less indented (${indent}) than its first (${blockIndent})`, this.position + 1);
      lines.push(text.slice(blockIndent));
      this.position += 1;
    }
    // Blank lines after the block belong to it only with |+.
    let body = lines.join('\n');
    const trailing = /\n*$/u.exec(body)![0].length;
    const content = body.slice(0, body.length - trailing);
    if (chomping === '-') body = content;
    else if (chomping === '+') body = `${body}\n`;
    else body = content === '' ? '' : `${content}\n`;
    return body;
  }
}

function isSequenceItem(content: string): boolean {
  return content === '-' || content.startsWith('- ');
}

/** `key: rest` (rest without the leading spaces), or `undefined` when the text is not a mapping entry. */
function mappingKey(content: string, line: number): { key: string; rest: string } | undefined {
  let key: string;
  let after: string;
  if (content.startsWith('"') || content.startsWith("'")) {
    const end = quotedEnd(content, line);
    after = content.slice(end);
    if (!/^:( |$)/u.test(after)) return undefined;
    key = String(parseScalar(content.slice(0, end), line));
  } else {
    const colon = /:( |$)/u.exec(content);
    if (!colon || colon.index === 0) return undefined;
    key = content.slice(0, colon.index);
    after = content.slice(colon.index);
    if (/^[[{&*!|>]/u.test(key)) throw new YamlSubsetError(`a key starting with '${key[0]}' is outside the subset`, line);
  }
  return { key, rest: after.slice(1).trim() };
}

/** The index just after the closing quote of the quoted scalar at the start of `text`. */
function quotedEnd(text: string, line: number): number {
  const quote = text[0]!;
  for (let index = 1; index < text.length; index += 1) {
    if (quote === '"' && text[index] === '\\') {
      index += 1;
    } else if (text[index] === quote) {
      if (quote === "'" && text[index + 1] === "'") {
        index += 1;
        continue;
      }
      return index + 1;
    }
  }
  throw new YamlSubsetError('unterminated quoted scalar (multi-line quoted scalars are outside the subset)', line);
}

/** Removes a trailing ` # comment` outside quotes; trims the end. */
function stripComment(text: string, line: number): string {
  for (let index = 0; index < text.length; index += 1) {
    const char = text[index]!;
    if ((char === '"' || char === "'") && (index === 0 || /[\s:[,-]/u.test(text[index - 1]!))) {
      index += quotedEnd(text.slice(index), line) - 1;
    } else if (char === '#' && (index === 0 || /\s/u.test(text[index - 1]!))) {
      return text.slice(0, index).trimEnd();
    }
  }
  return text.trimEnd();
}

/** A scalar or a flow sequence of scalars. */
function parseScalar(text: string, line: number): unknown {
  if (text.startsWith('"')) {
    const end = quotedEnd(text, line);
    if (end !== text.length) throw new YamlSubsetError(`text after a quoted scalar: '${text.slice(end)}'`, line);
    return text.slice(1, -1).replace(/\\(["\\/nt0]|u[0-9a-fA-F]{4})/gu, (_, escape: string) =>
      escape.startsWith('u') ? String.fromCharCode(parseInt(escape.slice(1), 16)) : ({ n: '\n', t: '\t', '0': '\0' }[escape] ?? escape),
    );
  }
  if (text.startsWith("'")) {
    const end = quotedEnd(text, line);
    if (end !== text.length) throw new YamlSubsetError(`text after a quoted scalar: '${text.slice(end)}'`, line);
    return text.slice(1, -1).replace(/''/gu, "'");
  }
  if (text.startsWith('[')) {
    if (!text.endsWith(']')) throw new YamlSubsetError('a flow sequence must close on its line', line);
    const inner = text.slice(1, -1).trim();
    if (inner === '') return [];
    const items: unknown[] = [];
    let rest = inner;
    while (rest !== '') {
      let item: string;
      if (rest.startsWith('"') || rest.startsWith("'")) {
        const end = quotedEnd(rest, line);
        item = rest.slice(0, end);
        rest = rest.slice(end).trim();
      } else {
        const comma = rest.indexOf(',');
        item = (comma === -1 ? rest : rest.slice(0, comma)).trim();
        rest = comma === -1 ? '' : rest.slice(comma);
      }
      if (item.startsWith('[') || item.startsWith('{')) throw new YamlSubsetError('nested flow collections are outside the subset', line);
      items.push(parseScalar(item, line));
      if (rest.startsWith(',')) rest = rest.slice(1).trim();
      else if (rest !== '') throw new YamlSubsetError(`expected ',' in a flow sequence, got '${rest}'`, line);
    }
    return items;
  }
  if (/^[{&*!%@`]/u.test(text)) throw new YamlSubsetError(`'${text[0]}' (flow mappings, anchors, aliases, tags, reserved) is outside the subset`, line);
  if (/^(null|Null|NULL|~)$/u.test(text)) return null;
  if (/^(true|True|TRUE)$/u.test(text)) return true;
  if (/^(false|False|FALSE)$/u.test(text)) return false;
  if (/^(y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$/u.test(text)) {
    throw new YamlSubsetError(`'${text}' is a boolean to YAML 1.1 parsers and a string to YAML 1.2 ones: quote it`, line);
  }
  if (/^[-+]?[0-9]+$/u.test(text)) {
    if (/^[-+]?0[0-9]/u.test(text)) throw new YamlSubsetError(`'${text}' is octal to YAML 1.1 parsers: quote it`, line);
    return Number(text);
  }
  if (/^[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/u.test(text)) return Number(text);
  if (/: |\s#/u.test(text)) throw new YamlSubsetError(`ambiguous plain scalar '${text}': quote it`, line);
  return text;
}
