#!/usr/bin/env python3
"""A software passkey authenticator, for trying passkeys without a browser (and for tests).

Reads WebAuthn options JSON on stdin (the options_json of StartPasskeyRegistration or
StartPasskeyLogin) and prints what a browser's PublicKeyCredential.toJSON() would:

    authenticator.py create ORIGIN KEYFILE  < creation options  > RegistrationResponseJSON
    authenticator.py get    ORIGIN KEYFILE  < request options   > AuthenticationResponseJSON

KEYFILE keeps the passkey (its P-256 private key, credential id, user handle and counter) between
the two. Resident key, user verified, "none" attestation. Needs python3-cryptography only. This is
a test tool: a real passkey's key never leaves its authenticator.
"""
import base64, hashlib, json, os, struct, sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode()


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + '=' * (-len(text) % 4))


def cbor(value) -> bytes:
    """The CBOR the attestation object needs: maps, text, bytes, integers."""
    def head(major, n):
        if n < 24:
            return bytes([major << 5 | n])
        if n < 256:
            return bytes([major << 5 | 24, n])
        if n < 65536:
            return bytes([major << 5 | 25]) + struct.pack('>H', n)
        return bytes([major << 5 | 26]) + struct.pack('>I', n)
    if isinstance(value, int):
        return head(0, value) if value >= 0 else head(1, -1 - value)
    if isinstance(value, str):
        raw = value.encode()
        return head(3, len(raw)) + raw
    if isinstance(value, bytes):
        return head(2, len(value)) + value
    if isinstance(value, dict):
        return head(5, len(value)) + b''.join(cbor(k) + cbor(v) for k, v in value.items())
    raise TypeError(type(value))


UP, UV, AT = 0x01, 0x04, 0x40


def client_data(kind: str, challenge: str, origin: str) -> bytes:
    return json.dumps({'type': kind, 'challenge': challenge, 'origin': origin, 'crossOrigin': False}).encode()


def create(options: dict, origin: str, keyfile: str) -> dict:
    rp_id = options['rp']['id']
    key = ec.generate_private_key(ec.SECP256R1())
    numbers = key.public_key().public_numbers()
    cose = cbor({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, 'big'), -3: numbers.y.to_bytes(32, 'big')})
    cred_id = os.urandom(16)
    auth_data = (hashlib.sha256(rp_id.encode()).digest() + bytes([UP | UV | AT]) + struct.pack('>I', 1)
                 + bytes(16) + struct.pack('>H', len(cred_id)) + cred_id + cose)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    with open(keyfile, 'w') as f:
        json.dump({'rpId': rp_id, 'id': b64u(cred_id), 'userHandle': options['user']['id'], 'counter': 1, 'key': pem}, f)
    return {
        'id': b64u(cred_id), 'rawId': b64u(cred_id), 'type': 'public-key',
        'response': {
            'clientDataJSON': b64u(client_data('webauthn.create', options['challenge'], origin)),
            'attestationObject': b64u(cbor({'fmt': 'none', 'attStmt': {}, 'authData': auth_data})),
            'transports': ['internal'],
        },
        'clientExtensionResults': {}, 'authenticatorAttachment': 'platform',
    }


def get(options: dict, origin: str, keyfile: str) -> dict:
    with open(keyfile) as f:
        saved = json.load(f)
    allowed = [c['id'] for c in options.get('allowCredentials', [])]
    if options['rpId'] != saved['rpId'] or (allowed and saved['id'] not in allowed):
        sys.exit('NotAllowedError: this passkey is not for that request')
    saved['counter'] += 1
    with open(keyfile, 'w') as f:
        json.dump(saved, f)
    auth_data = hashlib.sha256(saved['rpId'].encode()).digest() + bytes([UP | UV]) + struct.pack('>I', saved['counter'])
    data = client_data('webauthn.get', options['challenge'], origin)
    key = serialization.load_pem_private_key(saved['key'].encode(), password=None)
    signature = key.sign(auth_data + hashlib.sha256(data).digest(), ec.ECDSA(hashes.SHA256()))
    return {
        'id': saved['id'], 'rawId': saved['id'], 'type': 'public-key',
        'response': {'clientDataJSON': b64u(data), 'authenticatorData': b64u(auth_data), 'signature': b64u(signature), 'userHandle': saved['userHandle']},
        'clientExtensionResults': {}, 'authenticatorAttachment': 'platform',
    }


if __name__ == '__main__':
    if len(sys.argv) != 4 or sys.argv[1] not in ('create', 'get'):
        sys.exit(__doc__)
    ceremony, origin, keyfile = sys.argv[1:]
    options = json.load(sys.stdin)
    print(json.dumps((create if ceremony == 'create' else get)(options, origin, keyfile)))
