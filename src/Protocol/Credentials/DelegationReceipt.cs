using System.Security.Cryptography;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Protocol.Credentials;

/// <summary>
/// An authority's statement that a delegated credential is recorded in its registry, so it can be queried and
/// revoked by the chain above it. A verifier configured with
/// <see cref="CredentialVerifierOptions.RequireRegisteredDelegations"/> accepts a delegated link only with a
/// receipt from the chain's root authority, carried in the chain itself (<see cref="CredentialChain.Registrations"/>).
/// </summary>
/// <remarks>Encoding: <c>[version = 1, authority: bin 32, credential_signed_hash: bin 32, registered_at: uint]</c>.</remarks>
public sealed record DelegationReceipt
{
    private const ulong CurrentVersion = 1;

    /// <summary>Creates a receipt (unsigned).</summary>
    public DelegationReceipt(Identifier authority, ReadOnlyMemory<byte> credentialSignedHash, DateTimeOffset registeredAt)
    {
        if (credentialSignedHash.Length != 32)
        {
            throw new ArgumentException("A credential's signed hash is 32 bytes.", nameof(credentialSignedHash));
        }

        Authority = authority;
        CredentialSignedHash = credentialSignedHash.ToArray();
        RegisteredAt = DateTimeOffset.FromUnixTimeSeconds(registeredAt.ToUnixTimeSeconds());
        Encoded = Encode();
    }

    /// <summary>The authority that recorded the delegation.</summary>
    public Identifier Authority { get; }

    /// <summary>The recorded credential's <see cref="SignedCredential.SignedHash"/>: exactly one signed credential.</summary>
    public byte[] CredentialSignedHash { get; }

    /// <summary>When it was recorded.</summary>
    public DateTimeOffset RegisteredAt { get; }

    /// <summary>The canonical encoding: what is signed.</summary>
    public byte[] Encoded { get; }

    /// <summary>Decodes a canonical encoding.</summary>
    /// <exception cref="WireFormatException">Not a canonical receipt.</exception>
    public static DelegationReceipt Decode(ReadOnlyMemory<byte> encoded) =>
        CanonicalEncoding.Decode(encoded, "delegation receipt", 256, static (ref CanonicalReader r) =>
        {
            r.ReadArray("delegation receipt", 4, 4);
            r.ReadVersion(CurrentVersion);
            var authority = Identifier.FromBytes(r.ReadBytes("authority", Identifier.Length));
            var hash = r.ReadBytes("credential_signed_hash", 32);
            return new DelegationReceipt(authority, hash, Timestamps.FromUnixSeconds(r.ReadUnsigned("registered_at"), "registered_at"));
        }, static d => d.Encoded);

    private byte[] Encode()
    {
        var writer = new CanonicalWriter();
        writer.WriteArray(4);
        writer.WriteUnsigned(CurrentVersion);
        writer.WriteBytes(Authority.Bytes);
        writer.WriteBytes(CredentialSignedHash);
        writer.WriteUnsigned(Timestamps.ToUnixSeconds(RegisteredAt));
        return writer.ToArray();
    }

    /// <inheritdoc />
    public bool Equals(DelegationReceipt? other) => other is not null && Encoded.AsSpan().SequenceEqual(other.Encoded);

    /// <inheritdoc />
    public override int GetHashCode() => BitConverter.ToInt32(CredentialSignedHash);
}

/// <summary>A delegation receipt, the change of the authority's history whose key signed it, and the signature.</summary>
/// <remarks>Encoding: <c>[receipt: bin, issuer_change_hash: bin 32, signature: bin 64]</c>.</remarks>
public sealed record SignedDelegationReceipt
{
    /// <summary>Wraps a receipt and its signature.</summary>
    public SignedDelegationReceipt(DelegationReceipt receipt, ReadOnlyMemory<byte> issuerChangeHash, ReadOnlyMemory<byte> signature)
    {
        ArgumentNullException.ThrowIfNull(receipt);
        Receipt = receipt;
        IssuerChangeHash = issuerChangeHash.ToArray();
        Signature = signature.ToArray();
        Encoded = Encode();
    }

    /// <summary>The receipt.</summary>
    public DelegationReceipt Receipt { get; }

    /// <summary>The change of the authority's history whose key signed it.</summary>
    public byte[] IssuerChangeHash { get; }

    /// <summary>The Ed25519 signature (domain <see cref="SignatureDomain.DelegationReceipt"/>).</summary>
    public byte[] Signature { get; }

    /// <summary>The canonical encoding.</summary>
    public byte[] Encoded { get; }

    /// <summary>Signs a receipt for <paramref name="credential"/> as <paramref name="authority"/>.</summary>
    public static async Task<SignedDelegationReceipt> SignAsync(AgentIdentity authority, SignedCredential credential, DateTimeOffset registeredAt, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(authority);
        ArgumentNullException.ThrowIfNull(credential);
        var receipt = new DelegationReceipt(authority.Identifier, credential.SignedHash, registeredAt);
        var signature = await SignatureDomain.SignAsync(authority.Signer, SignatureDomain.DelegationReceipt, receipt.Encoded, cancellationToken).ConfigureAwait(false);
        return new SignedDelegationReceipt(receipt, authority.Verified.Current.ChangeHash, signature);
    }

    /// <summary>Decodes a signed receipt; nothing is verified yet.</summary>
    /// <exception cref="WireFormatException">Malformed.</exception>
    public static SignedDelegationReceipt Decode(ReadOnlyMemory<byte> encoded) =>
        CanonicalEncoding.Decode(encoded, "signed delegation receipt", 512, static (ref CanonicalReader r) =>
        {
            r.ReadArray("signed delegation receipt", 3, 3);
            var receipt = DelegationReceipt.Decode(r.ReadBytes("receipt", 1, 256));
            return new SignedDelegationReceipt(receipt, r.ReadBytes("issuer_change_hash", IdentityChange.ChangeHashLength), r.ReadBytes("signature", SignatureDomain.SignatureLength));
        }, static s => s.Encoded);

    /// <summary>
    /// True when this is <paramref name="authority"/>'s receipt for <paramref name="credential"/>. Any key of the
    /// authority's history may have signed it: a receipt lives as long as its credential, across rotations.
    /// </summary>
    public bool Covers(SignedCredential credential, VerifiedIdentity authority)
    {
        ArgumentNullException.ThrowIfNull(credential);
        ArgumentNullException.ThrowIfNull(authority);
        var key = authority.FindChange(IssuerChangeHash)?.PublicKey;
        return Receipt.Authority == authority.Identifier
            && CryptographicOperations.FixedTimeEquals(Receipt.CredentialSignedHash, credential.SignedHash)
            && key is not null
            && SignatureDomain.Verify(key, SignatureDomain.DelegationReceipt, Receipt.Encoded, Signature);
    }

    private byte[] Encode()
    {
        var writer = new CanonicalWriter();
        writer.WriteArray(3);
        writer.WriteBytes(Receipt.Encoded);
        writer.WriteBytes(IssuerChangeHash);
        writer.WriteBytes(Signature);
        return writer.ToArray();
    }

    /// <inheritdoc />
    public bool Equals(SignedDelegationReceipt? other) => other is not null && Encoded.AsSpan().SequenceEqual(other.Encoded);

    /// <inheritdoc />
    public override int GetHashCode() => Receipt.GetHashCode();
}
