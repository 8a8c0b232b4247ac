/**
 * The directory of the compiled src/ (dist/src, or dist/esm/src in the ES module build), for files
 * the package ships beside its code (gen/descriptors.binpb). This is the CommonJS form; the ES
 * module build replaces this one file with the `import.meta.url` form (scripts/build-esm.js).
 */
export const moduleDir: string = __dirname;
