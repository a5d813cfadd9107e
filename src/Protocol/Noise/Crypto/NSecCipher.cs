using System.Buffers.Binary;
using NSec.Cryptography;

namespace SecureChannels.Protocol.Noise.Crypto;

/// <summary>ChaChaPoly and AESGCM (spec §12.3, §12.4) through NSec/libsodium.</summary>
public sealed class NSecCipher : NoiseCipher
{
    /// <summary>ChaCha20-Poly1305 (RFC 8439); the nonce is 4 zero bytes then the counter little-endian.</summary>
    public static readonly NSecCipher ChaChaPoly = new("ChaChaPoly", AeadAlgorithm.ChaCha20Poly1305, bigEndianNonce: false);

    /// <summary>
    /// AES-256-GCM; the nonce is 4 zero bytes then the counter big-endian. Null where libsodium cannot run it
    /// (it needs AES-NI and CLMUL): the resolver then falls back to <see cref="BclAesGcmCipher"/>.
    /// </summary>
    public static readonly NSecCipher? AesGcm = Aes256Gcm.IsSupported
        ? new("AESGCM", AeadAlgorithm.Aes256Gcm, bigEndianNonce: true)
        : null;

    private const int NonceLength = 12;
    private readonly AeadAlgorithm _algorithm;
    private readonly bool _bigEndianNonce;

    private NSecCipher(string name, AeadAlgorithm algorithm, bool bigEndianNonce)
    {
        Name = name;
        _algorithm = algorithm;
        _bigEndianNonce = bigEndianNonce;
    }

    /// <inheritdoc />
    public override string Name { get; }

    /// <inheritdoc />
    public override CipherKey CreateKey(ReadOnlySpan<byte> key)
    {
        CheckKeyLength(key);
        return new Keyed(this, Key.Import(_algorithm, key, KeyBlobFormat.RawSymmetricKey));
    }

    private void WriteNonce(ulong n, Span<byte> nonce)
    {
        nonce[..4].Clear();
        if (_bigEndianNonce)
        {
            BinaryPrimitives.WriteUInt64BigEndian(nonce[4..], n);
        }
        else
        {
            BinaryPrimitives.WriteUInt64LittleEndian(nonce[4..], n);
        }
    }

    private sealed class Keyed(NSecCipher cipher, Key key) : CipherKey
    {
        public override void Encrypt(ulong nonce, ReadOnlySpan<byte> associatedData, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext)
        {
            Span<byte> n = stackalloc byte[NonceLength];
            cipher.WriteNonce(nonce, n);
            cipher._algorithm.Encrypt(key, n, associatedData, plaintext, ciphertext[..(plaintext.Length + NoiseConstants.TagLength)]);
        }

        public override bool TryDecrypt(ulong nonce, ReadOnlySpan<byte> associatedData, ReadOnlySpan<byte> ciphertext, Span<byte> plaintext)
        {
            if (ciphertext.Length < NoiseConstants.TagLength)
            {
                return false;
            }

            Span<byte> n = stackalloc byte[NonceLength];
            cipher.WriteNonce(nonce, n);
            return cipher._algorithm.Decrypt(key, n, associatedData, ciphertext, plaintext[..(ciphertext.Length - NoiseConstants.TagLength)]);
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                key.Dispose();
            }
        }
    }
}
