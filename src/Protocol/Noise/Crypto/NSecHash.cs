using NSec.Cryptography;

namespace SecureChannels.Protocol.Noise.Crypto;

/// <summary>SHA256, SHA512 and BLAKE2b (spec §12.5–12.7) through NSec/libsodium's incremental hashing.</summary>
public sealed class NSecHash : NoiseHash
{
    /// <summary>SHA-256: HASHLEN 32, BLOCKLEN 64.</summary>
    public static readonly NSecHash Sha256 = new("SHA256", HashAlgorithm.Sha256, 64);

    /// <summary>SHA-512: HASHLEN 64, BLOCKLEN 128.</summary>
    public static readonly NSecHash Sha512 = new("SHA512", HashAlgorithm.Sha512, 128);

    /// <summary>BLAKE2b with a 64-byte output: HASHLEN 64, BLOCKLEN 128.</summary>
    public static readonly NSecHash Blake2b = new("BLAKE2b", HashAlgorithm.Blake2b_512, 128);

    private readonly HashAlgorithm _algorithm;

    private NSecHash(string name, HashAlgorithm algorithm, int blockLength)
    {
        Name = name;
        _algorithm = algorithm;
        BlockLength = blockLength;
    }

    /// <inheritdoc />
    public override string Name { get; }

    /// <inheritdoc />
    public override int HashLength => _algorithm.HashSize;

    /// <inheritdoc />
    public override int BlockLength { get; }

    /// <inheritdoc />
    public override void Hash(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, ReadOnlySpan<byte> c, Span<byte> output)
    {
        IncrementalHash.Initialize(_algorithm, out var state);
        IncrementalHash.Update(ref state, a);
        IncrementalHash.Update(ref state, b);
        IncrementalHash.Update(ref state, c);
        IncrementalHash.Finalize(ref state, output[..HashLength]);
    }
}
