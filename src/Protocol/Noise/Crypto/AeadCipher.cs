using System.Buffers.Binary;
using System.Security.Cryptography;

namespace SecureChannels.Protocol.Noise.Crypto;

/// <summary>
/// ChaChaPoly and AESGCM (spec §12.3, §12.4), each by the fastest correct implementation for the record: libsodium,
/// called directly, and, for ChaCha20-Poly1305 records of <see cref="LargeMessageThreshold"/> bytes or more, the
/// platform's (OpenSSL on Linux, through <see cref="System.Security.Cryptography.ChaCha20Poly1305"/>). Both compute
/// the same function, proven equal on the Noise vectors and on each other's output across the threshold.
/// </summary>
/// <remarks>
/// Measured on the 2-core machines (seal and open, one thread): libsodium's ChaCha20-Poly1305 is faster up to a few
/// KiB (OpenSSL pays a context set-up per call, 2 to 3 times libsodium's cost at 64 bytes), OpenSSL's wider vector
/// code about 1.6 times faster from 4 to 64 KiB. libsodium's AES-256-GCM beat the platform's at every size, so the
/// platform's serves AESGCM only where libsodium's cannot run (it needs AES-NI and CLMUL). Creating a key allocates
/// no guarded memory (unlike NSec's keys, ten per handshake); the platform's AEAD object is made only for a key
/// that meets a large record: a transport key, never a handshake's.
/// </remarks>
public sealed class AeadCipher : NoiseCipher
{
    /// <summary>
    /// ChaCha20-Poly1305 records of this many plaintext bytes or more use the platform's implementation: about where
    /// OpenSSL's per-call set-up is repaid by its wider vector code (measured on the 2-core machines).
    /// </summary>
    public const int LargeMessageThreshold = 4096;

    /// <summary>ChaCha20-Poly1305 (RFC 8439); the nonce is 4 zero bytes then the counter little-endian.</summary>
    public static readonly AeadCipher ChaChaPoly = new("ChaChaPoly", AeadKind.ChaCha20Poly1305, useLibsodium: true, usePlatform: System.Security.Cryptography.ChaCha20Poly1305.IsSupported);

    /// <summary>
    /// AES-256-GCM; the nonce is 4 zero bytes then the counter big-endian. libsodium's needs AES-NI and CLMUL;
    /// without them every size uses the platform's. Null where neither can run.
    /// </summary>
    public static readonly AeadCipher? AesGcm = Libsodium.Aes256GcmAvailable || System.Security.Cryptography.AesGcm.IsSupported
        ? new("AESGCM", AeadKind.Aes256Gcm, useLibsodium: Libsodium.Aes256GcmAvailable, usePlatform: System.Security.Cryptography.AesGcm.IsSupported)
        : null;

    private const int NonceLength = 12;
    private static readonly AeadCipher? LibsodiumChaChaPoly = new("ChaChaPoly", AeadKind.ChaCha20Poly1305, useLibsodium: true, usePlatform: false);
    private static readonly AeadCipher? PlatformChaChaPoly = System.Security.Cryptography.ChaCha20Poly1305.IsSupported
        ? new("ChaChaPoly", AeadKind.ChaCha20Poly1305, useLibsodium: false, usePlatform: true)
        : null;

    private static readonly AeadCipher? LibsodiumAesGcm = Libsodium.Aes256GcmAvailable
        ? new("AESGCM", AeadKind.Aes256Gcm, useLibsodium: true, usePlatform: false)
        : null;

    private static readonly AeadCipher? PlatformAesGcm = System.Security.Cryptography.AesGcm.IsSupported
        ? new("AESGCM", AeadKind.Aes256Gcm, useLibsodium: false, usePlatform: true)
        : null;

    private readonly AeadKind _kind;
    private readonly bool _useLibsodium;
    private readonly bool _usePlatform;

    private AeadCipher(string name, AeadKind kind, bool useLibsodium, bool usePlatform)
    {
        Name = name;
        _kind = kind;
        _useLibsodium = useLibsodium;
        _usePlatform = usePlatform;
    }

    /// <inheritdoc />
    public override string Name { get; }

    /// <summary>
    /// The cipher named <paramref name="name"/> (<c>ChaChaPoly</c> or <c>AESGCM</c>) through one implementation at
    /// every size, or null where that implementation cannot run: how conformance runs prove each of the two on
    /// the vectors, and on each other's output.
    /// </summary>
    public static AeadCipher? Only(string name, AeadImplementation implementation) => (name, implementation) switch
    {
        ("ChaChaPoly", AeadImplementation.Libsodium) => LibsodiumChaChaPoly,
        ("ChaChaPoly", AeadImplementation.Platform) => PlatformChaChaPoly,
        ("AESGCM", AeadImplementation.Libsodium) => LibsodiumAesGcm,
        ("AESGCM", AeadImplementation.Platform) => PlatformAesGcm,
        _ => null,
    };

    /// <inheritdoc />
    public override CipherKey CreateKey(ReadOnlySpan<byte> key)
    {
        CheckKeyLength(key);
        var secret = new PinnedSecret(NoiseConstants.CipherKeyLength);
        key.CopyTo(secret.Span);
        return new Keyed(this, secret);
    }

    private bool UsePlatform(int length) =>
        _usePlatform && (!_useLibsodium || (_kind == AeadKind.ChaCha20Poly1305 && length >= LargeMessageThreshold));

    private void WriteNonce(ulong n, Span<byte> nonce)
    {
        nonce[..4].Clear();
        if (_kind == AeadKind.Aes256Gcm)
        {
            BinaryPrimitives.WriteUInt64BigEndian(nonce[4..], n);
        }
        else
        {
            BinaryPrimitives.WriteUInt64LittleEndian(nonce[4..], n);
        }
    }

    private sealed class Keyed(AeadCipher cipher, PinnedSecret key) : CipherKey
    {
        // Made on the first large record, so a key that never meets one (every handshake key) never pays for it.
        // Not thread-safe, like the key itself: a cipher state is used by one direction, one record at a time.
        private IDisposable? _platform;

        public override void Encrypt(ulong nonce, ReadOnlySpan<byte> associatedData, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext)
        {
            Span<byte> n = stackalloc byte[NonceLength];
            cipher.WriteNonce(nonce, n);
            var body = ciphertext[..plaintext.Length];
            var tag = ciphertext.Slice(plaintext.Length, NoiseConstants.TagLength);
            if (!cipher.UsePlatform(plaintext.Length))
            {
                Libsodium.Seal(cipher._kind, key.Span, n, associatedData, plaintext, body, tag);
            }
            else if (Platform() is ChaCha20Poly1305 chacha)
            {
                chacha.Encrypt(n, plaintext, body, tag, associatedData);
            }
            else
            {
                ((System.Security.Cryptography.AesGcm)Platform()).Encrypt(n, plaintext, body, tag, associatedData);
            }
        }

        public override bool TryDecrypt(ulong nonce, ReadOnlySpan<byte> associatedData, ReadOnlySpan<byte> ciphertext, Span<byte> plaintext)
        {
            if (ciphertext.Length < NoiseConstants.TagLength)
            {
                return false;
            }

            Span<byte> n = stackalloc byte[NonceLength];
            cipher.WriteNonce(nonce, n);
            var bodyLength = ciphertext.Length - NoiseConstants.TagLength;
            var body = ciphertext[..bodyLength];
            var tag = ciphertext[bodyLength..];
            var output = plaintext[..bodyLength];
            if (!cipher.UsePlatform(bodyLength))
            {
                return Libsodium.Open(cipher._kind, key.Span, n, associatedData, body, tag, output);
            }

            try
            {
                if (Platform() is ChaCha20Poly1305 chacha)
                {
                    chacha.Decrypt(n, body, tag, output, associatedData);
                }
                else
                {
                    ((System.Security.Cryptography.AesGcm)Platform()).Decrypt(n, body, tag, output, associatedData);
                }

                return true;
            }
            catch (AuthenticationTagMismatchException)
            {
                // The platform clears the plaintext before throwing; Noise only needs the verdict.
                return false;
            }
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _platform?.Dispose();
                key.Dispose();
            }
        }

        private IDisposable Platform() => _platform ??= cipher._kind == AeadKind.ChaCha20Poly1305
            ? new ChaCha20Poly1305(key.Span)
            : new System.Security.Cryptography.AesGcm(key.Span, NoiseConstants.TagLength);
    }
}

/// <summary>Which implementation of an AEAD <see cref="AeadCipher.Only"/> gives.</summary>
public enum AeadImplementation
{
    /// <summary>libsodium's, called directly (the one for small records).</summary>
    Libsodium,

    /// <summary>The platform's: OpenSSL on Linux, through System.Security.Cryptography (the one for large records).</summary>
    Platform,
}
