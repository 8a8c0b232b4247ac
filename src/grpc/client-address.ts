import { isIP } from 'node:net';
import type { Metadata } from '@grpc/grpc-js';
import proxyAddr from 'proxy-addr';
import { addressOf } from './call-context.js';

/** The client's address for a call: from its peer, or from `x-forwarded-for` when the peer is a trusted proxy. */
export type ClientAddressOf = (peer: string, metadata: Metadata) => string;

/**
 * With no trusted proxies the client is the peer, and `x-forwarded-for` is ignored (anyone can
 * send it). With some, the addresses are walked from the peer outwards (the peer, then
 * `x-forwarded-for` right to left) and the first one that is not a trusted proxy is the client
 * (proxy-addr's rule, as Express applies it). A chain of only trusted hops gives its far end; an
 * entry that is not an IP address stops the walk at the hop that sent it.
 */
export function clientAddressResolver(trustedProxies: readonly string[]): ClientAddressOf {
  if (trustedProxies.length === 0) return (peer) => addressOf(peer);
  const trust = proxyAddr.compile([...trustedProxies]);
  return (peer, metadata) => {
    const remoteAddress = addressOf(peer);
    const forwarded = metadata.get('x-forwarded-for').filter((v): v is string => typeof v === 'string');
    if (forwarded.length === 0 || isIP(remoteAddress) === 0) return remoteAddress;
    const chain = proxyAddr.all({ socket: { remoteAddress }, headers: { 'x-forwarded-for': forwarded.join(',') } } as never, trust);
    // all() stops at the first untrusted hop, so the client is the last it returns; a hop that is not an address is never taken as one.
    for (let i = chain.length - 1; i >= 0; i--) if (isIP(chain[i]!) !== 0) return chain[i]!;
    return remoteAddress;
  };
}
