namespace SecureChannels.Protocol.Noise.Crypto;

/// <summary>BLAKE2s (spec §12.8) over our own <see cref="Blake2s"/>, since libsodium has none: HASHLEN 32, BLOCKLEN 64.</summary>
public sealed class Blake2sHash : NoiseHash
{
    /// <summary>The shared instance; the type holds no state.</summary>
    public static readonly Blake2sHash Instance = new();

    private Blake2sHash()
    {
    }

    /// <inheritdoc />
    public override string Name => "BLAKE2s";

    /// <inheritdoc />
    public override int HashLength => Blake2s.MaxHashSize;

    /// <inheritdoc />
    public override int BlockLength => Blake2s.BlockSize;

    /// <inheritdoc />
    public override void Hash(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, ReadOnlySpan<byte> c, Span<byte> output)
    {
        Blake2s.Initialize(out var state);
        state.Update(a);
        state.Update(b);
        state.Update(c);
        state.Finalize(output);
    }
}
