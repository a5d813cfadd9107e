namespace SecureChannels.Protocol.Noise.Crypto;

/// <summary>A Noise cipher function (spec §4.2): an AEAD with a 32-byte key, a 64-bit nonce and a 16-byte tag.</summary>
public abstract class NoiseCipher
{
    /// <summary>The name as it appears in a protocol name, for example <c>ChaChaPoly</c>.</summary>
    public abstract string Name { get; }

    /// <summary>Creates a keyed instance. The key bytes are copied into protected memory; the caller may wipe its copy.</summary>
    /// <exception cref="NoiseException"><see cref="NoiseErrorKind.InvalidKey"/> when the key is not 32 bytes.</exception>
    public abstract CipherKey CreateKey(ReadOnlySpan<byte> key);

    /// <summary>Throws unless <paramref name="key"/> has the Noise cipher key length.</summary>
    protected static void CheckKeyLength(ReadOnlySpan<byte> key)
    {
        if (key.Length != NoiseConstants.CipherKeyLength)
        {
            throw new NoiseException(NoiseErrorKind.InvalidKey, $"A cipher key is {NoiseConstants.CipherKeyLength} bytes, not {key.Length}.");
        }
    }
}

/// <summary>
/// A cipher keyed once. Encryption and decryption take the Noise nonce as a number; the nonce layout on the
/// AEAD (little- or big-endian) is the cipher's business. Disposing it destroys the key.
/// </summary>
public abstract class CipherKey : IDisposable
{
    /// <summary>
    /// ENCRYPT(k, n, ad, plaintext): writes <c>plaintext.Length + 16</c> bytes to <paramref name="ciphertext"/>.
    /// The buffers must not overlap unless they start at the same address.
    /// </summary>
    public abstract void Encrypt(ulong nonce, ReadOnlySpan<byte> associatedData, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext);

    /// <summary>
    /// DECRYPT(k, n, ad, ciphertext): writes <c>ciphertext.Length - 16</c> bytes to <paramref name="plaintext"/>
    /// and returns true, or returns false when authentication fails (the plaintext buffer's contents are then
    /// unspecified: never use them, and an in-place input is gone).
    /// </summary>
    public abstract bool TryDecrypt(ulong nonce, ReadOnlySpan<byte> associatedData, ReadOnlySpan<byte> ciphertext, Span<byte> plaintext);

    /// <inheritdoc />
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Destroys the key.</summary>
    protected abstract void Dispose(bool disposing);

    /// <summary>Never shows key material.</summary>
    public override string ToString() => GetType().Name;
}
