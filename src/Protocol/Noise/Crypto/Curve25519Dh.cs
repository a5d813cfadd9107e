using NSec.Cryptography;

namespace SecureChannels.Protocol.Noise.Crypto;

/// <summary>DH 25519 (RFC 7748 X25519) through NSec/libsodium.</summary>
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
    public override DhKeyPair GenerateKeyPair() => new X25519KeyPair(Key.Create(KeyAgreementAlgorithm.X25519));

    /// <inheritdoc />
    public override DhKeyPair ImportPrivateKey(ReadOnlySpan<byte> privateKey)
    {
        if (privateKey.Length != KeyLength)
        {
            throw new NoiseException(NoiseErrorKind.InvalidKey, $"A 25519 private key is {KeyLength} bytes, not {privateKey.Length}.");
        }

        return new X25519KeyPair(Key.Import(KeyAgreementAlgorithm.X25519, privateKey, KeyBlobFormat.RawPrivateKey));
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

        if (!PublicKey.TryImport(KeyAgreementAlgorithm.X25519, publicKey, KeyBlobFormat.RawPublicKey, out var remote) || remote is null)
        {
            throw new NoiseException(NoiseErrorKind.InvalidKey, "The 25519 public key is not valid.");
        }

        // The shared secret must be exportable: Noise feeds the raw DH output into HKDF itself (spec §5.2).
        // libsodium refuses an all-zero result (a low-order public key); NSec reports that as null.
        var exportable = new SharedSecretCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport };
        using var secret = KeyAgreementAlgorithm.X25519.Agree(pair.Key, remote, in exportable)
            ?? throw new NoiseException(NoiseErrorKind.InvalidKey, "The 25519 public key is a low-order point.");
        if (!secret.TryExport(SharedSecretBlobFormat.RawSharedSecret, output, out var written) || written != KeyLength)
        {
            throw new ArgumentException($"The output must hold {KeyLength} bytes.", nameof(output));
        }
    }

    private sealed class X25519KeyPair : DhKeyPair
    {
        private readonly byte[] _publicKey;

        public X25519KeyPair(Key key)
        {
            Key = key;
            _publicKey = key.PublicKey.Export(KeyBlobFormat.RawPublicKey);
        }

        public Key Key { get; }

        public override ReadOnlySpan<byte> PublicKey => _publicKey;

        // NSec keeps the private key in libsodium's guarded memory and wipes it when the key is disposed.
        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                Key.Dispose();
            }
        }
    }
}
