using System.Buffers.Binary;
using System.Security.Cryptography;

namespace SecureChannels.Protocol.Noise.Crypto;

/// <summary>
/// AESGCM through the platform's AES-GCM (OpenSSL on Linux). Used where libsodium's AES-GCM is not
/// available, and proven by the same vectors as the NSec one.
/// </summary>
public sealed class BclAesGcmCipher : NoiseCipher
{
    /// <summary>The shared instance, or null where the platform has no AES-GCM.</summary>
    public static readonly BclAesGcmCipher? Instance = System.Security.Cryptography.AesGcm.IsSupported ? new() : null;

    private const int NonceLength = 12;

    private BclAesGcmCipher()
    {
    }

    /// <inheritdoc />
    public override string Name => "AESGCM";

    /// <inheritdoc />
    public override CipherKey CreateKey(ReadOnlySpan<byte> key)
    {
        CheckKeyLength(key);
        return new Keyed(new System.Security.Cryptography.AesGcm(key, NoiseConstants.TagLength));
    }

    private static void WriteNonce(ulong n, Span<byte> nonce)
    {
        nonce[..4].Clear();
        BinaryPrimitives.WriteUInt64BigEndian(nonce[4..], n);
    }

    private sealed class Keyed(System.Security.Cryptography.AesGcm aes) : CipherKey
    {
        public override void Encrypt(ulong nonce, ReadOnlySpan<byte> associatedData, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext)
        {
            Span<byte> n = stackalloc byte[NonceLength];
            WriteNonce(nonce, n);
            aes.Encrypt(n, plaintext, ciphertext[..plaintext.Length], ciphertext.Slice(plaintext.Length, NoiseConstants.TagLength), associatedData);
        }

        public override bool TryDecrypt(ulong nonce, ReadOnlySpan<byte> associatedData, ReadOnlySpan<byte> ciphertext, Span<byte> plaintext)
        {
            if (ciphertext.Length < NoiseConstants.TagLength)
            {
                return false;
            }

            Span<byte> n = stackalloc byte[NonceLength];
            WriteNonce(nonce, n);
            var bodyLength = ciphertext.Length - NoiseConstants.TagLength;
            try
            {
                aes.Decrypt(n, ciphertext[..bodyLength], ciphertext[bodyLength..], plaintext[..bodyLength], associatedData);
                return true;
            }
            catch (AuthenticationTagMismatchException)
            {
                // The BCL clears the plaintext before throwing; Noise only needs the verdict.
                return false;
            }
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                aes.Dispose();
            }
        }
    }
}
