// The pure rules behind input hygiene, checked against the platform where it
// has an opinion (Buffer.isUtf8, TextDecoder) and on hand-made cases.
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { test } from 'node:test';
import { jsonPathAt } from '../../src/plugins/json-position.js';
import { findBadQuery, findBadText, textProblem, utf8Problem } from '../../src/plugins/text-rules.js';

test('utf8Problem agrees with Buffer.isUtf8 on 20,000 random byte strings and finds the first bad byte', () => {
  let a = 12345;
  const random = () => ((a = (Math.imul(a, 1103515245) + 12345) >>> 0) / 4294967296);
  const interesting = [0x00, 0x41, 0x7f, 0x80, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 0xa0, 0x9f, 0x90, 0x8f];
  for (let n = 0; n < 20_000; n++) {
    const bytes = Buffer.from(Array.from({ length: 1 + Math.floor(random() * 8) }, () => (random() < 0.7 ? interesting[Math.floor(random() * interesting.length)]! : Math.floor(random() * 256))));
    const fault = utf8Problem(bytes);
    assert.equal(fault === null, isUtf8(bytes), `${bytes.toString('hex')}: ${JSON.stringify(fault)}`);
    if (fault) {
      assert.ok(isUtf8(bytes.subarray(0, fault.offset)), `everything before byte ${fault.offset} of ${bytes.toString('hex')} is UTF-8`);
      assert.throws(() => new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, fault.offset + 4)));
    }
  }
  assert.deepEqual(utf8Problem(Buffer.from([0x61, 0xc0, 0x80])), { offset: 1, reason: 'an overlong encoding' });
  assert.deepEqual(utf8Problem(Buffer.from([0xe0, 0x80, 0xaf])), { offset: 0, reason: 'an overlong encoding' });
  assert.match(utf8Problem(Buffer.from([0xed, 0xa0, 0x80]))!.reason, /surrogate/);
  assert.match(utf8Problem(Buffer.from([0xf4, 0x90, 0x80, 0x80]))!.reason, /above U\+10FFFF/);
  assert.equal(utf8Problem(Buffer.from('é中🚀 ok')), null);
});

test('textProblem: NUL, lone surrogates, C0 (but tab/LF/CR), DEL and C1 are refused; other text is not', () => {
  for (const ok of ['', 'plain', 'tab\tnew\nline\r\n', 'é中🚀', '\u00a0\u2028\u200b', '\ud83d\ude80']) assert.equal(textProblem(ok), null, JSON.stringify(ok));
  assert.match(textProblem('ab\u0000')!, /NUL character \(U\+0000\) at character 3/);
  assert.match(textProblem('\ud800x')!, /lone surrogate \(U\+D800\)/);
  assert.match(textProblem('x\udc00')!, /lone surrogate \(U\+DC00\)/);
  assert.match(textProblem('\udc00\ud800')!, /lone surrogate/, 'a pair in the wrong order is two lone halves');
  for (const code of [0x01, 0x08, 0x0b, 0x0c, 0x0e, 0x1b, 0x1f, 0x7f, 0x80, 0x85, 0x9b, 0x9f]) {
    assert.match(textProblem(`a${String.fromCharCode(code)}`)!, /control character/, code.toString(16));
  }
});

test('findBadText names the field, nested and in arrays, field names included, however deep', () => {
  assert.deepEqual(findBadText({ a: 'ok', b: { c: ['x', 'y\u0000'] } }, 'body')?.path, 'body/b/c/1');
  assert.deepEqual(findBadText({ 'we/ird~': '\u0001' }, 'body')?.path, 'body/we~1ird~0');
  const key = findBadText({ 'k\u0000': 1 }, 'body')!;
  assert.equal(key.path, 'body/k\\u0000');
  assert.match(key.message, /field name/);
  assert.equal(findBadText({ n: 1, b: true, z: null, s: 'fine' }, 'body'), null);
  let deep: unknown = 'bad\u0000';
  for (let i = 0; i < 100_000; i++) deep = [deep];
  assert.equal(findBadText(deep, 'body')?.path.split('/').length, 100_001, 'no stack overflow');
});

test('findBadQuery: undecodable percent-encodings and bad text, in names and values', () => {
  assert.equal(findBadQuery('environment=staging&limit=5&cursor=a%2Bb+c'), null);
  assert.equal(findBadQuery('environment=%C0%80')?.path, 'querystring/environment');
  assert.match(findBadQuery('x=1&environment=%ED%A0%80')!.message, /not valid percent-encoded UTF-8/);
  assert.match(findBadQuery('environment=%00')!.message, /NUL/);
  assert.match(findBadQuery('env%00=x')!.message, /name/);
  assert.equal(findBadQuery('bad%ZZ=1')?.path, 'querystring/bad%ZZ');
});

test('jsonPathAt follows objects, arrays, escapes and member names', () => {
  const at = (prefix: string) => jsonPathAt(prefix, prefix.length);
  assert.deepEqual(at('{"a":"x'), { path: 'body/a', inName: false });
  assert.deepEqual(at('{"a":1,"b":{"c":[1,"x","'), { path: 'body/b/c/2', inName: false });
  assert.deepEqual(at('{"a":"q\\"uote , : {","b":"'), { path: 'body/b', inName: false });
  assert.deepEqual(at('{"a":{"x":1},"na'), { path: 'body', inName: true });
  assert.deepEqual(at('{"a\\u002fb":"'), { path: 'body/a~1b', inName: false });
  assert.deepEqual(at('["a",{"k":["'), { path: 'body/1/k/0', inName: false });
});
