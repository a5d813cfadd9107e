using System.Security.Cryptography;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Protocol.Credentials;

/// <summary>A delegated credential's reference to its parent: the parent's id and the hash of its signed encoding.</summary>
/// <param name="Id">The parent credential's id.</param>
/// <param name="SignedHash">SHA-256 of the parent's <see cref="SignedCredential.Encoded"/> bytes: binds exactly one parent.</param>
public sealed record ParentReference(byte[] Id, byte[] SignedHash)
{
    /// <inheritdoc />
    public bool Equals(ParentReference? other) =>
        other is not null && Id.AsSpan().SequenceEqual(other.Id) && SignedHash.AsSpan().SequenceEqual(other.SignedHash);

    /// <inheritdoc />
    public override int GetHashCode() => BitConverter.ToInt32(Id);
}

/// <summary>
/// A statement by an issuer about a subject: what it may do (attributes), for whom (principal), when (not
/// before / not after), and how many further hops it may delegate. A root credential comes from an
/// authority; a delegated one from the subject of its parent, and may only narrow it.
/// </summary>
/// <remarks>
/// Encoding: <c>[version = 1, id: bin 16, issuer: bin 32, subject: bin 32, principal, attributes, not_before: uint,
/// not_after: uint, max_delegation_depth: uint, parent: nil | [id: bin 16, signed_hash: bin 32]]</c>.
/// </remarks>
public sealed record Credential
{
    private const ulong CurrentVersion = 1;

    /// <summary>Creates a credential (unsigned).</summary>
    public Credential(
        ReadOnlyMemory<byte> id,
        Identifier issuer,
        Identifier subject,
        Principal principal,
        AttributeSet attributes,
        DateTimeOffset notBefore,
        DateTimeOffset notAfter,
        int maxDelegationDepth,
        ParentReference? parent)
    {
        ArgumentNullException.ThrowIfNull(attributes);
        if (id.Length != CredentialLimits.CredentialIdLength)
        {
            throw new ArgumentException($"A credential id is {CredentialLimits.CredentialIdLength} bytes.", nameof(id));
        }

        if (issuer.Bytes.Length != Identifier.Length || subject.Bytes.Length != Identifier.Length)
        {
            throw new ArgumentException("The issuer and subject must be set.");
        }

        ArgumentOutOfRangeException.ThrowIfNegative(maxDelegationDepth);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxDelegationDepth, CredentialLimits.MaxChainLength - 1);
        if (notAfter <= notBefore)
        {
            throw new ArgumentException("A credential must end after it starts.", nameof(notAfter));
        }

        if (parent is not null && (parent.Id.Length != CredentialLimits.CredentialIdLength || parent.SignedHash.Length != 32))
        {
            throw new ArgumentException("A parent reference is a 16-byte id and a 32-byte hash.", nameof(parent));
        }

        Id = id.ToArray();
        Issuer = issuer;
        Subject = subject;
        Principal = principal;
        Attributes = attributes;
        NotBefore = DateTimeOffset.FromUnixTimeSeconds(notBefore.ToUnixTimeSeconds());
        NotAfter = DateTimeOffset.FromUnixTimeSeconds(notAfter.ToUnixTimeSeconds());
        MaxDelegationDepth = maxDelegationDepth;
        Parent = parent;
        Encoded = Encode();
    }

    /// <summary>The unique id (16 random bytes).</summary>
    public byte[] Id { get; }

    /// <summary>Who signed it: an authority for a root credential, the parent's subject for a delegated one.</summary>
    public Identifier Issuer { get; }

    /// <summary>Whom it is about: the agent that holds it.</summary>
    public Identifier Subject { get; }

    /// <summary>On whose behalf the subject acts.</summary>
    public Principal Principal { get; }

    /// <summary>What it grants.</summary>
    public AttributeSet Attributes { get; }

    /// <summary>Not valid before this time.</summary>
    public DateTimeOffset NotBefore { get; }

    /// <summary>Not valid from this time on.</summary>
    public DateTimeOffset NotAfter { get; }

    /// <summary>How many further hops may be delegated below this credential (0: none).</summary>
    public int MaxDelegationDepth { get; }

    /// <summary>The parent of a delegated credential; null for a root credential.</summary>
    public ParentReference? Parent { get; }

    /// <summary>The canonical encoding: what is signed.</summary>
    public byte[] Encoded { get; }

    /// <summary>The id as hex, for display and logs.</summary>
    public string IdText => Convert.ToHexStringLower(Id);

    /// <summary>A fresh random credential id.</summary>
    public static byte[] NewId() => RandomNumberGenerator.GetBytes(CredentialLimits.CredentialIdLength);

    /// <summary>Decodes a canonical encoding.</summary>
    /// <exception cref="WireFormatException">The bytes are not a canonical credential.</exception>
    public static Credential Decode(ReadOnlyMemory<byte> encoded) =>
        CanonicalEncoding.Decode(encoded, "credential", CredentialLimits.MaxCredentialLength, Read, static c => c.Encoded);

    private static Credential Read(ref CanonicalReader reader)
    {
        reader.ReadArray("credential", 10, 10);
        reader.ReadVersion(CurrentVersion);
        var id = reader.ReadBytes("id", CredentialLimits.CredentialIdLength);
        var issuer = Identifier.FromBytes(reader.ReadBytes("issuer", Identifier.Length));
        var subject = Identifier.FromBytes(reader.ReadBytes("subject", Identifier.Length));
        var principal = Principal.Read(ref reader);
        var attributes = AttributeSet.Read(ref reader);
        var notBefore = reader.ReadUnsigned("not_before");
        var notAfter = reader.ReadUnsigned("not_after");
        var depth = reader.ReadUnsigned("max_delegation_depth");
        ParentReference? parent = null;
        if (reader.ReadArrayOrNil("parent", 2) is 2)
        {
            parent = new ParentReference(reader.ReadBytes("parent id", CredentialLimits.CredentialIdLength), reader.ReadBytes("parent signed_hash", 32));
        }

        if (depth >= CredentialLimits.MaxChainLength || notAfter <= notBefore)
        {
            throw new WireFormatException(WireErrorKind.Malformed, "credential: max_delegation_depth or validity period out of range.");
        }

        return new Credential(id, issuer, subject, principal, attributes, Timestamps.FromUnixSeconds(notBefore, "not_before"), Timestamps.FromUnixSeconds(notAfter, "not_after"), (int)depth, parent);
    }

    private byte[] Encode()
    {
        var writer = new CanonicalWriter();
        writer.WriteArray(10);
        writer.WriteUnsigned(CurrentVersion);
        writer.WriteBytes(Id);
        writer.WriteBytes(Issuer.Bytes);
        writer.WriteBytes(Subject.Bytes);
        Principal.Write(ref writer);
        Attributes.Write(ref writer);
        writer.WriteUnsigned(Timestamps.ToUnixSeconds(NotBefore));
        writer.WriteUnsigned(Timestamps.ToUnixSeconds(NotAfter));
        writer.WriteUnsigned((ulong)MaxDelegationDepth);
        if (Parent is null)
        {
            writer.WriteNil();
        }
        else
        {
            writer.WriteArray(2);
            writer.WriteBytes(Parent.Id);
            writer.WriteBytes(Parent.SignedHash);
        }

        return writer.ToArray();
    }

    /// <inheritdoc />
    public bool Equals(Credential? other) => other is not null && Encoded.AsSpan().SequenceEqual(other.Encoded);

    /// <inheritdoc />
    public override int GetHashCode() => BitConverter.ToInt32(Id);
}

/// <summary>A credential, the change of its issuer's history whose key signed it, and the signature.</summary>
/// <remarks>Encoding: <c>[credential: bin, issuer_change_hash: bin 32, signature: bin 64]</c>.</remarks>
public sealed record SignedCredential
{
    /// <summary>Wraps a credential and its signature.</summary>
    public SignedCredential(Credential credential, ReadOnlyMemory<byte> issuerChangeHash, ReadOnlyMemory<byte> signature)
    {
        ArgumentNullException.ThrowIfNull(credential);
        Credential = credential;
        IssuerChangeHash = issuerChangeHash.ToArray();
        Signature = signature.ToArray();
        Encoded = Encode();
        SignedHash = SHA256.HashData(Encoded);
    }

    /// <summary>The credential.</summary>
    public Credential Credential { get; }

    /// <summary>The change of the issuer's history whose key made the signature.</summary>
    public byte[] IssuerChangeHash { get; }

    /// <summary>The Ed25519 signature over the credential's encoding (domain <see cref="SignatureDomain.Credential"/>).</summary>
    public byte[] Signature { get; }

    /// <summary>The canonical encoding.</summary>
    public byte[] Encoded { get; }

    /// <summary>SHA-256 of <see cref="Encoded"/>: what a delegated child names as its parent.</summary>
    public byte[] SignedHash { get; }

    /// <summary>Decodes a signed credential; nothing is verified yet.</summary>
    /// <exception cref="CredentialException"><see cref="CredentialErrorKind.Malformed"/>.</exception>
    public static SignedCredential Decode(ReadOnlyMemory<byte> encoded)
    {
        try
        {
            return CanonicalEncoding.Decode(encoded, "signed credential", CredentialLimits.MaxCredentialLength, Read, static s => s.Encoded);
        }
        catch (WireFormatException e)
        {
            throw new CredentialException(CredentialErrorKind.Malformed, e.Message, e);
        }
    }

    internal static SignedCredential Read(ref CanonicalReader reader)
    {
        reader.ReadArray("signed credential", 3, 3);
        var credential = Credential.Decode(reader.ReadBytes("credential", 1, CredentialLimits.MaxCredentialLength));
        var changeHash = reader.ReadBytes("issuer_change_hash", IdentityChange.ChangeHashLength);
        var signature = reader.ReadBytes("signature", SignatureDomain.SignatureLength);
        return new SignedCredential(credential, changeHash, signature);
    }

    private byte[] Encode()
    {
        var writer = new CanonicalWriter();
        writer.WriteArray(3);
        writer.WriteBytes(Credential.Encoded);
        writer.WriteBytes(IssuerChangeHash);
        writer.WriteBytes(Signature);
        return writer.ToArray();
    }

    /// <inheritdoc />
    public bool Equals(SignedCredential? other) => other is not null && Encoded.AsSpan().SequenceEqual(other.Encoded);

    /// <inheritdoc />
    public override int GetHashCode() => Credential.GetHashCode();
}
