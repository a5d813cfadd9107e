using System.Security.Cryptography;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Protocol.Identity;

/// <summary>
/// One entry of an identity's change history: the key that is current from now on, the hash of the change
/// it follows (none for the first), and when it was made.
/// </summary>
/// <remarks>
/// Encoding (canonical MessagePack): <c>[version = 1, previous_change_hash: bin 32 | nil, public_key: bin 32, created_at: uint seconds]</c>.
/// </remarks>
public sealed record IdentityChange
{
    private const ulong CurrentVersion = 1;

    /// <summary>Creates a change. The first change of a history has no previous hash.</summary>
    public IdentityChange(byte[]? previousChangeHash, ReadOnlyMemory<byte> publicKey, DateTimeOffset createdAt)
    {
        if (previousChangeHash is { Length: not ChangeHashLength })
        {
            throw new ArgumentException($"A change hash is {ChangeHashLength} bytes.", nameof(previousChangeHash));
        }

        if (publicKey.Length != SignatureDomain.PublicKeyLength)
        {
            throw new ArgumentException($"An Ed25519 public key is {SignatureDomain.PublicKeyLength} bytes.", nameof(publicKey));
        }

        PreviousChangeHash = previousChangeHash?.ToArray();
        PublicKey = publicKey.ToArray();
        CreatedAt = DateTimeOffset.FromUnixTimeSeconds(createdAt.ToUnixTimeSeconds());
        Encoded = Encode();
        ChangeHash = SHA256.HashData(Encoded);
    }

    /// <summary>Bytes of a change hash (SHA-256 of the encoded change).</summary>
    public const int ChangeHashLength = 32;

    /// <summary>The hash of the change this one follows; null for the first change.</summary>
    public byte[]? PreviousChangeHash { get; }

    /// <summary>The Ed25519 public key current from this change on.</summary>
    public byte[] PublicKey { get; }

    /// <summary>When the change was made, to the second.</summary>
    public DateTimeOffset CreatedAt { get; }

    /// <summary>The canonical encoding: what is hashed and signed.</summary>
    public byte[] Encoded { get; }

    /// <summary>SHA-256 of <see cref="Encoded"/>: what the next change links to.</summary>
    public byte[] ChangeHash { get; }

    /// <summary>Decodes a canonical encoding.</summary>
    /// <exception cref="WireFormatException">The bytes are not a canonical change.</exception>
    public static IdentityChange Decode(ReadOnlyMemory<byte> encoded) =>
        CanonicalEncoding.Decode(encoded, "identity change", IdentityLimits.MaxSignedStructureLength, Read, static c => c.Encoded);

    private static IdentityChange Read(ref CanonicalReader reader)
    {
        reader.ReadArray("identity change", 4, 4);
        reader.ReadVersion(CurrentVersion);
        var previous = reader.ReadBytesOrNil("previous_change_hash", ChangeHashLength);
        var publicKey = reader.ReadBytes("public_key", SignatureDomain.PublicKeyLength);
        var created = reader.ReadUnsigned("created_at");
        return new IdentityChange(previous, publicKey, Timestamps.FromUnixSeconds(created, "created_at"));
    }

    private byte[] Encode()
    {
        var writer = new CanonicalWriter();
        writer.WriteArray(4);
        writer.WriteUnsigned(CurrentVersion);
        if (PreviousChangeHash is null)
        {
            writer.WriteNil();
        }
        else
        {
            writer.WriteBytes(PreviousChangeHash);
        }

        writer.WriteBytes(PublicKey);
        writer.WriteUnsigned(Timestamps.ToUnixSeconds(CreatedAt));
        return writer.ToArray();
    }

    /// <inheritdoc />
    public bool Equals(IdentityChange? other) => other is not null && Encoded.AsSpan().SequenceEqual(other.Encoded);

    /// <inheritdoc />
    public override int GetHashCode() => BitConverter.ToInt32(ChangeHash);
}

/// <summary>
/// A change with its signatures: by its own key (proof of possession) and, after the first, by the key of
/// the change it follows (proof the rotation was authorized by the holder of the old key).
/// </summary>
/// <remarks>Encoding: <c>[change: bin (the encoded <see cref="IdentityChange"/>), signature: bin 64, previous_signature: bin 64 | nil]</c>.</remarks>
public sealed record SignedIdentityChange(IdentityChange Change, byte[] Signature, byte[]? PreviousSignature)
{
    internal void Write(ref CanonicalWriter writer)
    {
        writer.WriteArray(3);
        writer.WriteBytes(Change.Encoded);
        writer.WriteBytes(Signature);
        if (PreviousSignature is null)
        {
            writer.WriteNil();
        }
        else
        {
            writer.WriteBytes(PreviousSignature);
        }
    }

    internal static SignedIdentityChange Read(ref CanonicalReader reader)
    {
        reader.ReadArray("signed change", 3, 3);
        var change = IdentityChange.Decode(reader.ReadBytes("change", 1, IdentityLimits.MaxSignedStructureLength));
        var signature = reader.ReadBytes("signature", SignatureDomain.SignatureLength);
        var previous = reader.ReadBytesOrNil("previous_signature", SignatureDomain.SignatureLength);
        return new SignedIdentityChange(change, signature, previous);
    }

    /// <inheritdoc />
    public bool Equals(SignedIdentityChange? other) =>
        other is not null
        && Change.Equals(other.Change)
        && Signature.AsSpan().SequenceEqual(other.Signature)
        && (PreviousSignature ?? []).AsSpan().SequenceEqual(other.PreviousSignature ?? []);

    /// <inheritdoc />
    public override int GetHashCode() => Change.GetHashCode();
}
