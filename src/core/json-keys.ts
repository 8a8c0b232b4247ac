/**
 * True when the JSON text of `parsed` names one member twice at its top level. RFC 7515
 * section 4 and RFC 7519 section 4 require unique names; JSON.parse silently keeps the last one,
 * so a token could read differently to another parser. `json` must be the text `parsed` came
 * from: the text has a duplicate exactly when it has more top-level members (top-level commas
 * plus one) than the parsed object has keys.
 */
export function hasDuplicateTopLevelKeys(json: string, parsed: object): boolean {
  const keys = Object.keys(parsed).length;
  if (keys === 0) return false;
  let depth = 0;
  let members = 1;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (c === QUOTE) {
      for (i++; json.charCodeAt(i) !== QUOTE; i++) if (json.charCodeAt(i) === BACKSLASH) i++;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth++;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    } else if (c === COMMA && depth === 1) {
      members++;
    }
  }
  return members !== keys;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
