#!/usr/bin/python3
"""Independent Noise peer built on dissononce, for interop tests against SecureChannels.

It speaks the same TCP harness convention as `securechannels conformance peer`:
every Noise message is framed by a 2-byte big-endian length; handshake message i
carries the ASCII payload "hs-i"; afterwards the initiator sends --count messages of
--size random bytes and, unless the pattern is one-way, the responder echoes each
one reversed. On success both sides print "hash HEX", "remote-static HEX" (when a
remote static key is known) and "ok". Failures go to stderr with a non-zero exit;
unsupported protocol names and bad arguments exit 2.

Run it with Debian's /usr/bin/python3: dissononce comes from the python3-dissononce
package in /usr/lib/python3/dist-packages.

Helper mode: `dissononce_peer.py --public-key HEX` prints the X25519 public key for
a private key.
"""

import argparse
import os
import re
import socket
import struct
import sys

from dissononce.cipher.aesgcm import AESGCMCipher
from dissononce.cipher.chachapoly import ChaChaPolyCipher
from dissononce.dh.x25519.private import PrivateKey
from dissononce.dh.x25519.x25519 import X25519DH
from dissononce.extras.meta.pattern import MAP_PATTERN
from dissononce.hash.blake2b import Blake2bHash
from dissononce.hash.blake2s import Blake2sHash
from dissononce.hash.sha256 import SHA256Hash
from dissononce.hash.sha512 import SHA512Hash
from dissononce.processing.impl.cipherstate import CipherState
from dissononce.processing.impl.handshakestate import HandshakeState
from dissononce.processing.impl.symmetricstate import SymmetricState
from dissononce.processing.modifiers.psk import PSKPatternModifier

CIPHERS = {"ChaChaPoly": ChaChaPolyCipher, "AESGCM": AESGCMCipher}
HASHES = {"SHA256": SHA256Hash, "SHA512": SHA512Hash, "BLAKE2b": Blake2bHash, "BLAKE2s": Blake2sHash}

# Noise caps every message at 65535 bytes, which is also what the 2-byte length prefix can carry.
MAX_MESSAGE = 65535
# ChaChaPoly and AESGCM both append a 16-byte tag to every transport message.
TAG_LEN = 16
SOCKET_TIMEOUT = 30.0
KEY_LEN = 32

EXIT_FAILURE = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Unsupported protocol or inconsistent arguments: reported with exit code 2."""


class StackablePSKModifier(PSKPatternModifier):
    """dissononce's PSKPatternModifier, minus its refusal of a second psk token in one message.

    Upstream rejects names such as XXpsk0+psk1 (psk0 starts message 0, psk1 ends it), which the
    Noise spec allows; token insertion stays dissononce's, only the range check is kept.
    """

    def _is_modifiable(self, handshakepattern):
        return self._placement_index < len(handshakepattern.message_patterns)


class Protocol:
    """A parsed Noise protocol name, resolved to dissononce objects."""

    def __init__(self, name):
        parts = name.split("_")
        if len(parts) != 5 or parts[0] != "Noise":
            raise UsageError("malformed protocol name %r (expected Noise_PATTERN_DH_CIPHER_HASH)" % name)
        _, handshake, dh, cipher, hash_name = parts

        match = re.fullmatch(r"([A-Z][A-Z1]*)((?:[a-z]+[0-9]*)(?:\+[a-z]+[0-9]*)*)?", handshake)
        if match is None:
            raise UsageError("malformed handshake pattern %r" % handshake)
        base, modifiers = match.group(1), match.group(2)
        if base not in MAP_PATTERN:
            raise UsageError("dissononce does not implement handshake pattern %r" % base)
        if dh != "25519":
            raise UsageError("unsupported DH %r (only 25519)" % dh)
        if cipher not in CIPHERS:
            raise UsageError("unsupported cipher %r (ChaChaPoly or AESGCM)" % cipher)
        if hash_name not in HASHES:
            raise UsageError("unsupported hash %r (SHA256, SHA512, BLAKE2b or BLAKE2s)" % hash_name)

        pattern = MAP_PATTERN[base]()
        self.psk_placements = []
        for modifier in modifiers.split("+") if modifiers else []:
            # Only pskN is accepted: fallback needs the remote ephemeral as a pre-message,
            # which this harness cannot convey.
            psk = re.fullmatch(r"psk([0-9]+)", modifier)
            if psk is None:
                raise UsageError("unsupported pattern modifier %r (only pskN)" % modifier)
            placement = int(psk.group(1))
            if placement in self.psk_placements:
                raise UsageError("modifier %r appears twice" % modifier)
            try:
                pattern = StackablePSKModifier(placement).modify(pattern)
            except ValueError as error:
                raise UsageError(str(error)) from error
            self.psk_placements.append(placement)

        self.name = name
        self.pattern = pattern
        self.dh = X25519DH()
        self.cipher = CIPHERS[cipher]()
        self.hash = HASHES[hash_name]()
        # Same rule dissononce's NoiseProtocol.oneway uses: one-letter patterns (N, K, X) are one-way.
        self.one_way = len(base) == 1

    def messages_of(self, initiator):
        """The message patterns written by the given side: the initiator writes the even ones."""
        return self.pattern.message_patterns[0 if initiator else 1::2]

    def pre_message_of(self, initiator):
        if initiator:
            return self.pattern.initiator_pre_message_pattern
        return self.pattern.responder_pre_message_pattern


def parse_hex(text, what, length=None):
    try:
        data = bytes.fromhex(text)
    except ValueError as error:
        raise UsageError("%s is not valid hex" % what) from error
    if length is not None and len(data) != length:
        raise UsageError("%s must be %d bytes, got %d" % (what, length, len(data)))
    return data


def parse_endpoint(text):
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise UsageError("endpoint %r must be HOST:PORT" % text)
    return host.strip("[]"), int(port)


def emit(line):
    print(line, flush=True)


def recv_exact(sock, count):
    data = bytearray()
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("peer closed the connection after %d of %d bytes" % (len(data), count))
        data.extend(chunk)
    return bytes(data)


def send_frame(sock, message):
    if len(message) > MAX_MESSAGE:
        raise ValueError("Noise message of %d bytes exceeds %d" % (len(message), MAX_MESSAGE))
    sock.sendall(struct.pack(">H", len(message)) + message)


def recv_frame(sock):
    (length,) = struct.unpack(">H", recv_exact(sock, 2))
    return recv_exact(sock, length)


def build_handshake(protocol, args):
    """Initialises a dissononce HandshakeState, checking up front which keys the pattern needs."""
    initiator = args.role == "initiator"

    local_static = None
    if "s" in protocol.pre_message_of(initiator) or any("s" in m for m in protocol.messages_of(initiator)):
        if args.static is None:
            raise UsageError("%s as %s needs --static" % (protocol.name, args.role))
        private = PrivateKey(parse_hex(args.static, "--static", KEY_LEN))
        local_static = protocol.dh.generate_keypair(private)

    expected_remote = None
    if args.remote_static is not None:
        expected_remote = parse_hex(args.remote_static, "--remote-static", KEY_LEN)

    # dissononce asserts rs is empty when a message carries the remote static, so rs is
    # only handed over when the pattern pre-shares it; an in-band one is checked afterwards.
    remote_static = None
    if "s" in protocol.pre_message_of(not initiator):
        if expected_remote is None:
            raise UsageError("%s as %s needs --remote-static" % (protocol.name, args.role))
        remote_static = protocol.dh.create_public(expected_remote)

    psks = [parse_hex(p, "--psk", KEY_LEN) for p in args.psk]
    if len(psks) != len(protocol.psk_placements):
        raise UsageError("%s needs %d --psk, got %d" % (protocol.name, len(protocol.psk_placements), len(psks)))
    # --psk follows the modifier order of the name, but dissononce pops its psk list at each
    # psk token as the handshake reaches it; pskN tokens occur in ascending N, so sort by placement.
    psks = [psk for _, psk in sorted(zip(protocol.psk_placements, psks), key=lambda pair: pair[0])]

    symmetric = SymmetricState(CipherState(protocol.cipher), protocol.hash)
    handshake = HandshakeState(symmetric, protocol.dh)
    handshake.initialize(
        protocol.pattern,
        initiator,
        parse_hex(args.prologue, "--prologue"),
        s=local_static,
        rs=remote_static,
        psks=psks or None,
    )
    # dissononce derives the name it hashes from the pattern and primitives; make sure that is
    # exactly the requested name, or the handshake hash would silently differ from the peer's.
    if handshake.protocol_name != protocol.name:
        raise UsageError("dissononce derived %r instead of %r" % (handshake.protocol_name, protocol.name))
    return handshake, expected_remote


def run_handshake(sock, protocol, handshake, initiator):
    """Drives every handshake message and returns (send, receive) transport cipher states."""
    ciphers = None
    for index in range(len(protocol.pattern.message_patterns)):
        expected_payload = ("hs-%d" % index).encode("ascii")
        if (index % 2 == 0) == initiator:
            message = bytearray()
            ciphers = handshake.write_message(expected_payload, message)
            send_frame(sock, bytes(message))
        else:
            payload = bytearray()
            ciphers = handshake.read_message(recv_frame(sock), payload)
            if bytes(payload) != expected_payload:
                raise ValueError("handshake message %d carried payload %r, expected %r"
                                 % (index, bytes(payload), expected_payload))
    # Split() yields (initiator->responder, responder->initiator).
    first, second = ciphers
    return (first, second) if initiator else (second, first)


def run_transport(sock, protocol, send, receive, initiator, count, size):
    for index in range(count):
        if initiator:
            data = os.urandom(size)
            send_frame(sock, send.encrypt_with_ad(b"", data))
            if not protocol.one_way:
                answer = receive.decrypt_with_ad(b"", recv_frame(sock))
                if answer != data[::-1]:
                    raise ValueError("transport answer %d is not the reversed message" % index)
        else:
            data = receive.decrypt_with_ad(b"", recv_frame(sock))
            if len(data) != size:
                raise ValueError("transport message %d has %d bytes, expected %d" % (index, len(data), size))
            if not protocol.one_way:
                send_frame(sock, send.encrypt_with_ad(b"", data[::-1]))


def open_connection(args):
    if args.role == "initiator":
        if args.connect is None or args.listen is not None:
            raise UsageError("the initiator needs --connect (and no --listen)")
        return socket.create_connection(parse_endpoint(args.connect), timeout=SOCKET_TIMEOUT)

    if args.listen is None or args.connect is not None:
        raise UsageError("the responder needs --listen (and no --connect)")
    host, port = parse_endpoint(args.listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.create_server((host, port), family=family) as server:
        server.settimeout(SOCKET_TIMEOUT)
        bound_port = server.getsockname()[1]
        emit("listening %s:%d" % ("[%s]" % host if family == socket.AF_INET6 else host, bound_port))
        connection, _ = server.accept()
    connection.settimeout(SOCKET_TIMEOUT)
    return connection


def run_peer(args):
    protocol = Protocol(args.protocol)
    if args.count < 0 or args.size < 0:
        raise UsageError("--count and --size must not be negative")
    if args.size + TAG_LEN > MAX_MESSAGE:
        raise UsageError("--size must be at most %d" % (MAX_MESSAGE - TAG_LEN))
    initiator = args.role == "initiator"
    handshake, expected_remote = build_handshake(protocol, args)

    with open_connection(args) as sock:
        send, receive = run_handshake(sock, protocol, handshake, initiator)
        emit("hash " + handshake.symmetricstate.get_handshake_hash().hex())
        if handshake.rs is not None:
            if expected_remote is not None and handshake.rs.data != expected_remote:
                raise ValueError("remote static key %s differs from --remote-static" % handshake.rs.data.hex())
            emit("remote-static " + handshake.rs.data.hex())
        run_transport(sock, protocol, send, receive, initiator, args.count, args.size)
    emit("ok")


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Noise interop peer built on dissononce.")
    parser.add_argument("--public-key", metavar="HEX",
                        help="print the X25519 public key of this private key and exit")
    parser.add_argument("--role", choices=("initiator", "responder"))
    parser.add_argument("--protocol", metavar="NAME", help="full Noise protocol name")
    parser.add_argument("--listen", metavar="HOST:PORT", help="responder: address to bind (port 0 allowed)")
    parser.add_argument("--connect", metavar="HOST:PORT", help="initiator: address to connect to")
    parser.add_argument("--static", metavar="HEX", help="local static private key")
    parser.add_argument("--remote-static", metavar="HEX", help="remote static public key")
    parser.add_argument("--prologue", metavar="HEX", default="")
    parser.add_argument("--psk", metavar="HEX", action="append", default=[],
                        help="pre-shared key, repeatable, in modifier order")
    parser.add_argument("--count", type=int, default=3, help="transport messages to exchange")
    parser.add_argument("--size", type=int, default=64, help="bytes per transport message")
    args = parser.parse_args(argv)
    if args.public_key is None and (args.role is None or args.protocol is None):
        parser.error("--role and --protocol are required (or use --public-key)")
    return args


def main(argv):
    args = parse_args(argv)
    try:
        if args.public_key is not None:
            private = PrivateKey(parse_hex(args.public_key, "--public-key", KEY_LEN))
            emit(X25519DH().generate_keypair(private).public.data.hex())
        else:
            run_peer(args)
    except UsageError as error:
        print("error: %s" % error, file=sys.stderr)
        return EXIT_USAGE
    except Exception as error:  # any handshake, crypto or socket failure fails the run
        detail = str(error)  # dissononce's DecryptFailedException carries no message
        print("error: %s%s" % (type(error).__name__, ": " + detail if detail else ""), file=sys.stderr)
        return EXIT_FAILURE
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
