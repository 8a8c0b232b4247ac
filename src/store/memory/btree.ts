import * as sortedBtree from 'sorted-btree';
import type SortedBTree from 'sorted-btree';

/**
 * sorted-btree's B+ tree class. The package is CommonJS with an `exports.default`: the CommonJS
 * build of this package finds the class one level down, an ES module importing it two levels down
 * (Node hands ESM the whole `module.exports` as the default), so it is looked up once, here.
 */
const exported = sortedBtree as unknown as { default: typeof SortedBTree | { default: typeof SortedBTree } };
export const BTree: typeof SortedBTree = 'default' in exported.default ? exported.default.default : exported.default;
export type BTree<K, V> = SortedBTree<K, V>;
