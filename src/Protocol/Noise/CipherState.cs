using SecureChannels.Protocol.Noise.Crypto;

namespace SecureChannels.Protocol.Noise;

/// <summary>
/// A key and a nonce (spec §5.1). Before a key is set, encryption passes bytes through, as the
/// specification requires for the first handshake tokens.
/// </summary>
internal sealed class CipherState : IDisposable
{
    private readonly NoiseCipher _cipher;
    private CipherKey? _key;

    public CipherState(NoiseCipher cipher)
    {
        _cipher = cipher;
    }

    public bool HasKey => _key is not null;

    /// <summary>The nonce the next encryption or decryption will use.</summary>
    public ulong Nonce { get; private set; }

    public void InitializeKey(ReadOnlySpan<byte> key)
    {
        var next = _cipher.CreateKey(key);
        _key?.Dispose();
        _key = next;
        Nonce = 0;
    }

    public void SetNonce(ulong nonce) => Nonce = nonce;

    /// <summary>Writes the ciphertext (or, without a key, the plaintext) and returns its length.</summary>
    public int EncryptWithAd(ReadOnlySpan<byte> associatedData, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext)
    {
        if (_key is null)
        {
            plaintext.CopyTo(ciphertext);
            return plaintext.Length;
        }

        EnsureNonceAvailable();
        _key.Encrypt(Nonce, associatedData, plaintext, ciphertext);
        Nonce++;
        return plaintext.Length + NoiseConstants.TagLength;
    }

    /// <summary>Writes the plaintext and returns its length; a failed decryption leaves the nonce where it was.</summary>
    public int DecryptWithAd(ReadOnlySpan<byte> associatedData, ReadOnlySpan<byte> ciphertext, Span<byte> plaintext) =>
        TryDecryptWithAd(associatedData, ciphertext, plaintext, out var written)
            ? written
            : throw new NoiseException(NoiseErrorKind.DecryptFailed, "The message failed authentication.");

    /// <summary>
    /// As <see cref="DecryptWithAd"/>, but reports an authentication failure as false instead of an exception,
    /// so a flood of forged datagrams costs no exception each.
    /// </summary>
    public bool TryDecryptWithAd(ReadOnlySpan<byte> associatedData, ReadOnlySpan<byte> ciphertext, Span<byte> plaintext, out int written)
    {
        if (_key is null)
        {
            ciphertext.CopyTo(plaintext);
            written = ciphertext.Length;
            return true;
        }

        EnsureNonceAvailable();
        if (ciphertext.Length < NoiseConstants.TagLength)
        {
            throw new NoiseException(NoiseErrorKind.MessageTooShort, "The ciphertext is shorter than its authentication tag.");
        }

        if (!_key.TryDecrypt(Nonce, associatedData, ciphertext, plaintext))
        {
            written = 0;
            return false;
        }

        Nonce++;
        written = ciphertext.Length - NoiseConstants.TagLength;
        return true;
    }

    /// <summary>REKEY(k) of spec §4.2: the first 32 bytes of ENCRYPT(k, 2^64-1, "", 32 zero bytes). The nonce is kept.</summary>
    public void Rekey()
    {
        if (_key is null)
        {
            throw new NoiseException(NoiseErrorKind.WrongState, "There is no key to rekey.");
        }

        Span<byte> block = stackalloc byte[NoiseConstants.CipherKeyLength + NoiseConstants.TagLength];
        try
        {
            block.Clear();
            _key.Encrypt(NoiseConstants.ReservedNonce, default, block[..NoiseConstants.CipherKeyLength], block);
            var next = _cipher.CreateKey(block[..NoiseConstants.CipherKeyLength]);
            _key.Dispose();
            _key = next;
        }
        finally
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(block);
        }
    }

    public void Dispose()
    {
        _key?.Dispose();
        _key = null;
    }

    private void EnsureNonceAvailable()
    {
        if (Nonce == NoiseConstants.ReservedNonce)
        {
            throw new NoiseException(NoiseErrorKind.NonceExhausted, "The nonce is exhausted; this key must not be used again.");
        }
    }
}
