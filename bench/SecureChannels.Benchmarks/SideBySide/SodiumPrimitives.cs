using NSec.Cryptography;
using SecureChannels.Protocol.Noise.Crypto;

namespace SecureChannels.Benchmarks.SideBySide;

/// <summary>
/// The handshake's public-key work as bare libsodium calls (<see cref="NativeMethods"/>, no NSec key objects): an
/// ephemeral key generation (random scalar, base-point multiplication), an X25519 agreement, an Ed25519 verification.
/// The floor a handshake built on this libsodium can approach.
/// </summary>
internal sealed class SodiumPrimitives
{
    private const int KeyLength = 32;

    // About the size of what a handshake verifies: an identity change, a key attestation, a credential.
    public const int SignedLength = 256;

    private readonly byte[] _private = new byte[KeyLength];
    private readonly byte[] _public = new byte[KeyLength];
    private readonly byte[] _peerPrivate = new byte[KeyLength];
    private readonly byte[] _peerPublic = new byte[KeyLength];
    private readonly byte[] _shared = new byte[KeyLength];
    private readonly byte[] _message = new byte[SignedLength];
    private readonly byte[] _signature = new byte[64];
    private readonly byte[] _signingPublicKey;

    /// <summary>Makes the keys and a signature, and checks the calls compute what they should.</summary>
    public SodiumPrimitives()
    {
        if (NativeMethods.SodiumInit() < 0)
        {
            throw new InvalidOperationException("sodium_init failed.");
        }

        NativeMethods.RandomBytes(_message, SignedLength);
        using var signing = Key.Create(SignatureAlgorithm.Ed25519);
        SignatureAlgorithm.Ed25519.Sign(signing, _message, _signature);
        _signingPublicKey = signing.PublicKey.Export(KeyBlobFormat.RawPublicKey);

        KeyGen(1);
        _private.CopyTo(_peerPrivate, 0);
        _public.CopyTo(_peerPublic, 0);
        KeyGen(1);
        var ours = new byte[KeyLength];
        var theirs = new byte[KeyLength];
        var tampered = (byte[])_signature.Clone();
        tampered[0] ^= 1;
        if (!Libsodium.ScalarMult(ours, _private, _peerPublic) || !Libsodium.ScalarMult(theirs, _peerPrivate, _public)
            || !ours.AsSpan().SequenceEqual(theirs) || _public.AsSpan().SequenceEqual(_peerPublic)
            || NativeMethods.Ed25519VerifyDetached(_signature, _message, SignedLength, _signingPublicKey) != 0
            || NativeMethods.Ed25519VerifyDetached(tampered, _message, SignedLength, _signingPublicKey) == 0)
        {
            throw new InvalidOperationException("The libsodium primitives do not compute what they should.");
        }
    }

    /// <summary><paramref name="count"/> ephemeral key generations: 32 random bytes, then the public key (a base-point multiplication).</summary>
    public void KeyGen(long count)
    {
        for (long i = 0; i < count; i++)
        {
            NativeMethods.RandomBytes(_private, KeyLength);
            Libsodium.ScalarMultBase(_public, _private);
        }
    }

    /// <summary><paramref name="count"/> X25519 agreements.</summary>
    public void Agree(long count)
    {
        for (long i = 0; i < count; i++)
        {
            if (!Libsodium.ScalarMult(_shared, _private, _peerPublic))
            {
                throw new InvalidOperationException("X25519 failed.");
            }
        }
    }

    /// <summary><paramref name="count"/> Ed25519 verifications of a valid signature.</summary>
    public void Verify(long count)
    {
        for (long i = 0; i < count; i++)
        {
            if (NativeMethods.Ed25519VerifyDetached(_signature, _message, SignedLength, _signingPublicKey) != 0)
            {
                throw new InvalidOperationException("A valid Ed25519 signature did not verify.");
            }
        }
    }
}
