using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using NSec.Cryptography;
using SecureChannels.Protocol.Noise.Crypto;

namespace SecureChannels.Benchmarks;

/// <summary>
/// Baselines: the NSec (libsodium) operations the protocol is built from, timed in the same run so ratios
/// against them mean something. Keys, peers and buffers are all made in setup.
/// </summary>
[MemoryDiagnoser]
public class PrimitiveBenchmarks
{
    /// <summary>The largest AEAD input: the largest message of the channel and TLS throughput benchmarks (1 MiB).</summary>
    public const int MaxAeadLength = 1 << 20;

    private const int X25519Length = 32;

    private readonly NoiseDh _dh = Curve25519Dh.Instance;
    private readonly NoiseCipher _cipher = AeadCipher.ChaChaPoly;
    private readonly byte[] _cipherKey = RandomNumberGenerator.GetBytes(32);
    private readonly byte[] _remoteRaw = new byte[X25519Length];
    private readonly byte[] _shared = new byte[X25519Length];
    private readonly byte[] _localPrivateRaw = RandomNumberGenerator.GetBytes(X25519Length);

    // A nonce reused on every call: harmless for timing, forbidden anywhere else.
    private readonly byte[] _nonce = new byte[12];
    private readonly byte[] _plaintext = RandomNumberGenerator.GetBytes(MaxAeadLength);
    private readonly byte[] _ciphertext = new byte[MaxAeadLength + 16];
    private readonly byte[] _opened = new byte[MaxAeadLength];
    private readonly byte[] _signedMessage = RandomNumberGenerator.GetBytes(64);
    private readonly byte[] _signature = new byte[64];

    private Key _x25519Local = null!;
    private Key _x25519Remote = null!;
    private DhKeyPair _ourLocal = null!;
    private Key _chaChaKey = null!;
    private Key? _aesKey;
    private Key _ed25519Key = null!;
    private System.Security.Cryptography.ChaCha20Poly1305? _bclChaCha;
    private readonly byte[] _tag = new byte[16];

    [GlobalSetup]
    public void Setup()
    {
        _x25519Local = Key.Import(KeyAgreementAlgorithm.X25519, _localPrivateRaw, KeyBlobFormat.RawPrivateKey);
        _x25519Remote = Key.Create(KeyAgreementAlgorithm.X25519);
        _x25519Remote.PublicKey.Export(KeyBlobFormat.RawPublicKey).CopyTo(_remoteRaw, 0);
        _ourLocal = _dh.ImportPrivateKey(_localPrivateRaw);
        if (NativeMethods.SodiumInit() < 0)
        {
            throw new InvalidOperationException("sodium_init failed.");
        }

        _chaChaKey = Key.Create(AeadAlgorithm.ChaCha20Poly1305);

        // libsodium's AES-256-GCM needs AES-NI and CLMUL; without them our AESGCM runs on the BCL instead.
        _aesKey = Aes256Gcm.IsSupported ? Key.Create(AeadAlgorithm.Aes256Gcm) : null;

        // The BCL's ChaCha20-Poly1305 is OpenSSL's on Linux: the implementation TLS uses.
        _bclChaCha = System.Security.Cryptography.ChaCha20Poly1305.IsSupported ? new System.Security.Cryptography.ChaCha20Poly1305(_cipherKey) : null;

        _ed25519Key = Key.Create(SignatureAlgorithm.Ed25519);
        SignatureAlgorithm.Ed25519.Sign(_ed25519Key, _signedMessage, _signature);

        // The baselines must compute what the protocol computes: check once that our DH and NSec's agree.
        X25519AgreeExport();
        var nsec = _shared.ToArray();
        Curve25519DhAgree();
        var ours = _shared.ToArray();
        SodiumScalarMult();
        var raw = _shared.ToArray();
        SodiumScalarMultBase();
        if (!nsec.AsSpan().SequenceEqual(ours) || !nsec.AsSpan().SequenceEqual(raw) || !_shared.AsSpan().SequenceEqual(_ourLocal.PublicKey) || !Ed25519Verify()
            || !ChaCha20Poly1305SealOpen(1024) || !_opened.AsSpan(0, 1024).SequenceEqual(_plaintext.AsSpan(0, 1024))
            || (_bclChaCha is not null && (!BclChaCha20Poly1305SealOpen(1024) || !_opened.AsSpan(0, 1024).SequenceEqual(_plaintext.AsSpan(0, 1024)))))
        {
            throw new InvalidOperationException("The primitive baselines do not compute what they should.");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _x25519Local.Dispose();
        _x25519Remote.Dispose();
        _ourLocal.Dispose();
        _chaChaKey.Dispose();
        _aesKey?.Dispose();
        _ed25519Key.Dispose();
        _bclChaCha?.Dispose();
    }

    /// <summary>X25519 with an exportable shared secret copied out (32 bytes), as Curve25519Dh.Agree needs for HKDF.</summary>
    [Benchmark]
    public int X25519AgreeExport()
    {
        var exportable = new SharedSecretCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport };
        using var secret = KeyAgreementAlgorithm.X25519.Agree(_x25519Local, _x25519Remote.PublicKey, in exportable)
            ?? throw new InvalidOperationException("Low-order point.");
        secret.TryExport(SharedSecretBlobFormat.RawSharedSecret, _shared, out var written);
        return written;
    }

    /// <summary>X25519 alone: Agree and Dispose of a non-exportable secret.</summary>
    [Benchmark]
    public bool X25519AgreeBare()
    {
        using var secret = KeyAgreementAlgorithm.X25519.Agree(_x25519Local, _x25519Remote.PublicKey);
        return secret is not null;
    }

    /// <summary>libsodium's crypto_scalarmult_curve25519 called directly (src's Libsodium): the curve arithmetic alone, no NSec objects.</summary>
    [Benchmark]
    public bool SodiumScalarMult() => Libsodium.ScalarMult(_shared, _localPrivateRaw, _remoteRaw);

    /// <summary>libsodium's crypto_scalarmult_curve25519_base called directly (src's Libsodium): a public key from a private key, no NSec objects.</summary>
    [Benchmark]
    public void SodiumScalarMultBase() => Libsodium.ScalarMultBase(_shared, _localPrivateRaw);

    /// <summary>Our Curve25519Dh.Agree: public key import from raw bytes, exportable Agree, export.</summary>
    [Benchmark]
    public int Curve25519DhAgree()
    {
        _dh.Agree(_ourLocal, _remoteRaw, _shared);
        return _shared[0];
    }

    /// <summary>Our Curve25519Dh.GenerateKeyPair (an ephemeral key: one base-point multiplication), then Dispose.</summary>
    [Benchmark]
    public int Curve25519DhGenerateKeyPair()
    {
        using var pair = _dh.GenerateKeyPair();
        return pair.PublicKey[0];
    }

    /// <summary>Our Curve25519Dh.ImportPrivateKey (a static key, as NoiseBuilder imports it on every build), then Dispose.</summary>
    [Benchmark]
    public int Curve25519DhImportPrivateKey()
    {
        using var pair = _dh.ImportPrivateKey(_localPrivateRaw);
        return pair.PublicKey[0];
    }

    /// <summary>
    /// Our AeadCipher.CreateKey for ChaChaPoly, then Dispose: what every MixKey and Split does. The work is a
    /// 32-byte copy into a pinned array (NSec's guarded key memory, which cost about 10 system calls, is gone).
    /// </summary>
    [Benchmark]
    public void CipherCreateKey() => _cipher.CreateKey(_cipherKey).Dispose();

    /// <summary>ChaCha20-Poly1305 seal of <paramref name="size"/> bytes into a preallocated buffer, no associated data.</summary>
    [Benchmark]
    [Arguments(64)]
    [Arguments(1024)]
    [Arguments(16384)]
    public void ChaCha20Poly1305Seal(int size) =>
        AeadAlgorithm.ChaCha20Poly1305.Encrypt(_chaChaKey, _nonce, default, _plaintext.AsSpan(0, size), _ciphertext.AsSpan(0, size + 16));

    /// <summary>AES-256-GCM seal (libsodium) of <paramref name="size"/> bytes into a preallocated buffer, no associated data.</summary>
    [Benchmark]
    [Arguments(64)]
    [Arguments(1024)]
    [Arguments(16384)]
    public void Aes256GcmSeal(int size)
    {
        var key = _aesKey ?? throw new PlatformNotSupportedException("libsodium has no AES-256-GCM on this CPU.");
        AeadAlgorithm.Aes256Gcm.Encrypt(key, _nonce, default, _plaintext.AsSpan(0, size), _ciphertext.AsSpan(0, size + 16));
    }

    /// <summary>
    /// ChaCha20-Poly1305 seal then open of <paramref name="size"/> bytes as one AEAD message each way, into
    /// preallocated buffers: the cryptographic floor of sending one message of that size over a channel
    /// (which seals and opens it in fragments of at most 65,518 bytes).
    /// </summary>
    [Benchmark]
    [Arguments(64)]
    [Arguments(1024)]
    [Arguments(65536)]
    [Arguments(1048576)]
    public bool ChaCha20Poly1305SealOpen(int size)
    {
        var ciphertext = _ciphertext.AsSpan(0, size + 16);
        AeadAlgorithm.ChaCha20Poly1305.Encrypt(_chaChaKey, _nonce, default, _plaintext.AsSpan(0, size), ciphertext);
        return AeadAlgorithm.ChaCha20Poly1305.Decrypt(_chaChaKey, _nonce, default, ciphertext, _opened.AsSpan(0, size));
    }

    /// <summary>
    /// The same seal then open with the BCL's <see cref="System.Security.Cryptography.ChaCha20Poly1305"/>, which
    /// on Linux is OpenSSL's implementation (the one TLS_CHACHA20_POLY1305_SHA256 runs on): the libsodium-versus-
    /// OpenSSL difference, apart from any protocol.
    /// </summary>
    [Benchmark]
    [Arguments(64)]
    [Arguments(1024)]
    [Arguments(65536)]
    [Arguments(1048576)]
    public bool BclChaCha20Poly1305SealOpen(int size)
    {
        var aead = _bclChaCha ?? throw new PlatformNotSupportedException("The BCL has no ChaCha20-Poly1305 on this platform.");
        var ciphertext = _ciphertext.AsSpan(0, size);
        aead.Encrypt(_nonce, _plaintext.AsSpan(0, size), ciphertext, _tag);
        aead.Decrypt(_nonce, ciphertext, _tag, _opened.AsSpan(0, size));
        return true;
    }

    /// <summary>Ed25519 verification of a valid 64-byte message's signature.</summary>
    [Benchmark]
    public bool Ed25519Verify() => SignatureAlgorithm.Ed25519.Verify(_ed25519Key.PublicKey, _signedMessage, _signature);

    /// <summary>Ed25519 signature of a 64-byte message (deterministic: it rewrites the signature the verify baseline checks).</summary>
    [Benchmark]
    public void Ed25519Sign() => SignatureAlgorithm.Ed25519.Sign(_ed25519Key, _signedMessage, _signature);

    /// <summary>
    /// NSec <c>Key.Create(Ed25519)</c> and <c>Dispose</c>: a random seed and one base-point multiplication, in
    /// sodium_malloc's guarded memory, as <c>InMemorySigner.Generate</c> makes every identity's key.
    /// </summary>
    [Benchmark]
    [SuppressMessage("Performance", "CA1822:Mark members as static", Justification = "BenchmarkDotNet benchmarks are instance methods.")]
    public int Ed25519CreateKey()
    {
        using var key = Key.Create(SignatureAlgorithm.Ed25519);
        return key.Size;
    }
}
