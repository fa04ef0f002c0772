import { readdir, readFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import type ts from 'typescript';
import { upSection } from '../lint-files/collect.js';
import type { StaticMigration } from './types.js';

// The SQL a migration would run, read from its file without running it: for
// the migrations a failed rehearsal never reached, so one run reports every
// problem it can see. A .sql file's up section is what node-pg-migrate sends;
// in a JS/TS file, the literal strings its up function passes to pgm.sql().
// Builder calls (pgm.createTable, ...) and computed strings cannot be read
// this way: such a migration is marked incomplete.

type TS = typeof ts;

function scriptKind(t: TS, file: string): ts.ScriptKind {
  const ext = extname(file).toLowerCase();
  return ext === '.ts' || ext === '.mts' || ext === '.cts' ? t.ScriptKind.TS : t.ScriptKind.JS;
}

type FunctionLike = ts.ArrowFunction | ts.FunctionExpression | ts.FunctionDeclaration | ts.MethodDeclaration;

function isFunctionLike(t: TS, node: ts.Node | undefined): node is FunctionLike {
  return !!node && (t.isArrowFunction(node) || t.isFunctionExpression(node) || t.isFunctionDeclaration(node) || t.isMethodDeclaration(node));
}

/** `exports.up`, `module.exports.up`. */
function isExportsUp(t: TS, node: ts.Expression): boolean {
  if (!t.isPropertyAccessExpression(node) || node.name.text !== 'up') return false;
  const target = node.expression;
  if (t.isIdentifier(target)) return target.text === 'exports';
  return t.isPropertyAccessExpression(target) && target.name.text === 'exports' && t.isIdentifier(target.expression) && target.expression.text === 'module';
}

function upInObject(t: TS, obj: ts.ObjectLiteralExpression): FunctionLike | undefined {
  for (const p of obj.properties) {
    if (t.isMethodDeclaration(p) && t.isIdentifier(p.name) && p.name.text === 'up') return p;
    if (t.isPropertyAssignment(p) && t.isIdentifier(p.name) && p.name.text === 'up' && isFunctionLike(t, p.initializer)) return p.initializer;
  }
  return undefined;
}

/** The migration's up function, however it is exported. */
function findUp(t: TS, file: ts.SourceFile): FunctionLike | undefined {
  let found: FunctionLike | undefined;
  const visit = (node: ts.Node): void => {
    if (found) return;
    if (t.isFunctionDeclaration(node) && node.name?.text === 'up') found = node;
    else if (t.isVariableDeclaration(node) && t.isIdentifier(node.name) && node.name.text === 'up' && isFunctionLike(t, node.initializer)) found = node.initializer;
    else if (t.isBinaryExpression(node) && node.operatorToken.kind === t.SyntaxKind.EqualsToken) {
      if (isExportsUp(t, node.left) && isFunctionLike(t, node.right)) found = node.right;
      else if (t.isObjectLiteralExpression(node.right) && t.isPropertyAccessExpression(node.left) && node.left.name.text === 'exports') found = upInObject(t, node.right);
    } else if (t.isExportAssignment(node) && t.isObjectLiteralExpression(node.expression)) found = upInObject(t, node.expression);
    if (!found) t.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

function fromScript(t: TS, fileName: string, text: string): StaticMigration {
  const file = t.createSourceFile(fileName, text, t.ScriptTarget.Latest, true, scriptKind(t, fileName));
  const up = findUp(t, file);
  if (!up?.body) return { statements: [], transactional: true, complete: false };
  const param = up.parameters[0]?.name;
  const pgm = param && t.isIdentifier(param) ? param.text : 'pgm';
  const out: StaticMigration = { statements: [], transactional: true, complete: true };
  const visit = (node: ts.Node): void => {
    if (t.isCallExpression(node) && t.isPropertyAccessExpression(node.expression) && t.isIdentifier(node.expression.expression) && node.expression.expression.text === pgm) {
      const method = node.expression.name.text;
      const arg = node.arguments[0];
      if (method === 'sql') {
        if (arg && (t.isStringLiteral(arg) || t.isNoSubstitutionTemplateLiteral(arg))) out.statements.push(arg.text);
        else out.complete = false;
      } else if (method === 'noTransaction') {
        out.transactional = false;
      } else if (method !== 'func') {
        out.complete = false;
      }
    }
    t.forEachChild(node, visit);
  };
  visit(up.body);
  return out;
}

/** What one migration file would run up, read statically. */
export async function staticSqlOf(fileName: string, text: string): Promise<StaticMigration> {
  if (extname(fileName).toLowerCase() === '.sql') return { statements: [upSection(text)], transactional: true, complete: true };
  // Loaded only when a rehearsal stopped early: the compiler is large.
  const t = (await import('typescript')).default;
  return fromScript(t, fileName, text);
}

/** The named migrations of `dir` (file name without its extension), read statically. */
export async function readStaticMigrations(dir: string, names: string[]): Promise<Record<string, StaticMigration>> {
  if (names.length === 0) return {};
  const files = await readdir(dir);
  const out: Record<string, StaticMigration> = {};
  for (const name of names) {
    const file = files.find((f) => basename(f, extname(f)) === name);
    if (!file) continue;
    try {
      out[name] = await staticSqlOf(file, await readFile(join(dir, file), 'utf8'));
    } catch {
      out[name] = { statements: [], transactional: true, complete: false };
    }
  }
  return out;
}
