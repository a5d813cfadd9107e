using System.Collections.Immutable;
using System.Text;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Protocol.Credentials;

/// <summary>What one revocation entry names.</summary>
public enum RevocationKind
{
    /// <summary>One credential, by id, and so everything delegated from it.</summary>
    Credential = 0,

    /// <summary>Every credential whose subject is this identifier (the agent, and whatever it delegated).</summary>
    Subject = 1,

    /// <summary>Every credential on behalf of this principal (all of one user's agents).</summary>
    Principal = 2,
}

/// <summary>One revocation: a kind and its value (credential id bytes, identifier bytes, or the principal's text form in UTF-8).</summary>
public sealed record RevocationEntry(RevocationKind Kind, byte[] Value)
{
    /// <summary>Revokes one credential (and its delegations).</summary>
    public static RevocationEntry ForCredential(ReadOnlySpan<byte> credentialId) =>
        credentialId.Length == CredentialLimits.CredentialIdLength
            ? new(RevocationKind.Credential, credentialId.ToArray())
            : throw new ArgumentException($"A credential id is {CredentialLimits.CredentialIdLength} bytes.", nameof(credentialId));

    /// <summary>Revokes every credential of one subject.</summary>
    /// <exception cref="ArgumentException"><paramref name="subject"/> is <c>default</c>.</exception>
    public static RevocationEntry ForSubject(Identifier subject) =>
        subject.Bytes.Length == Identifier.Length
            ? new(RevocationKind.Subject, subject.Bytes.ToArray())
            : throw new ArgumentException("The subject is not set.", nameof(subject));

    /// <summary>Revokes everything on behalf of one principal.</summary>
    public static RevocationEntry ForPrincipal(Principal principal) => new(RevocationKind.Principal, Encoding.UTF8.GetBytes(principal.ToString()));

    /// <summary>Canonical order: by kind, then by value bytes.</summary>
    public static IComparer<RevocationEntry> CanonicalOrder { get; } = Comparer<RevocationEntry>.Create(
        static (a, b) => a.Kind != b.Kind ? a.Kind.CompareTo(b.Kind) : a.Value.AsSpan().SequenceCompareTo(b.Value));

    /// <inheritdoc />
    public bool Equals(RevocationEntry? other) => other is not null && Kind == other.Kind && Value.AsSpan().SequenceEqual(other.Value);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var hash = default(HashCode);
        hash.Add(Kind);
        hash.AddBytes(Value);
        return hash.ToHashCode();
    }

    /// <inheritdoc />
    public override string ToString() => Kind switch
    {
        RevocationKind.Principal => $"principal {Encoding.UTF8.GetString(Value)}",
        RevocationKind.Subject => $"subject {Identifier.FromBytes(Value)}",
        _ => $"credential {Convert.ToHexStringLower(Value)}",
    };
}

/// <summary>
/// An authority's list of revocations. Lists are versioned by a sequence number that only rises: a newer
/// list replaces an older one whole, and an older one never replaces a newer one.
/// </summary>
/// <remarks>
/// Encoding: <c>[version = 1, issuer: bin 32, sequence: uint, issued_at: uint, entries: [[kind: uint, value: bin], ...]]</c>,
/// entries sorted by kind then value bytes, without duplicates.
/// </remarks>
public sealed record RevocationList
{
    private const ulong CurrentVersion = 1;

    /// <summary>Creates a list (unsigned); entries are sorted and de-duplicated.</summary>
    public RevocationList(Identifier issuer, ulong sequence, DateTimeOffset issuedAt, IEnumerable<RevocationEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        if (issuer.Bytes.Length != Identifier.Length)
        {
            throw new ArgumentException("The issuer is not set.", nameof(issuer));
        }

        Issuer = issuer;
        Sequence = sequence;
        IssuedAt = DateTimeOffset.FromUnixTimeSeconds(issuedAt.ToUnixTimeSeconds());
        Entries = [.. entries.Distinct().Order(RevocationEntry.CanonicalOrder)];
        if (Entries.Length > CredentialLimits.MaxRevocationEntries)
        {
            throw new ArgumentException($"At most {CredentialLimits.MaxRevocationEntries} entries.", nameof(entries));
        }

        Encoded = Encode();
        _set = Entries.ToImmutableHashSet();
    }

    private readonly ImmutableHashSet<RevocationEntry> _set;

    /// <summary>The authority that revokes.</summary>
    public Identifier Issuer { get; }

    /// <summary>The list's version; a list with a higher sequence replaces this one.</summary>
    public ulong Sequence { get; }

    /// <summary>When it was issued.</summary>
    public DateTimeOffset IssuedAt { get; }

    /// <summary>The revocations, in canonical order.</summary>
    public ImmutableArray<RevocationEntry> Entries { get; }

    /// <summary>The canonical encoding: what is signed.</summary>
    public byte[] Encoded { get; }

    /// <summary>True when the list names <paramref name="entry"/>.</summary>
    public bool Contains(RevocationEntry entry) => _set.Contains(entry);

    /// <summary>The entry of this list that revokes <paramref name="credential"/>, or null.</summary>
    public RevocationEntry? FindRevocation(Credential credential)
    {
        ArgumentNullException.ThrowIfNull(credential);
        foreach (var entry in new[] { RevocationEntry.ForCredential(credential.Id), RevocationEntry.ForSubject(credential.Subject), RevocationEntry.ForPrincipal(credential.Principal) })
        {
            if (_set.Contains(entry))
            {
                return entry;
            }
        }

        return null;
    }

    /// <summary>Decodes a canonical encoding.</summary>
    /// <exception cref="WireFormatException">The bytes are not a canonical revocation list.</exception>
    public static RevocationList Decode(ReadOnlyMemory<byte> encoded) =>
        CanonicalEncoding.Decode(encoded, "revocation list", CredentialLimits.MaxRevocationListLength, Read, static l => l.Encoded);

    private static RevocationList Read(ref CanonicalReader reader)
    {
        reader.ReadArray("revocation list", 5, 5);
        reader.ReadVersion(CurrentVersion);
        var issuer = Identifier.FromBytes(reader.ReadBytes("issuer", Identifier.Length));
        var sequence = reader.ReadUnsigned("sequence");
        var issued = Timestamps.FromUnixSeconds(reader.ReadUnsigned("issued_at"), "issued_at");

        var count = reader.ReadArray("entries", 0, CredentialLimits.MaxRevocationEntries);
        var entries = new RevocationEntry[count];
        for (var i = 0; i < count; i++)
        {
            reader.ReadArray("entry", 2, 2);
            var kind = reader.ReadUnsigned("entry kind");
            entries[i] = kind switch
            {
                (ulong)RevocationKind.Credential => new(RevocationKind.Credential, reader.ReadBytes("credential id", CredentialLimits.CredentialIdLength)),
                (ulong)RevocationKind.Subject => new(RevocationKind.Subject, reader.ReadBytes("subject", Identifier.Length)),
                (ulong)RevocationKind.Principal => new(RevocationKind.Principal, reader.ReadBytes("principal", 1, CredentialLimits.MaxValueLength + 7)),
                _ => throw new WireFormatException(WireErrorKind.Malformed, $"revocation list: entry kind {kind} is unknown."),
            };
        }

        return new RevocationList(issuer, sequence, issued, entries);
    }

    private byte[] Encode()
    {
        var writer = new CanonicalWriter();
        writer.WriteArray(5);
        writer.WriteUnsigned(CurrentVersion);
        writer.WriteBytes(Issuer.Bytes);
        writer.WriteUnsigned(Sequence);
        writer.WriteUnsigned(Timestamps.ToUnixSeconds(IssuedAt));
        writer.WriteArray(Entries.Length);
        foreach (var entry in Entries)
        {
            writer.WriteArray(2);
            writer.WriteUnsigned((ulong)entry.Kind);
            writer.WriteBytes(entry.Value);
        }

        return writer.ToArray();
    }

    /// <inheritdoc />
    public bool Equals(RevocationList? other) => other is not null && Encoded.AsSpan().SequenceEqual(other.Encoded);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Issuer, Sequence);
}

/// <summary>A revocation list, the change of its issuer's history whose key signed it, and the signature.</summary>
/// <remarks>Encoding: <c>[list: bin, issuer_change_hash: bin 32, signature: bin 64]</c>.</remarks>
public sealed record SignedRevocationList(RevocationList List, byte[] IssuerChangeHash, byte[] Signature)
{
    /// <summary>Signs <paramref name="list"/> with <paramref name="authority"/>'s current key.</summary>
    public static async Task<SignedRevocationList> SignAsync(RevocationList list, AgentIdentity authority, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(list);
        ArgumentNullException.ThrowIfNull(authority);
        if (list.Issuer != authority.Identifier)
        {
            throw new ArgumentException("The list names another issuer.", nameof(authority));
        }

        var signature = await SignatureDomain.SignAsync(authority.Signer, SignatureDomain.RevocationList, list.Encoded, cancellationToken).ConfigureAwait(false);
        return new SignedRevocationList(list, authority.Verified.Current.ChangeHash, signature);
    }

    /// <summary>The canonical encoding.</summary>
    public byte[] Encode()
    {
        var writer = new CanonicalWriter();
        writer.WriteArray(3);
        writer.WriteBytes(List.Encoded);
        writer.WriteBytes(IssuerChangeHash);
        writer.WriteBytes(Signature);
        return writer.ToArray();
    }

    /// <summary>Decodes a signed list; nothing is verified yet.</summary>
    /// <exception cref="CredentialException"><see cref="CredentialErrorKind.Malformed"/>.</exception>
    public static SignedRevocationList Decode(ReadOnlyMemory<byte> encoded)
    {
        try
        {
            return CanonicalEncoding.Decode(encoded, "signed revocation list", CredentialLimits.MaxRevocationListLength + 256, Read, static s => s.Encode());
        }
        catch (WireFormatException e)
        {
            throw new CredentialException(CredentialErrorKind.Malformed, e.Message, e);
        }
    }

    /// <summary>
    /// Checks the signature against <paramref name="issuer"/>'s <em>current</em> key. Lists are re-signed at
    /// every change anyway; requiring the current key means a key the authority rotated away from (perhaps
    /// because it leaked) cannot publish a list that freezes its revocations with a huge sequence number.
    /// </summary>
    /// <exception cref="CredentialException"><see cref="CredentialErrorKind.BadSignature"/>.</exception>
    public void Verify(VerifiedIdentity issuer)
    {
        ArgumentNullException.ThrowIfNull(issuer);
        var current = issuer.Current;
        var key = issuer.Identifier == List.Issuer && IssuerChangeHash.AsSpan().SequenceEqual(current.ChangeHash) ? current.PublicKey : null;
        if (key is null || !SignatureDomain.Verify(key, SignatureDomain.RevocationList, List.Encoded, Signature))
        {
            throw new CredentialException(CredentialErrorKind.BadSignature, $"The revocation list {List.Sequence} is not signed by {List.Issuer}.");
        }
    }

    private static SignedRevocationList Read(ref CanonicalReader reader)
    {
        reader.ReadArray("signed revocation list", 3, 3);
        var list = RevocationList.Decode(reader.ReadBytes("list", 1, CredentialLimits.MaxRevocationListLength));
        var changeHash = reader.ReadBytes("issuer_change_hash", IdentityChange.ChangeHashLength);
        var signature = reader.ReadBytes("signature", SignatureDomain.SignatureLength);
        return new SignedRevocationList(list, changeHash, signature);
    }

    /// <inheritdoc />
    public bool Equals(SignedRevocationList? other) => other is not null && Encode().AsSpan().SequenceEqual(other.Encode());

    /// <inheritdoc />
    public override int GetHashCode() => List.GetHashCode();
}
