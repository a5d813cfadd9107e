using System.Collections.Immutable;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Policy;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Protocol.Authority;

/// <summary>
/// A versioned access policy an authority publishes for one resource (an agent service, a relay's
/// admission). Enforcement points hold the newest version and evaluate it locally: the authority is never in
/// the path of a decision.
/// </summary>
/// <remarks>Encoding: <c>[version = 1, issuer: bin 32, resource: str, policy_version: uint, issued_at: uint, text: str]</c>.</remarks>
public sealed record PolicyDocument
{
    private const ulong CurrentVersion = 1;

    /// <summary>Creates a document (unsigned); the text must parse.</summary>
    /// <exception cref="PolicySyntaxException">The text is not a policy.</exception>
    public PolicyDocument(Identifier issuer, string resource, ulong version, DateTimeOffset issuedAt, string text)
    {
        ArgumentException.ThrowIfNullOrEmpty(resource);
        ArgumentNullException.ThrowIfNull(text);
        if (System.Text.Encoding.UTF8.GetByteCount(resource) > AuthorityLimits.MaxResourceLength)
        {
            throw new ArgumentException($"A resource name has at most {AuthorityLimits.MaxResourceLength} bytes.", nameof(resource));
        }

        Issuer = issuer;
        Resource = resource;
        Version = version;
        IssuedAt = DateTimeOffset.FromUnixTimeSeconds(issuedAt.ToUnixTimeSeconds());
        Policy = AccessPolicy.Parse(text);
        Encoded = Encode();
    }

    /// <summary>The publishing authority.</summary>
    public Identifier Issuer { get; }

    /// <summary>What the policy governs.</summary>
    public string Resource { get; }

    /// <summary>Its version; a higher one replaces this one.</summary>
    public ulong Version { get; }

    /// <summary>When it was published.</summary>
    public DateTimeOffset IssuedAt { get; }

    /// <summary>The parsed policy.</summary>
    public AccessPolicy Policy { get; }

    /// <summary>The canonical encoding: what is signed.</summary>
    public byte[] Encoded { get; }

    /// <summary>Decodes a canonical encoding.</summary>
    /// <exception cref="WireFormatException">Not a canonical policy document, or its text does not parse.</exception>
    public static PolicyDocument Decode(ReadOnlyMemory<byte> encoded) =>
        CanonicalEncoding.Decode(encoded, "policy document", AccessPolicy.MaxTextLength + 512, static (ref CanonicalReader r) =>
        {
            r.ReadArray("policy document", 6, 6);
            r.ReadVersion(CurrentVersion);
            var issuer = Identifier.FromBytes(r.ReadBytes("issuer", Identifier.Length));
            var resource = r.ReadText("resource", AuthorityLimits.MaxResourceLength);
            var version = r.ReadUnsigned("policy_version");
            var issued = Timestamps.FromUnixSeconds(r.ReadUnsigned("issued_at"), "issued_at");
            var text = r.ReadText("text", AccessPolicy.MaxTextLength);
            if (resource.Length == 0 || !AccessPolicy.TryParse(text, out _, out var error))
            {
                throw new WireFormatException(WireErrorKind.Malformed, "policy document: the resource is empty or the text is not a policy.");
            }

            return new PolicyDocument(issuer, resource, version, issued, text);
        }, static d => d.Encoded);

    private byte[] Encode()
    {
        var writer = new CanonicalWriter();
        writer.WriteArray(6);
        writer.WriteUnsigned(CurrentVersion);
        writer.WriteBytes(Issuer.Bytes);
        writer.WriteText(Resource);
        writer.WriteUnsigned(Version);
        writer.WriteUnsigned(Timestamps.ToUnixSeconds(IssuedAt));
        writer.WriteText(Policy.Text);
        return writer.ToArray();
    }

    /// <inheritdoc />
    public bool Equals(PolicyDocument? other) => other is not null && Encoded.AsSpan().SequenceEqual(other.Encoded);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Resource, Version);
}

/// <summary>A policy document, the change of its issuer's history whose key signed it, and the signature.</summary>
/// <remarks>Encoding: <c>[document: bin, issuer_change_hash: bin 32, signature: bin 64]</c>.</remarks>
public sealed record SignedPolicyDocument(PolicyDocument Document, byte[] IssuerChangeHash, byte[] Signature)
{
    /// <summary>Signs <paramref name="document"/> with <paramref name="authority"/>'s current key.</summary>
    public static async Task<SignedPolicyDocument> SignAsync(PolicyDocument document, AgentIdentity authority, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(document);
        ArgumentNullException.ThrowIfNull(authority);
        if (document.Issuer != authority.Identifier)
        {
            throw new ArgumentException("The document names another issuer.", nameof(authority));
        }

        var signature = await SignatureDomain.SignAsync(authority.Signer, SignatureDomain.PolicyDocument, document.Encoded, cancellationToken).ConfigureAwait(false);
        return new SignedPolicyDocument(document, authority.Verified.Current.ChangeHash, signature);
    }

    /// <summary>The canonical encoding.</summary>
    public byte[] Encode()
    {
        var writer = new CanonicalWriter();
        writer.WriteArray(3);
        writer.WriteBytes(Document.Encoded);
        writer.WriteBytes(IssuerChangeHash);
        writer.WriteBytes(Signature);
        return writer.ToArray();
    }

    /// <summary>Decodes a signed document; nothing is verified yet.</summary>
    /// <exception cref="WireFormatException">Malformed.</exception>
    public static SignedPolicyDocument Decode(ReadOnlyMemory<byte> encoded) =>
        CanonicalEncoding.Decode(encoded, "signed policy document", AccessPolicy.MaxTextLength + 1024, static (ref CanonicalReader r) =>
        {
            r.ReadArray("signed policy document", 3, 3);
            var document = PolicyDocument.Decode(r.ReadBytes("document", 1, AccessPolicy.MaxTextLength + 512));
            return new SignedPolicyDocument(document, r.ReadBytes("issuer_change_hash", IdentityChange.ChangeHashLength), r.ReadBytes("signature", SignatureDomain.SignatureLength));
        }, static s => s.Encode());

    /// <summary>Checks the signature against the issuer's current key (as for revocation lists: a key rotated away cannot publish).</summary>
    /// <exception cref="CredentialException"><see cref="CredentialErrorKind.BadSignature"/>.</exception>
    public void Verify(VerifiedIdentity issuer)
    {
        ArgumentNullException.ThrowIfNull(issuer);
        var current = issuer.Current;
        var key = issuer.Identifier == Document.Issuer && IssuerChangeHash.AsSpan().SequenceEqual(current.ChangeHash) ? current.PublicKey : null;
        if (key is null || !SignatureDomain.Verify(key, SignatureDomain.PolicyDocument, Document.Encoded, Signature))
        {
            throw new CredentialException(CredentialErrorKind.BadSignature, $"The policy document {Document.Resource} v{Document.Version} is not signed by {Document.Issuer}.");
        }
    }

    /// <inheritdoc />
    public bool Equals(SignedPolicyDocument? other) => other is not null && Encode().AsSpan().SequenceEqual(other.Encode());

    /// <inheritdoc />
    public override int GetHashCode() => Document.GetHashCode();
}

/// <summary>
/// The newest verified policy document per resource, from the one authority an enforcement point subscribes to:
/// what it evaluates. Versions never go backwards. Thread-safe; <see cref="Changed"/> lets a holder re-apply a policy.
/// </summary>
public sealed class PolicyBook
{
    private readonly NewestVersions<string, SignedPolicyDocument> _documents = new(StringComparer.Ordinal);

    /// <summary>Raised after a newer version of the given resource's policy was accepted.</summary>
    public event Action<string>? Changed;

    /// <summary>The newest document of every resource.</summary>
    public IEnumerable<SignedPolicyDocument> Documents => _documents.Snapshot.Values;

    /// <summary>The versions held, for a subscription's catch-up.</summary>
    public IReadOnlyDictionary<string, ulong> Versions => _documents.Snapshot.ToDictionary(d => d.Key, d => d.Value.Document.Version, StringComparer.Ordinal);

    /// <summary>Verifies <paramref name="document"/> against <paramref name="issuer"/> (the authority subscribed to) and keeps it if it is newer than the version held.</summary>
    /// <exception cref="CredentialException"><see cref="CredentialErrorKind.BadSignature"/>.</exception>
    public RevocationMergeResult Merge(SignedPolicyDocument document, VerifiedIdentity issuer)
    {
        ArgumentNullException.ThrowIfNull(document);
        document.Verify(issuer);
        var result = _documents.Merge(document.Document.Resource, document, static d => d.Document.Version, static (a, b) => a.Document.Equals(b.Document));
        if (result == RevocationMergeResult.Accepted)
        {
            Changed?.Invoke(document.Document.Resource);
        }

        return result;
    }

    /// <summary>The newest policy for <paramref name="resource"/>, or null (deny by default).</summary>
    public AccessPolicy? Find(string resource) => _documents.Find(resource)?.Document.Policy;

    /// <summary>The newest signed document for <paramref name="resource"/>, or null.</summary>
    public SignedPolicyDocument? FindDocument(string resource) => _documents.Find(resource);
}
