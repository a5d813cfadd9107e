using System.Security.Cryptography;

namespace SecureChannels.Protocol.Noise.Crypto;

/// <summary>
/// DH 25519 (RFC 7748 X25519) through libsodium's <c>crypto_scalarmult_curve25519</c>, called directly: a
/// handshake makes an ephemeral key and agrees three times per side, and NSec's key objects (guarded memory per
/// key and per shared secret) cost more than that arithmetic. The private key lives in a
/// <see cref="PinnedSecret"/>, wiped when the pair is disposed.
/// </summary>
public sealed class Curve25519Dh : NoiseDh
{
    /// <summary>The shared instance; the type holds no state.</summary>
    public static readonly Curve25519Dh Instance = new();

    private const int KeyLength = 32;

    private Curve25519Dh()
    {
    }

    /// <inheritdoc />
    public override string Name => "25519";

    /// <inheritdoc />
    public override int DhLength => KeyLength;

    /// <inheritdoc />
    public override DhKeyPair GenerateKeyPair()
    {
        var secret = new PinnedSecret(KeyLength);
        RandomNumberGenerator.Fill(secret.Span);
        return new X25519KeyPair(secret);
    }

    /// <inheritdoc />
    public override DhKeyPair ImportPrivateKey(ReadOnlySpan<byte> privateKey)
    {
        if (privateKey.Length != KeyLength)
        {
            throw new NoiseException(NoiseErrorKind.InvalidKey, $"A 25519 private key is {KeyLength} bytes, not {privateKey.Length}.");
        }

        var secret = new PinnedSecret(KeyLength);
        privateKey.CopyTo(secret.Span);
        return new X25519KeyPair(secret);
    }

    /// <inheritdoc />
    public override void Agree(DhKeyPair keyPair, ReadOnlySpan<byte> publicKey, Span<byte> output)
    {
        ArgumentNullException.ThrowIfNull(keyPair);
        if (keyPair is not X25519KeyPair pair)
        {
            throw new ArgumentException("The key pair was not made by this DH function.", nameof(keyPair));
        }

        if (publicKey.Length != KeyLength)
        {
            throw new NoiseException(NoiseErrorKind.InvalidKey, $"A 25519 public key is {KeyLength} bytes, not {publicKey.Length}.");
        }

        if (output.Length < KeyLength)
        {
            throw new ArgumentException($"The output must hold {KeyLength} bytes.", nameof(output));
        }

        // libsodium masks the public key's top bit (RFC 7748 §5) and returns -1 for an all-zero result: a
        // low-order public key, which would let a peer force a known shared secret.
        var shared = output[..KeyLength];
        if (!Libsodium.ScalarMult(shared, pair.PrivateKey, publicKey))
        {
            CryptographicOperations.ZeroMemory(shared);
            throw new NoiseException(NoiseErrorKind.InvalidKey, "The 25519 public key is a low-order point.");
        }
    }

    private sealed class X25519KeyPair : DhKeyPair
    {
        private readonly PinnedSecret _privateKey;
        private readonly byte[] _publicKey = new byte[KeyLength];

        public X25519KeyPair(PinnedSecret privateKey)
        {
            _privateKey = privateKey;
            Libsodium.ScalarMultBase(_publicKey, privateKey.Span);
        }

        /// <exception cref="ObjectDisposedException">The pair was disposed.</exception>
        public ReadOnlySpan<byte> PrivateKey => _privateKey.Span;

        public override ReadOnlySpan<byte> PublicKey => _publicKey;

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _privateKey.Dispose();
            }
        }
    }
}
