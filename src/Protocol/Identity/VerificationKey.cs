using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;

namespace SecureChannels.Protocol.Identity;

/// <summary>What a <see cref="VerificationKey"/> stands for. Each kind hashes under its own tag, so the same bytes verified as two kinds never share a key.</summary>
internal enum VerifiedKind : byte
{
    /// <summary>An identity history verified whole (§5): every link and signature.</summary>
    IdentityHistory = 1,

    /// <summary>A key attestation's signature, under the key of the identity that verified it.</summary>
    KeyAttestation = 2,

    /// <summary>A credential chain's signatures, issuer histories, narrowing and receipts, under one trust anchor's history and one <c>RequireRegisteredDelegations</c>.</summary>
    CredentialChain = 3,
}

/// <summary>
/// The key of one fact in a <see cref="VerificationCache"/>: SHA-256 over the kind and the exact bytes the fact is
/// a pure function of (the item's encoding and whatever else its outcome depends on), each part length-prefixed so
/// no two inputs run together. The full 32-byte hash is the key: equal keys mean equal inputs (collision
/// resistance), and equal inputs mean the same outcome.
/// </summary>
/// <remarks>
/// Keys are hashes of what peers present and of public trust anchors, never of secrets, so comparing them in
/// variable time leaks nothing. The dictionary hash code goes through <see cref="HashCode"/>, seeded per process,
/// so a peer cannot grind inputs into one bucket.
/// </remarks>
internal readonly struct VerificationKey : IEquatable<VerificationKey>
{
    private readonly ulong _a;
    private readonly ulong _b;
    private readonly ulong _c;
    private readonly ulong _d;

    private VerificationKey(ReadOnlySpan<byte> hash)
    {
        _a = BinaryPrimitives.ReadUInt64LittleEndian(hash);
        _b = BinaryPrimitives.ReadUInt64LittleEndian(hash[8..]);
        _c = BinaryPrimitives.ReadUInt64LittleEndian(hash[16..]);
        _d = BinaryPrimitives.ReadUInt64LittleEndian(hash[24..]);
    }

    /// <summary>The key of <paramref name="kind"/> over <paramref name="encoded"/> and its context (empty when the kind has none).</summary>
    public static VerificationKey Derive(VerifiedKind kind, ReadOnlySpan<byte> encoded, ReadOnlySpan<byte> context1 = default, ReadOnlySpan<byte> context2 = default)
    {
        // kind || len || encoded || len || context1 || len || context2, hashed in one pass. Pooled rather than
        // allocated: a history is up to 64 KiB. Nothing secret goes in, so the buffer is not cleared.
        var length = 1 + (3 * sizeof(int)) + encoded.Length + context1.Length + context2.Length;
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            var input = buffer.AsSpan(0, length);
            input[0] = (byte)kind;
            var offset = 1;
            Append(input, ref offset, encoded);
            Append(input, ref offset, context1);
            Append(input, ref offset, context2);
            Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
            SHA256.HashData(input, hash);
            return new VerificationKey(hash);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <inheritdoc />
    public bool Equals(VerificationKey other) => _a == other._a && _b == other._b && _c == other._c && _d == other._d;

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is VerificationKey other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(_a);

    private static void Append(Span<byte> input, ref int offset, ReadOnlySpan<byte> part)
    {
        BinaryPrimitives.WriteInt32BigEndian(input[offset..], part.Length);
        part.CopyTo(input[(offset + sizeof(int))..]);
        offset += sizeof(int) + part.Length;
    }
}
