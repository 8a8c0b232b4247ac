import { create, type DescMessage, type MessageInitShape } from '@bufbuild/protobuf';
import { encode, EncodedMessage } from './bridge.js';

/**
 * The one answer cache of the service: Validate and WhoAmI answer the same token again and again
 * (a backend checks its caller's token on every request), and the introspector hands back the
 * same `Principal` object for a token it has seen while nothing about it changed. So the answer
 * for a principal seen before is encoded once and sent as those bytes; the first time it is
 * built as usual (a token seen once costs one WeakMap entry and no encoding). When a principal
 * is no longer referenced (its token left the introspector's cache), its answer goes with it.
 *
 * Measured by `npm run bench` (Validate and WhoAmI, token seen before): see docs/performance.md.
 */
export class RepeatedAnswers<K extends object, S extends DescMessage> {
  private readonly answers = new WeakMap<K, EncodedMessage | null>();

  constructor(
    private readonly schema: S,
    private readonly build: (key: K) => MessageInitShape<S>,
  ) {}

  answer(key: K): MessageInitShape<S> | EncodedMessage {
    const known = this.answers.get(key);
    if (known) return known;
    if (known === undefined) {
      this.answers.set(key, null);
      return this.build(key);
    }
    const encoded = new EncodedMessage(encode(this.schema, create(this.schema, this.build(key))));
    this.answers.set(key, encoded);
    return encoded;
  }
}
