import fc from 'fast-check';
import { hasDuplicateTopLevelKeys } from '../../src/core/json-keys';

describe('hasDuplicateTopLevelKeys', () => {
  test.each([
    ['{}', false],
    ['{"a":1}', false],
    ['{"a":1,"b":2}', false],
    ['{"a":1,"a":2}', true],
    ['{"a":1,"\\u0061":2}', true],
    ['{"a":{"b":1,"b":2}}', false],
    ['{"a":[1,2,3],"b":"x,y"}', false],
    ['{"a":"\\",","b":1}', false],
    ['{"a":"\\\\","a":1}', true],
    ['{"a,b":1,"c":[{"d":1},{"d":2}]}', false],
    [' { "a" : 1 , "b" : [ 1 , 2 ] } ', false],
    ['{"__proto__":1,"__proto__":2}', true],
  ])('%s → %s', (json, duplicate) => {
    expect(hasDuplicateTopLevelKeys(json, JSON.parse(json) as object)).toBe(duplicate);
  });

  test('agrees with a parser that counts members (property)', () => {
    const member = fc.tuple(fc.constantFrom('a', 'b', 'c', 'd', 'a,b', 'x"y', '\\'), fc.jsonValue());
    fc.assert(
      fc.property(fc.array(member, { maxLength: 6 }), (members) => {
        const json = `{${members.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`;
        const distinct = new Set(members.map(([k]) => k)).size;
        expect(hasDuplicateTopLevelKeys(json, JSON.parse(json) as object)).toBe(distinct !== members.length);
      }),
      { numRuns: 500 },
    );
  });
});
