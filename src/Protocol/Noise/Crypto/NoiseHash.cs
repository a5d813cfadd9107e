using System.Security.Cryptography;

namespace SecureChannels.Protocol.Noise.Crypto;

/// <summary>
/// A Noise hash function (spec §4.3) and the HMAC and HKDF built on it (spec §4.3, RFC 2104, RFC 5869).
/// A backend supplies only <see cref="Hash(ReadOnlySpan{byte}, ReadOnlySpan{byte}, ReadOnlySpan{byte}, Span{byte})"/>;
/// the constructions are written once here so every backend is proven by the same vectors.
/// </summary>
public abstract class NoiseHash
{
    private const byte InnerPad = 0x36;
    private const byte OuterPad = 0x5c;

    /// <summary>The name as it appears in a protocol name, for example <c>BLAKE2b</c>.</summary>
    public abstract string Name { get; }

    /// <summary>HASHLEN: 32 or 64.</summary>
    public abstract int HashLength { get; }

    /// <summary>BLOCKLEN: the HMAC block size, 64 or 128.</summary>
    public abstract int BlockLength { get; }

    /// <summary>
    /// Writes HASH(a || b || c) to <paramref name="output"/> (HASHLEN bytes). Three parts cover every use in
    /// Noise (MixHash, HMAC's inner and outer hash) without concatenating into a temporary buffer.
    /// </summary>
    public abstract void Hash(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, ReadOnlySpan<byte> c, Span<byte> output);

    /// <summary>HMAC-HASH(key, data1 || data2) per RFC 2104; <paramref name="key"/> is at most BLOCKLEN bytes.</summary>
    public void Hmac(ReadOnlySpan<byte> key, ReadOnlySpan<byte> data1, ReadOnlySpan<byte> data2, Span<byte> output)
    {
        if (key.Length > BlockLength)
        {
            // Noise only ever keys HMAC with HASHLEN-byte values; a longer key would need pre-hashing.
            throw new ArgumentException("An HMAC key longer than the hash block is not used by Noise.", nameof(key));
        }

        Span<byte> pad = stackalloc byte[BlockLength];
        Span<byte> inner = stackalloc byte[HashLength];
        try
        {
            pad.Clear();
            key.CopyTo(pad);
            Xor(pad, InnerPad);
            Hash(pad, data1, data2, inner);
            Xor(pad, InnerPad ^ OuterPad);
            Hash(pad, inner, default, output[..HashLength]);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pad);
            CryptographicOperations.ZeroMemory(inner);
        }
    }

    /// <summary>
    /// HKDF(chainingKey, inputKeyMaterial, n) of spec §4.3 for n = 2 or 3: writes HASHLEN bytes to each of
    /// <paramref name="output1"/>, <paramref name="output2"/> and, when it is not empty, <paramref name="output3"/>.
    /// </summary>
    public void Hkdf(ReadOnlySpan<byte> chainingKey, ReadOnlySpan<byte> inputKeyMaterial, Span<byte> output1, Span<byte> output2, Span<byte> output3)
    {
        Span<byte> tempKey = stackalloc byte[HashLength];
        try
        {
            ReadOnlySpan<byte> one = [0x01];
            ReadOnlySpan<byte> two = [0x02];
            ReadOnlySpan<byte> three = [0x03];
            Hmac(chainingKey, inputKeyMaterial, default, tempKey);
            Hmac(tempKey, one, default, output1);
            Hmac(tempKey, output1[..HashLength], two, output2);
            if (!output3.IsEmpty)
            {
                Hmac(tempKey, output2[..HashLength], three, output3);
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(tempKey);
        }
    }

    private static void Xor(Span<byte> block, int value)
    {
        for (var i = 0; i < block.Length; i++)
        {
            block[i] ^= (byte)value;
        }
    }

    /// <inheritdoc />
    public override string ToString() => Name;
}
