/**
 * True when the JSON text is an object that names one member twice at its top level. RFC 7515
 * section 4 and RFC 7519 section 4 require unique names; JSON.parse silently keeps the last one,
 * so a token could read differently to another parser. Assumes `json` already parsed as valid JSON.
 */
export function hasDuplicateTopLevelKeys(json: string): boolean {
  const seen = new Set<string>();
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (c === '"') {
      const start = i;
      for (i++; json[i] !== '"'; i++) if (json[i] === '\\') i++;
      if (depth === 1 && expectKey) {
        const key = JSON.parse(json.slice(start, i + 1)) as string;
        if (seen.has(key)) return true;
        seen.add(key);
        expectKey = false;
      }
    } else if (c === '{' || c === '[') {
      depth++;
      expectKey = depth === 1 && c === '{';
    } else if (c === '}' || c === ']') {
      depth--;
    } else if (c === ',' && depth === 1) {
      expectKey = true;
    }
  }
  return false;
}
