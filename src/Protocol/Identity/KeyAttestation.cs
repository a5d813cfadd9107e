using System.Security.Cryptography;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Protocol.Identity;

/// <summary>
/// A statement by an identity that an X25519 key is its Noise static key until an expiry. It names the change
/// whose key signed it, so a rotation invalidates every attestation made with the old key.
/// </summary>
/// <remarks>
/// Encoding: <c>[version = 1, subject: bin 32, change_hash: bin 32, channel_public_key: bin 32, created_at: uint, expires_at: uint]</c>.
/// </remarks>
public sealed record KeyAttestation
{
    /// <summary>Bytes of an X25519 public key.</summary>
    public const int ChannelKeyLength = 32;

    private const ulong CurrentVersion = 1;

    /// <summary>Creates an attestation (unsigned).</summary>
    public KeyAttestation(Identifier subject, ReadOnlyMemory<byte> changeHash, ReadOnlyMemory<byte> channelPublicKey, DateTimeOffset createdAt, DateTimeOffset expiresAt)
    {
        if (subject.Bytes.Length != Identifier.Length)
        {
            throw new ArgumentException("The subject is not set.", nameof(subject));
        }

        if (changeHash.Length != IdentityChange.ChangeHashLength || channelPublicKey.Length != ChannelKeyLength)
        {
            throw new ArgumentException($"The change hash and channel key are {IdentityChange.ChangeHashLength} bytes each.");
        }

        if (expiresAt <= createdAt)
        {
            throw new ArgumentException("An attestation must expire after it is created.", nameof(expiresAt));
        }

        Subject = subject;
        ChangeHash = changeHash.ToArray();
        ChannelPublicKey = channelPublicKey.ToArray();
        CreatedAt = DateTimeOffset.FromUnixTimeSeconds(createdAt.ToUnixTimeSeconds());
        ExpiresAt = DateTimeOffset.FromUnixTimeSeconds(expiresAt.ToUnixTimeSeconds());
        Encoded = Encode();
    }

    /// <summary>The identity that makes the statement.</summary>
    public Identifier Subject { get; }

    /// <summary>The change whose key signed the attestation.</summary>
    public byte[] ChangeHash { get; }

    /// <summary>The attested X25519 public key.</summary>
    public byte[] ChannelPublicKey { get; }

    /// <summary>When it was made.</summary>
    public DateTimeOffset CreatedAt { get; }

    /// <summary>When it stops being valid.</summary>
    public DateTimeOffset ExpiresAt { get; }

    /// <summary>The canonical encoding: what is signed.</summary>
    public byte[] Encoded { get; }

    /// <summary>Decodes a canonical encoding.</summary>
    /// <exception cref="WireFormatException">The bytes are not a canonical attestation.</exception>
    public static KeyAttestation Decode(ReadOnlyMemory<byte> encoded) =>
        CanonicalEncoding.Decode(encoded, "key attestation", IdentityLimits.MaxSignedStructureLength, Read, static a => a.Encoded);

    private static KeyAttestation Read(ref CanonicalReader reader)
    {
        reader.ReadArray("key attestation", 6, 6);
        reader.ReadVersion(CurrentVersion);
        var subject = Identifier.FromBytes(reader.ReadBytes("subject", Identifier.Length));
        var changeHash = reader.ReadBytes("change_hash", IdentityChange.ChangeHashLength);
        var key = reader.ReadBytes("channel_public_key", ChannelKeyLength);
        var created = Timestamps.FromUnixSeconds(reader.ReadUnsigned("created_at"), "created_at");
        var expires = Timestamps.FromUnixSeconds(reader.ReadUnsigned("expires_at"), "expires_at");
        if (expires <= created)
        {
            throw new WireFormatException(WireErrorKind.Malformed, "key attestation: expires_at is not after created_at.");
        }

        return new KeyAttestation(subject, changeHash, key, created, expires);
    }

    private byte[] Encode()
    {
        var writer = new CanonicalWriter();
        writer.WriteArray(6);
        writer.WriteUnsigned(CurrentVersion);
        writer.WriteBytes(Subject.Bytes);
        writer.WriteBytes(ChangeHash);
        writer.WriteBytes(ChannelPublicKey);
        writer.WriteUnsigned(Timestamps.ToUnixSeconds(CreatedAt));
        writer.WriteUnsigned(Timestamps.ToUnixSeconds(ExpiresAt));
        return writer.ToArray();
    }

    /// <inheritdoc />
    public bool Equals(KeyAttestation? other) => other is not null && Encoded.AsSpan().SequenceEqual(other.Encoded);

    /// <inheritdoc />
    public override int GetHashCode() => Subject.GetHashCode();
}

/// <summary>An attestation and its signature.</summary>
/// <remarks>Encoding: <c>[attestation: bin, signature: bin 64]</c>.</remarks>
public sealed record SignedKeyAttestation(KeyAttestation Attestation, byte[] Signature)
{
    /// <summary>The canonical encoding.</summary>
    public byte[] Encode()
    {
        var writer = new CanonicalWriter();
        writer.WriteArray(2);
        writer.WriteBytes(Attestation.Encoded);
        writer.WriteBytes(Signature);
        return writer.ToArray();
    }

    /// <summary>Decodes a signed attestation; nothing is verified yet.</summary>
    /// <exception cref="IdentityException"><see cref="IdentityErrorKind.Malformed"/>.</exception>
    public static SignedKeyAttestation Decode(ReadOnlyMemory<byte> encoded)
    {
        try
        {
            return CanonicalEncoding.Decode(encoded, "signed key attestation", IdentityLimits.MaxSignedStructureLength, Read, static s => s.Encode());
        }
        catch (WireFormatException e)
        {
            throw new IdentityException(IdentityErrorKind.Malformed, e.Message, e);
        }
    }

    /// <summary>
    /// Checks that the attestation is signed by <paramref name="identity"/>'s current key, names its current
    /// change, binds exactly <paramref name="channelPublicKey"/>, and is valid at <paramref name="now"/>
    /// (allowing <paramref name="clockSkew"/> either way).
    /// </summary>
    /// <exception cref="IdentityException">Why the key must not be accepted as the identity's.</exception>
    public void Verify(VerifiedIdentity identity, ReadOnlySpan<byte> channelPublicKey, DateTimeOffset now, TimeSpan clockSkew) =>
        Verify(identity, channelPublicKey, now, clockSkew, cache: null);

    /// <summary>
    /// <see cref="Verify(VerifiedIdentity, ReadOnlySpan{byte}, DateTimeOffset, TimeSpan)"/>, skipping only the signature
    /// when <paramref name="cache"/> holds it as verified under the identity's current key; remembered there when every
    /// check passed. The subject, the change, the channel key and the validity are checked every time.
    /// </summary>
    /// <exception cref="IdentityException">Why the key must not be accepted as the identity's.</exception>
    internal void Verify(VerifiedIdentity identity, ReadOnlySpan<byte> channelPublicKey, DateTimeOffset now, TimeSpan clockSkew, IVerificationMemory? cache)
    {
        ArgumentNullException.ThrowIfNull(identity);
        ArgumentOutOfRangeException.ThrowIfLessThan(clockSkew, TimeSpan.Zero);
        if (Attestation.Subject != identity.Identifier)
        {
            throw new IdentityException(IdentityErrorKind.IdentifierMismatch, $"The attestation is by {Attestation.Subject}, not {identity.Identifier}.");
        }

        if (!CryptographicOperations.FixedTimeEquals(Attestation.ChangeHash, identity.Current.ChangeHash))
        {
            throw new IdentityException(IdentityErrorKind.AttestationMismatch, "The attestation was signed by a key the identity has rotated away from.");
        }

        // The signature's outcome is a pure function of these bytes and the key, so those are the whole key.
        var key = cache is null ? default : VerificationKey.Derive(VerifiedKind.KeyAttestation, Attestation.Encoded, Signature, identity.PublicKey);
        var known = cache?.Contains(key) == true;
        if (!known && !SignatureDomain.Verify(identity.PublicKey, SignatureDomain.KeyAttestation, Attestation.Encoded, Signature))
        {
            throw new IdentityException(IdentityErrorKind.BadSignature, "The attestation's signature does not verify.");
        }

        if (!CryptographicOperations.FixedTimeEquals(Attestation.ChannelPublicKey, channelPublicKey))
        {
            throw new IdentityException(IdentityErrorKind.AttestationMismatch, "The attestation binds another channel key.");
        }

        if (now + clockSkew < Attestation.CreatedAt || now - clockSkew >= Attestation.ExpiresAt)
        {
            throw new IdentityException(IdentityErrorKind.AttestationExpired, $"The attestation is valid from {Attestation.CreatedAt:O} to {Attestation.ExpiresAt:O}.");
        }

        if (!known)
        {
            cache?.Add(key);
        }
    }

    private static SignedKeyAttestation Read(ref CanonicalReader reader)
    {
        reader.ReadArray("signed key attestation", 2, 2);
        var attestation = KeyAttestation.Decode(reader.ReadBytes("attestation", 1, IdentityLimits.MaxSignedStructureLength));
        var signature = reader.ReadBytes("signature", SignatureDomain.SignatureLength);
        return new SignedKeyAttestation(attestation, signature);
    }

    /// <inheritdoc />
    public bool Equals(SignedKeyAttestation? other) =>
        other is not null && Attestation.Equals(other.Attestation) && Signature.AsSpan().SequenceEqual(other.Signature);

    /// <inheritdoc />
    public override int GetHashCode() => Attestation.GetHashCode();
}
